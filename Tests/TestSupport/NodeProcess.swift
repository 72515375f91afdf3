import CSwitchboardShims
import Foundation

/// The `switchboard` executable built next to the test bundle, run as a child process.
public final class NodeProcess {
    public let process: ChildProcess
    /// The port of the first listen address, read from the "listening" line.
    public private(set) var port = 0
    /// The node's data directory (set by `serve`).
    public private(set) var dataDirectory = ""

    /// The built `switchboard` binary.
    public static var executable: URL {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            runner.appendingPathComponent("switchboard"),
            runner.deletingLastPathComponent().appendingPathComponent("switchboard"),
        ]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        return candidates[0]
    }

    /// Starts `switchboard ARGS` (optionally under `sh -c` with a shell prefix such as
    /// `ulimit -n 40;`).
    public init(_ arguments: [String], shellPrefix: String? = nil) throws {
        if let shellPrefix {
            let quoted = ([NodeProcess.executable.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
            process = try ChildProcess("/bin/sh", ["-c", "\(shellPrefix) exec \(quoted)"])
        } else {
            process = try ChildProcess(NodeProcess.executable.path, arguments)
        }
    }

    /// Starts a node on a free loopback port and waits for its "listening" line.
    public static func serve(_ extra: [String] = [], data: String? = nil, shellPrefix: String? = nil) throws -> NodeProcess {
        let data = data ?? NSTemporaryDirectory() + "switchboard-test-\(UUID().uuidString)"
        let node = try NodeProcess(["serve", "--listen", "127.0.0.1:0", "--data", data] + extra, shellPrefix: shellPrefix)
        node.dataDirectory = data
        guard waitUntil({ node.standardOutput.contains("listening on") || !node.process.isRunning }),
            let line = node.standardOutput.split(separator: "\n").first(where: { $0.contains("listening on") }),
            let portText = line.split(separator: ":").last?.split(separator: " ").first,
            let port = Int(portText)
        else {
            node.terminate()
            throw BlockingSocket.Failure(description: "node did not start: \(node.standardError)")
        }
        node.port = port
        return node
    }

    /// The port of the first address the "node started" log line gives for `key` (http, https).
    public func port(of key: String) -> Int? {
        guard waitUntil({ standardError.contains("msg=\"node started\"") }),
              let line = standardError.split(separator: "\n").first(where: { $0.contains("msg=\"node started\"") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("\(key)=") }),
              let text = field.split(separator: "=").last?.split(separator: ",").first?.split(separator: ":").last
        else { return nil }
        return Int(text)
    }

    public var standardOutput: String { String(decoding: process.standardOutput, as: UTF8.self) }
    public var standardError: String { String(decoding: process.standardError, as: UTF8.self) }
    public var isRunning: Bool { process.isRunning }

    public func signal(_ number: Int32) { process.signal(number) }

    /// Waits for exit and the end of its output; nil if still running after the timeout.
    public func waitForExit(timeoutMilliseconds: Int = 10_000) -> Int32? {
        process.waitForExit(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// SIGKILL and wait.
    public func terminate() { process.terminate() }
}
