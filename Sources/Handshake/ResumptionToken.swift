internal import CSodium
import Noise
import Wire

/// What a resumption token says (PROTOCOL.md "Resumption tokens"): who the device is, bound to
/// its Noise static key, with an expiry and a unique id so each token is accepted once.
public struct ResumptionClaims: Equatable, Sendable {
    public var accountID: UInt64
    public var deviceID: UInt64
    public var issuedAt: UInt64  // unix seconds
    public var expiresAt: UInt64  // unix seconds
    public var tokenID: [UInt8]  // 16 random bytes
    public var deviceKey: [UInt8]  // the device's X25519 static public key

    public init(accountID: UInt64, deviceID: UInt64, issuedAt: UInt64, expiresAt: UInt64,
                tokenID: [UInt8], deviceKey: [UInt8]) {
        self.accountID = accountID
        self.deviceID = deviceID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.tokenID = tokenID
        self.deviceKey = deviceKey
    }
}

/// Seals and opens resumption tokens with XChaCha20-Poly1305 under a key only the server holds,
/// so the server verifies a token without any lookup.
public struct TokenSealer: Sendable {
    static let version: UInt8 = 1
    static let plaintextLength = 1 + 8 * 4 + 16 + 32
    static let nonceLength = 24
    public static let sealedLength = 4 + nonceLength + plaintextLength + 16
    static let context = Array("switchboard resumption token v1".utf8)

    /// The context string and the key id: the id in front of the token is authenticated too.
    static func associatedData(keyID: UInt32) -> [UInt8] {
        var data = context
        appendBigEndian(UInt64(keyID), to: &data, bytes: 4)
        return data
    }

    public let keyID: UInt32
    private let key: SecretBytes
    /// `associatedData(keyID:)` for this sealer's key id, made once.
    private let associatedData: [UInt8]

    /// - Parameter key: 32 secret bytes (the data directory's `token.key`).
    public init(keyID: UInt32, key: SecretBytes) {
        precondition(key.count == 32)
        self.keyID = keyID
        self.key = key
        self.associatedData = TokenSealer.associatedData(keyID: keyID)
    }

    public func seal(_ claims: ResumptionClaims) -> [UInt8] {
        // Built in place: one array for the plaintext, one for the token (a token is sealed at
        // every login, so no intermediate arrays).
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(TokenSealer.plaintextLength)
        plaintext.append(TokenSealer.version)
        appendBigEndian(claims.accountID, to: &plaintext)
        appendBigEndian(claims.deviceID, to: &plaintext)
        appendBigEndian(claims.issuedAt, to: &plaintext)
        appendBigEndian(claims.expiresAt, to: &plaintext)
        plaintext += claims.tokenID
        plaintext += claims.deviceKey
        precondition(plaintext.count == TokenSealer.plaintextLength)
        let ad = associatedData
        // key id (4 bytes, big-endian) | nonce (24) | ciphertext and tag
        return [UInt8](unsafeUninitializedCapacity: TokenSealer.sealedLength) { token, count in
            let base = token.baseAddress!
            for index in 0..<4 { base[index] = UInt8(truncatingIfNeeded: keyID >> (8 * UInt32(3 - index))) }
            let nonce = base + 4
            randombytes_buf(nonce, TokenSealer.nonceLength)
            var written: UInt64 = 0
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                nonce + TokenSealer.nonceLength, &written, plaintext, UInt64(plaintext.count), ad,
                UInt64(ad.count), nil, nonce, key.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            count = TokenSealer.sealedLength
        }
    }

    /// Opens and checks a token presented by the device whose static key is `deviceKey`.
    /// - Throws: the error code to answer with: `tokenInvalid` (malformed, forged, sealed by
    ///   another server or key), `tokenWrongDevice`, `tokenExpired`.
    public func open(_ token: [UInt8], deviceKey: [UInt8], now: UInt64) throws(ErrorCode) -> ResumptionClaims {
        guard token.count == TokenSealer.sealedLength else { throw .tokenInvalid }
        let id = token[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard id == keyID else { throw .tokenInvalid }
        let nonce = Array(token[4..<28])
        let ciphertext = Array(token[28...])
        var plaintext = [UInt8](repeating: 0, count: TokenSealer.plaintextLength)
        var written: UInt64 = 0
        let ad = associatedData  // the id was checked equal to ours above
        let result = crypto_aead_xchacha20poly1305_ietf_decrypt(
            &plaintext, &written, nil, ciphertext, UInt64(ciphertext.count), ad,
            UInt64(ad.count), nonce, key.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        guard result == 0, written == UInt64(TokenSealer.plaintextLength), plaintext[0] == TokenSealer.version else {
            throw .tokenInvalid
        }
        func u64(_ at: Int) -> UInt64 { plaintext[at..<at + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        let claims = ResumptionClaims(
            accountID: u64(1), deviceID: u64(9), issuedAt: u64(17), expiresAt: u64(25),
            tokenID: Array(plaintext[33..<49]), deviceKey: Array(plaintext[49..<81]))
        guard claims.deviceKey == deviceKey else { throw .tokenWrongDevice }
        guard now < claims.expiresAt else { throw .tokenExpired }
        return claims
    }
}

func appendBigEndian(_ value: UInt64, to out: inout [UInt8], bytes: Int = 8) {
    for index in stride(from: bytes - 1, through: 0, by: -1) {
        out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))))
    }
}
