import Flags
import Foundation
import Reactor
import SwitchboardServer
import Testing
import TestSupport

@Suite struct CommandLineTests {
    @Test(arguments: [
        (["serve", "--bogus"], "unknown flag '--bogus'"),
        (["serve", "--listen"], "flag '--listen' needs a value"),
        (["serve", "--listen", "127.0.0.1"], "has no port"),
        (["serve", "--listen", "999.1.1.1:80"], "not an IPv4 or IPv6 address"),
        (["serve", "--listen", "127.0.0.1:70000"], "bad port"),
        (["serve", "--threads", "zero"], "flag '--threads' needs an integer"),
        (["serve", "--log-level", "loud"], "flag '--log-level' needs debug, info, warn or error"),
        (["serve", "--epoll", "sideways"], "flag '--epoll' needs edge or level"),
        (["serve", "stray"], "unexpected argument 'stray'"),
        (["launch"], "unknown command 'launch'"),
        ([], "missing command"),
    ])
    func badCommandLinesExitTwoWithOneLineAndUsage(arguments: [String], message: String) throws {
        let node = try NodeProcess(arguments)
        #expect(node.waitForExit() == 2)
        let stderr = node.standardError
        let firstLine = stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.hasPrefix("switchboard: "), "got: \(stderr)")
        #expect(firstLine.contains(message), "got: \(firstLine)")
        #expect(stderr.contains("usage: switchboard"))
    }

    @Test func helpAndVersionExitZero() throws {
        let help = try NodeProcess(["--help"])
        #expect(help.waitForExit() == 0)
        #expect(help.standardOutput.contains("serve"))
        let serveHelp = try NodeProcess(["serve", "--help"])
        #expect(serveHelp.waitForExit() == 0)
        for flag in ServeOptions.specs.map(\.name) {
            #expect(serveHelp.standardOutput.contains("--\(flag)"))
        }
        let version = try NodeProcess(["--version"])
        #expect(version.waitForExit() == 0)
        #expect(version.standardOutput.hasPrefix("switchboard \(SwitchboardCommand.version)"))
        #expect(version.standardOutput.contains("libsodium"))
        #expect(version.standardOutput.contains("OpenSSL"))
    }

    @Test func addressInUseIsARuntimeFailure() throws {
        let first = try NodeProcess.serve(["--threads", "1"])
        let second = try NodeProcess(["serve", "--listen", "127.0.0.1:\(first.port)", "--data", NSTemporaryDirectory() + "sb-\(UUID())", "--threads", "1"])
        // SO_REUSEPORT lets a second process of the same user bind the same port; that is the
        // kernel's policy, so only check that the second node either runs or fails clearly.
        if let status = second.waitForExit(timeoutMilliseconds: 1_000) {
            #expect(status == 1)
            #expect(second.standardError.contains("cannot listen"))
        }
        second.terminate()
        first.terminate()
    }

    @Test func parsedFlagsAcceptEqualsFormAndRepeats() throws {
        let options = try ServeOptions(arguments: [
            "--listen=127.0.0.1:1", "--listen", "[::1]:2", "--threads", "3", "--idle-seconds=0", "--epoll", "level",
        ])
        #expect(options.listen.map(\.description) == ["127.0.0.1:1", "[::1]:2"])
        #expect(options.threads == 3)
        #expect(options.loop.idleTimeoutMilliseconds == 0)
        #expect(options.loop.trigger == .level)
        #expect(throws: UsageError.self) { try ServeOptions(arguments: ["--threads", "1", "--threads", "2"]) }
    }
}
