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
        (["serve", "--handshake-cache", "-1"], "flag '--handshake-cache'"),
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

@Suite struct CheckVectorsCommandTests {
    static var vectorFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("NoiseTests/Vectors/noise_vectors.json").path
    }

    @Test func runsThePublicVectors() throws {
        let run = try NodeProcess(["check-vectors", CheckVectorsCommandTests.vectorFile])
        #expect(run.waitForExit() == 0)
        let lines = run.standardOutput.split(separator: "\n")
        #expect(lines.last == "10 passed, 0 failed")
        #expect(lines.count == 11)
    }

    @Test func reportsFailuresAndUnsupportedEntries() throws {
        let original = try String(contentsOfFile: CheckVectorsCommandTests.vectorFile, encoding: .utf8)
        // Corrupt the first ciphertext's first hex digit pair and add an unsupported protocol.
        var corrupted = original
        if let range = corrupted.range(of: "\"ciphertext\": \"") {
            let start = range.upperBound
            let end = corrupted.index(start, offsetBy: 2)
            let old = corrupted[start..<end]
            corrupted.replaceSubrange(start..<end, with: old == "00" ? "01" : "00")
        }
        corrupted = corrupted.replacingOccurrences(
            of: "\"vectors\": [", with: "\"vectors\": [{\"protocol_name\": \"Noise_NN_448_AESGCM_SHA512\", \"messages\": []},")
        let path = NSTemporaryDirectory() + "vectors-\(UUID()).json"
        try corrupted.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try NodeProcess(["check-vectors", path])
        #expect(run.waitForExit() == 1)
        #expect(run.standardOutput.split(separator: "\n").last == "9 passed, 1 failed, 1 skipped")
        #expect(run.standardOutput.contains("FAILED"))

        let missing = try NodeProcess(["check-vectors", "/nonexistent/vectors.json"])
        #expect(missing.waitForExit() == 1)
        #expect(missing.standardError.contains("cannot read vectors"))
        let noFile = try NodeProcess(["check-vectors"])
        #expect(noFile.waitForExit() == 2)
    }

    @Test func keyCommandsWorkOnADataDirectory() throws {
        let data = NSTemporaryDirectory() + "sb-keys-\(UUID())"
        let none = try NodeProcess(["pubkey", "--data", data])
        #expect(none.waitForExit() == 1)
        #expect(none.standardError.contains("no server key"))
        let first = try NodeProcess(["keygen", "--data", data])
        #expect(first.waitForExit() == 0)
        let key1 = first.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key1.count == 64)
        let shown = try NodeProcess(["pubkey", "--data", data])
        #expect(shown.waitForExit() == 0)
        #expect(shown.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == key1)
        let second = try NodeProcess(["keygen", "--data", data])
        #expect(second.waitForExit() == 0)
        #expect(second.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) != key1)
        #expect(FileManager.default.fileExists(atPath: data + "/server.key.previous"))
        let attributes = try FileManager.default.attributesOfItem(atPath: data + "/server.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let invites = try NodeProcess(["invite", "--data", data, "--count", "3"])
        #expect(invites.waitForExit() == 0)
        #expect(Set(invites.standardOutput.split(separator: "\n")).count == 3)
        let bad = try NodeProcess(["invite", "--data", data, "--count", "0"])
        #expect(bad.waitForExit() == 2)
    }
}
