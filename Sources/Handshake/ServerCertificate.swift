internal import CSodium
import Noise
import Wire

/// A node's Noise static key signed by the operator's root key (Ed25519), sent in ServerHello
/// (PROTOCOL.md "Server certificates"). A client that knows the root accepts a new server key —
/// on first contact or after a rotation (XXfallback) — only if such a certificate vouches for it,
/// so an attacker answering an IK attempt with a fallback of its own gets nothing.
public struct ServerCertificate: Equatable, Sendable {
    static let version: UInt8 = 1
    public static let encodedLength = 1 + 32 + 32 + 8 + 64
    static let context = Array("switchboard server certificate v1".utf8)

    public let rootKey: [UInt8]  // Ed25519 public key of the signer
    public let serverKey: [UInt8]  // the node's X25519 static public key
    public let issuedAt: UInt64  // unix seconds
    public let signature: [UInt8]

    /// Signs `serverKey` with the root's 32-byte Ed25519 seed.
    public static func issue(serverKey: [UInt8], rootSeed: SecretBytes, issuedAt: UInt64) -> ServerCertificate {
        var publicKey = [UInt8](repeating: 0, count: 32)
        let secretKey = SecretBytes(count: 64)
        _ = crypto_sign_seed_keypair(&publicKey, secretKey.pointer.assumingMemoryBound(to: UInt8.self),
                                     rootSeed.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        let message = signedBytes(rootKey: publicKey, serverKey: serverKey, issuedAt: issuedAt)
        var signature = [UInt8](repeating: 0, count: 64)
        _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count),
                                 secretKey.pointer.assumingMemoryBound(to: UInt8.self))
        return ServerCertificate(rootKey: publicKey, serverKey: serverKey, issuedAt: issuedAt, signature: signature)
    }

    /// The Ed25519 public key of a root seed.
    public static func rootPublicKey(seed: SecretBytes) -> [UInt8] {
        var publicKey = [UInt8](repeating: 0, count: 32)
        let secretKey = SecretBytes(count: 64)
        _ = crypto_sign_seed_keypair(&publicKey, secretKey.pointer.assumingMemoryBound(to: UInt8.self),
                                     seed.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        return publicKey
    }

    init(rootKey: [UInt8], serverKey: [UInt8], issuedAt: UInt64, signature: [UInt8]) {
        self.rootKey = rootKey
        self.serverKey = serverKey
        self.issuedAt = issuedAt
        self.signature = signature
    }

    /// Parses and checks the signature; nil for anything malformed or forged.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count == ServerCertificate.encodedLength, bytes[0] == ServerCertificate.version else { return nil }
        rootKey = Array(bytes[1..<33])
        serverKey = Array(bytes[33..<65])
        issuedAt = bytes[65..<73].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        signature = Array(bytes[73...])
        let message = ServerCertificate.signedBytes(rootKey: rootKey, serverKey: serverKey, issuedAt: issuedAt)
        guard crypto_sign_verify_detached(signature, message, UInt64(message.count), rootKey) == 0 else { return nil }
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = [ServerCertificate.version]
        out += rootKey
        out += serverKey
        appendBigEndian(issuedAt, to: &out)
        return out + signature
    }

    static func signedBytes(rootKey: [UInt8], serverKey: [UInt8], issuedAt: UInt64) -> [UInt8] {
        var message = context
        message.append(version)
        message += rootKey
        message += serverKey
        appendBigEndian(issuedAt, to: &message)
        return message
    }
}
