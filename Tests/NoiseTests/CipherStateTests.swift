import Testing

@testable import Noise

@Suite struct CipherStateTests {
    static let key = [UInt8](repeating: 0x42, count: 32)

    @Test func nonceIsCheckedBeforeEveryUse() throws {
        var sender = CipherState(key: CipherStateTests.key)
        sender.setNonce(UInt64.max - 1)
        let sealed = try sender.encryptWithAd([], [1, 2, 3])  // the last usable nonce
        #expect(sender.nonce == UInt64.max)
        #expect(throws: NoiseError.nonceExhausted) { try sender.encryptWithAd([], [4]) }
        var receiver = CipherState(key: CipherStateTests.key)
        receiver.setNonce(UInt64.max - 1)
        #expect(try receiver.decryptWithAd([], sealed) == [1, 2, 3])
        #expect(throws: NoiseError.nonceExhausted) { try receiver.decryptWithAd([], sealed) }
    }

    @Test func failedDecryptionDoesNotAdvanceTheNonce() throws {
        var sender = CipherState(key: CipherStateTests.key)
        var receiver = CipherState(key: CipherStateTests.key)
        var sealed = try sender.encryptWithAd([], [9, 9])
        let good = sealed
        sealed[0] ^= 1
        #expect(throws: NoiseError.decryptFailed) { try receiver.decryptWithAd([], sealed) }
        #expect(receiver.nonce == 0)
        #expect(try receiver.decryptWithAd([], good) == [9, 9])
    }

    @Test func rekeyChangesTheKeyAndKeepsTheNonceInStep() throws {
        var a = CipherState(key: CipherStateTests.key)
        var b = CipherState(key: CipherStateTests.key)
        let before = try a.encryptWithAd([], [1])
        _ = try b.decryptWithAd([], before)
        a.rekey()
        b.rekey()
        #expect(a.nonce == 1, "Rekey keeps n (Noise section 11.3)")
        let after = try a.encryptWithAd([], [1])
        #expect(try b.decryptWithAd([], after) == [1])
        // The old key no longer opens new messages.
        var stale = CipherState(key: CipherStateTests.key)
        stale.setNonce(1)
        let next = try a.encryptWithAd([], [2])
        stale.setNonce(2)
        #expect(throws: NoiseError.decryptFailed) { try stale.decryptWithAd([], next) }
    }

    @Test func handshakeMessagesOverTheNoiseLimitAreRefused() throws {
        var initiator = try HandshakeState<SHA256>(pattern: .XX, initiator: true)
        let payload = [UInt8](repeating: 0, count: 65_535 - 32 + 1)  // e (32 bytes) + payload > 65,535
        #expect(throws: NoiseError.badMessageLength) { try initiator.writeMessage(payload) }
        var responder = try HandshakeState<SHA256>(pattern: .XX, initiator: false, localStatic: .generate())
        #expect(throws: NoiseError.badMessageLength) { try responder.readMessage([UInt8](repeating: 1, count: 65_536)) }
        var short = try HandshakeState<SHA256>(pattern: .XX, initiator: false, localStatic: .generate())
        #expect(throws: NoiseError.badMessageLength) { try short.readMessage([1, 2, 3]) }
    }

    @Test func handshakeRefusesToRunOutOfTurnOrAfterItsEnd() throws {
        var responder = try HandshakeState<SHA256>(pattern: .XX, initiator: false, localStatic: .generate())
        #expect(throws: NoiseError.outOfTurn) { try responder.writeMessage() }
        var initiator = try HandshakeState<SHA256>(pattern: .IK, initiator: true, localStatic: .generate(),
                                                   remoteStatic: KeyPair.generate().publicKey)
        _ = try initiator.writeMessage()
        #expect(throws: NoiseError.outOfTurn) { try initiator.writeMessage() }
    }

    @Test func lowOrderPublicKeysAreRefused() throws {
        // The all-zero point: X25519 with it gives the all-zero output (section 12.1).
        var responder = try HandshakeState<SHA256>(pattern: .IK, initiator: false, localStatic: .generate())
        #expect(throws: NoiseError.invalidPublicKey) { try responder.readMessage([UInt8](repeating: 0, count: 96)) }
    }
}
