import COpenSSL
import CSodium
import Synchronization
import Testing
import TestSupport

@testable import Noise

/// `CipherState` seals and opens long texts with OpenSSL's ChaCha20-Poly1305 and short ones with
/// libsodium's (`CipherState.openSSLFromCount`). These tests hold the two to the same bytes on
/// both sides of the switch, checked against libsodium called directly.
@Suite struct CipherLibraryTests {
    static let lengths = [0, 1, 63, 64, 200, 383, 384, 385, 511, 1_000, 1_400, 4_096, 16_000, 65_519]

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    /// libsodium's own sealing, the reference: nonce = 4 zero bytes + n little-endian.
    static func sodiumSeal(key: [UInt8], nonce: UInt64, ad: [UInt8], _ plaintext: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var nonceBytes = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { nonceBytes[4 + index] = UInt8(truncatingIfNeeded: nonce >> (8 * UInt64(index))) }
        var written: UInt64 = 0
        _ = crypto_aead_chacha20poly1305_ietf_encrypt(
            &out, &written, plaintext, UInt64(plaintext.count), ad, UInt64(ad.count), nil, nonceBytes, key)
        return Array(out.prefix(Int(written)))
    }

    @Test(arguments: lengths)
    func bothLibrariesSealAndOpenTheSameBytes(length: Int) throws {
        let key = CipherLibraryTests.bytes(32, seed: UInt8(truncatingIfNeeded: length))
        for ad in [[], CipherLibraryTests.bytes(32, seed: 7)] as [[UInt8]] {
            for nonce in [0, 1, 0x0102_0304_0506_0708] as [UInt64] {
                let plaintext = CipherLibraryTests.bytes(length, seed: UInt8(truncatingIfNeeded: nonce))
                var sender = CipherState.testing(key)
                sender.setNonce(nonce)
                let sealed = try sender.encryptWithAd(ad, plaintext)
                let reference = CipherLibraryTests.sodiumSeal(key: key, nonce: nonce, ad: ad, plaintext)
                #expect(sealed == reference, "length \(length), ad \(ad.count), nonce \(nonce)")
                #expect(sender.nonce == nonce + 1)
                var receiver = CipherState.testing(key)
                receiver.setNonce(nonce)
                #expect(try receiver.decryptWithAd(ad, reference) == plaintext)
                #expect(receiver.nonce == nonce + 1)
            }
        }
    }

    /// OpenSSL's side is there to be used: this thread's contexts can be made, and a seal through
    /// it directly gives libsodium's bytes (were it unavailable, the tests above would pass on
    /// libsodium alone).
    @Test func openSSLSealsLongTextsOnThisThread() {
        #expect(sb_aead_available() == 1)
        let key = CipherLibraryTests.bytes(32, seed: 3)
        let plaintext = CipherLibraryTests.bytes(1_400, seed: 4)
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        var nonce = [UInt8](repeating: 0, count: 12)
        nonce[4] = 9
        let sealed = buffer.withUnsafeMutableBufferPointer { out in
            sb_aead_seal(key, nonce, nil, 0, out.baseAddress, Int32(plaintext.count))
        }
        #expect(sealed == 1)
        #expect(buffer == CipherLibraryTests.sodiumSeal(key: key, nonce: 9, ad: [], plaintext))
    }

    @Test(arguments: [383, 384, 1_400, 16_000])
    func forgedLongTextsAreRefusedAndLeaveNoPlaintext(length: Int) throws {
        let key = CipherLibraryTests.bytes(32, seed: 1)
        let plaintext = CipherLibraryTests.bytes(length, seed: 2)
        let good = CipherLibraryTests.sodiumSeal(key: key, nonce: 5, ad: [], plaintext)
        var forgeries: [(String, [UInt8], nonce: UInt64, ad: [UInt8])] = []
        var body = good
        body[length / 2] ^= 0x80
        forgeries.append(("a flipped bit in the text", body, 5, []))
        var tag = good
        tag[good.count - 1] ^= 1
        forgeries.append(("a flipped bit in the tag", tag, 5, []))
        forgeries.append(("the wrong nonce", good, 6, []))
        forgeries.append(("associated data it was not sealed with", good, 5, [1]))
        for (what, text, nonce, ad) in forgeries {
            var buffer = text
            var n = nonce
            let result = buffer.withUnsafeMutableBytes { raw in
                ad.withUnsafeBytes { adBytes in
                    Result { () throws(NoiseError) -> Int in
                        try CipherState.decrypt(key: key, nonce: &n, inPlace: raw.baseAddress!, count: raw.count, ad: adBytes)
                    }
                }
            }
            #expect(throws: NoiseError.decryptFailed, "\(what), length \(length)") { try result.get() }
            #expect(n == nonce, "a failed open does not advance the nonce (\(what))")
            #expect(buffer.prefix(length).allSatisfy { $0 == 0 }, "no unauthenticated plaintext stays behind (\(what))")
        }
        var opened = good
        var n: UInt64 = 5
        let count = try opened.withUnsafeMutableBytes { raw throws(NoiseError) in
            try CipherState.decrypt(key: key, nonce: &n, inPlace: raw.baseAddress!, count: raw.count, ad: UnsafeRawBufferPointer(start: nil, count: 0))
        }
        #expect(Array(opened.prefix(count)) == plaintext)
    }

    /// Each thread has its own OpenSSL contexts: threads sealing and opening at once never mix
    /// one another's keys or nonces.
    @Test func threadsSealAndOpenAtOnce() {
        let failures = Atomic<Int>(0)
        runThreads(4) { worker in
            let key = CipherLibraryTests.bytes(32, seed: UInt8(worker))
            var sender = CipherState.testing(key)
            var receiver = CipherState.testing(key)
            for round in 0..<300 {
                let plaintext = CipherLibraryTests.bytes(400 + round * 7, seed: UInt8(truncatingIfNeeded: round))
                let opened = (try? sender.encryptWithAd([], plaintext)).flatMap { try? receiver.decryptWithAd([], $0) }
                if opened != plaintext { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
