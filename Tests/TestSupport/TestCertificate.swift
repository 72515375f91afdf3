import Foundation

/// A self-signed certificate for localhost and 127.0.0.1, made with the `openssl` command (as an
/// operator would), in a fresh temporary directory.
public struct TestCertificate {
    public let certificateFile: String
    public let keyFile: String

    public init(commonName: String = "localhost", directory: String? = nil) throws {
        let directory = directory ?? NSTemporaryDirectory() + "switchboard-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        certificateFile = directory + "/\(commonName)-cert.pem"
        keyFile = directory + "/\(commonName)-key.pem"
        let (status, output) = try runTool("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", keyFile, "-out", certificateFile, "-subj", "/CN=\(commonName)",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        guard status == 0 else { throw BlockingSocket.Failure(description: "openssl req failed: \(output)") }
    }
}

/// Runs a tool to completion; returns its exit status and its output (stdout and stderr).
@discardableResult
public func runTool(_ path: String, _ arguments: [String], input: [UInt8]? = nil,
                    timeoutSeconds: Int = 600) throws -> (Int32, String) {
    let (status, data) = try runToolData(path, arguments, input: input, timeoutSeconds: timeoutSeconds)
    return (status, String(decoding: data, as: UTF8.self))
}

/// Runs a tool to completion; returns its exit status and its raw output (stdout and stderr,
/// interleaved; write binary output to a file instead).
public func runToolData(_ path: String, _ arguments: [String], input: [UInt8]? = nil,
                        timeoutSeconds: Int = 600) throws -> (Int32, Data) {
    let process = try ChildProcess(path, arguments, input: input, standardError: .intoStandardOutput)
    guard let status = process.waitForExit(timeoutMilliseconds: timeoutSeconds * 1000) else {
        throw BlockingSocket.Failure(description: "\(path) did not finish within \(timeoutSeconds) s")
    }
    return (status, Data(process.standardOutput))
}
