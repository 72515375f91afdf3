@testable import Noise
import Testing

/// SHA-256 and HMAC-SHA-256 as the handshake uses them: FIPS 180-2 and RFC 4231 answers, keys
/// shorter than, equal to, longer than a block and empty (against the module's generic RFC 2104
/// construction), and the split-input forms.
@Suite struct HashFunctionTests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    private func sha(_ parts: [[UInt8]]) -> [UInt8] {
        func go(_ rest: ArraySlice<[UInt8]>, _ done: [UnsafeRawBufferPointer]) -> [UInt8] {
            guard let first = rest.first else { return SHA256.hash(done) }
            return first.withUnsafeBytes { go(rest.dropFirst(), done + [$0]) }
        }
        return go(parts[...], [])
    }
    private func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { k in data.withUnsafeBytes { d in SHA256.hmac(key: k, [d]) } }
    }

    @Test func sha256KnownAnswers() {
        #expect(hex(sha([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(sha([Array("abc".utf8)])) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(hex(sha([long])) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(sha([Array(long[..<20]), [], Array(long[20...])]) == sha([long]))
        long.withUnsafeBytes { all in
            #expect(SHA256.hash(UnsafeRawBufferPointer(rebasing: all[..<7]), UnsafeRawBufferPointer(rebasing: all[7...])) == sha([long]))
        }
    }

    @Test func hmacRFC4231() {
        #expect(hex(hmac([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(hex(hmac(Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a 131-byte key is hashed first.
        #expect(hex(hmac([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func hmacAgreesWithTheGenericConstructionForEveryKeyLength() {
        let data = Array("the handshake's chaining key and input".utf8)
        for length in [0, 1, 32, 63, 64, 65, 200] {
            let key = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
            // RFC 2104 over the hash alone, as the module builds it for BLAKE2b.
            let expected = key.withUnsafeBytes { k in data.withUnsafeBytes { d in SHA256.genericHMAC(key: k, [d]) } }
            #expect(hmac(key, data) == expected, "key of \(length) bytes")
            // The HKDF shape: data then a counter byte.
            let counted = key.withUnsafeBytes { k in data.withUnsafeBytes { d in SHA256.hmac(key: k, d, counter: 2) } }
            #expect(counted == hmac(key, data + [2]), "key of \(length) bytes")
        }
    }
}
