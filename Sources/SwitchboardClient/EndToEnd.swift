internal import CSodium
import Noise

/// End-to-end sealing helpers for applications: anonymous sealed boxes (X25519 + XSalsa20-
/// Poly1305, libsodium `crypto_box_seal`) to a device's published identity key. The node only
/// ever relays what these produce. A real messenger layers a ratchet (X3DH, Double Ratchet) on
/// the key directory; this is the minimal correct primitive for tests and simple clients.
public enum EndToEnd {
    /// Seals `plaintext` for the holder of `identityKey` (an X25519 public key).
    public static func seal(_ plaintext: [UInt8], to identityKey: [UInt8]) -> [UInt8]? {
        guard identityKey.count == 32 else { return nil }
        var out = [UInt8](repeating: 0, count: plaintext.count + Int(crypto_box_sealbytes()))
        guard crypto_box_seal(&out, plaintext, UInt64(plaintext.count), identityKey) == 0 else { return nil }
        return out
    }

    /// Opens a sealed box with the identity key pair it was sealed to.
    public static func open(_ sealed: [UInt8], with identity: KeyPair) -> [UInt8]? {
        guard sealed.count >= Int(crypto_box_sealbytes()) else { return nil }
        var out = [UInt8](repeating: 0, count: sealed.count - Int(crypto_box_sealbytes()))
        let result = crypto_box_seal_open(&out, sealed, UInt64(sealed.count), identity.publicKey,
                                          identity.privateKey.pointer.assumingMemoryBound(to: UInt8.self))
        return result == 0 ? out : nil
    }
}
