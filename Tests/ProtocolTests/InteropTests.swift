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
        let (status, text) = try runTool("/usr/bin/env", ["python3", script, "127.0.0.1", "\(node.port)", "interop"])
        #expect(status == 0, "\(text)")
        #expect(text.hasSuffix("OK\n"), "\(text)")
        #expect(text.contains("IK: welcome in one round trip"))
    }
}
