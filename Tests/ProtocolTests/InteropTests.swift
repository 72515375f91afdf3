import Foundation
import Testing
import TestSupport

/// A client that no one here wrote the crypto for: Tests/Interop/python_client.py, written from
/// docs/PROTOCOL.md on PyPI's `noiseprotocol`, registers over XX, resumes over IK and checks the
/// node's answers byte for byte.
@Suite(.serialized) struct InteropTests {
    @Test func pythonClientOnAnOffTheShelfNoiseLibrary() throws {
        let node = try NodeProcess.serve()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/python_client.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "127.0.0.1", "\(node.port)", "interop"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try launch(process)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.hasSuffix("OK\n"), "\(text)")
        #expect(text.contains("IK: welcome in one round trip"))
    }
}
