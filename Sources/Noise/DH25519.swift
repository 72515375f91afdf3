internal import CSodium

/// An X25519 key pair (section 12.1). The private half is wiped when freed.
public struct KeyPair: Sendable {
    public let publicKey: [UInt8]
    public let privateKey: SecretBytes

    /// A fresh key pair from libsodium's CSPRNG.
    public static func generate() -> KeyPair {
        let secret = SecretBytes.random(count: 32)
        return KeyPair(privateKey: secret)
    }

    /// The key pair for a given private key (from a key file or a test vector).
    public init(privateKey: SecretBytes) {
        precondition(privateKey.count == 32, "an X25519 private key is 32 bytes")
        var publicKey = [UInt8](repeating: 0, count: 32)
        _ = crypto_scalarmult_curve25519_base(&publicKey, privateKey.pointer.assumingMemoryBound(to: UInt8.self))
        self.publicKey = publicKey
        self.privateKey = privateKey
    }

    public init(privateKey bytes: [UInt8]) {
        self.init(privateKey: SecretBytes(bytes))
    }

    /// X25519 with a peer's public key (what a handshake's DH tokens do).
    public func agree(with publicKey: [UInt8]) throws(NoiseError) -> [UInt8] {
        try DH25519.dh(self, publicKey)
    }
}

enum DH25519 {
    static let length = 32

    /// DH(key_pair, public_key). libsodium refuses inputs that give the all-zero output, which
    /// section 12.1 allows an implementation to report as an error.
    static func dh(_ keyPair: KeyPair, _ publicKey: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard publicKey.count == 32 else { throw .invalidPublicKey }
        var shared = [UInt8](repeating: 0, count: 32)
        let result = crypto_scalarmult_curve25519(
            &shared, keyPair.privateKey.pointer.assumingMemoryBound(to: UInt8.self), publicKey)
        guard result == 0 else { throw .invalidPublicKey }
        return shared
    }
}
