import Foundation
import Noise
import Testing

/// The public vectors in `Vectors/noise_vectors.json` (sources in `Vectors/README.md`):
/// cacophony and snow for XX and IK, noise-c for XXfallback, each with SHA256 and BLAKE2b.
@Suite struct VectorTests {
    static func vectors() throws -> [NoiseVector] {
        let url = try #require(Bundle.module.url(forResource: "noise_vectors", withExtension: "json", subdirectory: "Vectors"))
        struct File: Decodable { let vectors: [NoiseVector] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).vectors
    }

    @Test func everyVectorPasses() throws {
        let vectors = try VectorTests.vectors()
        #expect(vectors.count == 10)
        var names: Set<String> = []
        for vector in vectors {
            #expect(VectorRunner.run(vector) == .passed, "\(vector.protocol_name)")
            names.insert(vector.protocol_name)
        }
        #expect(names == [
            "Noise_XX_25519_ChaChaPoly_SHA256", "Noise_XX_25519_ChaChaPoly_BLAKE2b",
            "Noise_IK_25519_ChaChaPoly_SHA256", "Noise_IK_25519_ChaChaPoly_BLAKE2b",
            "Noise_XXfallback_25519_ChaChaPoly_SHA256", "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b",
        ])
    }

    @Test func aCorruptedVectorFails() throws {
        let vector = try #require(try VectorTests.vectors().first { $0.protocol_name.contains("XX_") })
        var messages = vector.messages
        let last = messages.removeLast()
        let flipped = String(last.ciphertext.dropLast(2)) + (last.ciphertext.hasSuffix("00") ? "01" : "00")
        let data = try JSONSerialization.data(withJSONObject: [
            "protocol_name": vector.protocol_name,
            "init_prologue": vector.init_prologue ?? "", "init_static": vector.init_static ?? "",
            "init_ephemeral": vector.init_ephemeral ?? "", "resp_prologue": vector.resp_prologue ?? "",
            "resp_static": vector.resp_static ?? "", "resp_ephemeral": vector.resp_ephemeral ?? "",
            "messages": (messages.map { ["payload": $0.payload, "ciphertext": $0.ciphertext] })
                + [["payload": last.payload, "ciphertext": flipped]],
        ])
        let corrupted = try JSONDecoder().decode(NoiseVector.self, from: data)
        guard case .failed = VectorRunner.run(corrupted) else {
            Issue.record("a flipped ciphertext byte must fail")
            return
        }
    }

    @Test func unsupportedProtocolsAreReportedAsSuch() throws {
        let data = Data(#"{"protocol_name":"Noise_NN_448_AESGCM_SHA512","messages":[]}"#.utf8)
        #expect(VectorRunner.run(try JSONDecoder().decode(NoiseVector.self, from: data)) == .unsupported)
    }
}
