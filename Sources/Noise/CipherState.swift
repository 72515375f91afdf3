internal import COpenSSL
internal import CSodium

/// The `CipherState` of section 5.1 with the ChaChaPoly cipher of section 12.3: a key `k` and a
/// 64-bit nonce `n`. After the handshake each direction has one, and the hot path encrypts and
/// decrypts in place in the connection's buffers with no allocation.
public struct CipherState: Sendable {
    public static let tagLength = 16
    /// The nonce value 2^64-1 is reserved (section 5.1).
    static let maxNonce = UInt64.max
    /// Texts from this many bytes up are sealed and opened by OpenSSL's ChaCha20-Poly1305
    /// (`sb_aead_seal`, `sb_aead_open`), shorter ones by libsodium's: the same cipher, and each
    /// faster on its side of this length on this machine (BENCHMARKS.md, seventh session).
    package static let openSSLFromCount = 384

    private var key: SecretBytes?
    /// The next nonce.
    public private(set) var nonce: UInt64 = 0

    public init() {}

    init(key: [UInt8]) {
        initializeKey(key)
    }

    /// A cipher state with a given key, for tests of code built on transports.
    public static func testing(_ key: [UInt8]) -> CipherState { CipherState(key: key) }

    mutating func initializeKey(_ bytes: [UInt8]?) {
        key = bytes.map { SecretBytes($0.prefix(32)) }
        nonce = 0
    }

    public var hasKey: Bool { key != nil }

    /// For out-of-order transports and tests (section 5.1 `SetNonce`).
    public mutating func setNonce(_ value: UInt64) { nonce = value }

    /// Encrypts `count` plaintext bytes at `buffer` in place and appends the 16-byte tag, so the
    /// buffer must have room for `count + 16` bytes. Returns the ciphertext length. Without a key
    /// the plaintext is left as it is (returns `count`).
    public mutating func encrypt(
        inPlace buffer: UnsafeMutableRawPointer, count: Int, ad: UnsafeRawBufferPointer
    ) throws(NoiseError) -> Int {
        guard let key else { return count }
        return try CipherState.encrypt(key: key.pointer, nonce: &nonce, inPlace: buffer, count: count, ad: ad)
    }

    /// Decrypts `count` ciphertext bytes (tag included) at `buffer` in place; returns the
    /// plaintext length. On authentication failure the nonce is not advanced (section 5.1).
    public mutating func decrypt(
        inPlace buffer: UnsafeMutableRawPointer, count: Int, ad: UnsafeRawBufferPointer
    ) throws(NoiseError) -> Int {
        guard let key else { return count }
        return try CipherState.decrypt(key: key.pointer, nonce: &nonce, inPlace: buffer, count: count, ad: ad)
    }

    /// The key's 32 bytes, or nil before `InitializeKey` (for a transport that keeps keys in
    /// storage of its own).
    package var keyBytes: UnsafeRawBufferPointer? { key?.bytes }

    /// `EncryptWithAd` with the 32-byte key at `key` and nonce `nonce`, which it advances
    /// (checked first: section 5.1 reserves 2^64-1).
    package static func encrypt(
        key: UnsafeRawPointer, nonce: inout UInt64, inPlace buffer: UnsafeMutableRawPointer, count: Int,
        ad: UnsafeRawBufferPointer
    ) throws(NoiseError) -> Int {
        guard nonce < CipherState.maxNonce else { throw .nonceExhausted }
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        if let sealed = openSSL(sb_aead_seal, text: count, key: key, nonce: nonce, ad: ad, bytes: bytes, count: count) {
            guard sealed else { throw .cipherFailed }
            nonce += 1
            return count + tagLength
        }
        var written: UInt64 = 0
        CipherState.withNonce(nonce) { nonceBytes in
            _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                bytes, &written, bytes, UInt64(count),
                ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count),
                nil, nonceBytes, key.assumingMemoryBound(to: UInt8.self))
        }
        nonce += 1
        return Int(written)
    }

    /// `DecryptWithAd` with the key at `key`; advances `nonce` only when the tag verifies.
    package static func decrypt(
        key: UnsafeRawPointer, nonce: inout UInt64, inPlace buffer: UnsafeMutableRawPointer, count: Int,
        ad: UnsafeRawBufferPointer
    ) throws(NoiseError) -> Int {
        guard nonce < CipherState.maxNonce else { throw .nonceExhausted }
        guard count >= CipherState.tagLength else { throw .decryptFailed }
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        if let opened = openSSL(sb_aead_open, text: count - tagLength, key: key, nonce: nonce, ad: ad, bytes: bytes, count: count) {
            guard opened else { throw .decryptFailed }
            nonce += 1
            return count - tagLength
        }
        var written: UInt64 = 0
        let result = CipherState.withNonce(nonce) { nonceBytes in
            crypto_aead_chacha20poly1305_ietf_decrypt(
                bytes, &written, nil, bytes, UInt64(count),
                ad.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(ad.count),
                nonceBytes, key.assumingMemoryBound(to: UInt8.self))
        }
        guard result == 0 else { throw .decryptFailed }
        nonce += 1
        return Int(written)
    }

    /// Runs `sb_aead_seal` or `sb_aead_open` (the same parameters) over the `count` bytes at
    /// `bytes` when the `text` is long enough for OpenSSL to be the faster: whether it succeeded,
    /// or nil when the text is shorter or OpenSSL could not start (libsodium does it then).
    private static func openSSL(
        _ call: (UnsafePointer<UInt8>?, UnsafePointer<UInt8>?, UnsafePointer<UInt8>?, Int32, UnsafeMutablePointer<UInt8>?, Int32) -> Int32,
        text: Int, key: UnsafeRawPointer, nonce: UInt64, ad: UnsafeRawBufferPointer, bytes: UnsafeMutablePointer<UInt8>, count: Int
    ) -> Bool? {
        guard text >= openSSLFromCount, count <= Int(Int32.max) - tagLength, ad.count <= Int(Int32.max) else { return nil }
        let result = withNonce(nonce) { nonceBytes in
            call(key.assumingMemoryBound(to: UInt8.self), nonceBytes, ad.baseAddress?.assumingMemoryBound(to: UInt8.self),
                 Int32(ad.count), bytes, Int32(count))
        }
        return result < 0 ? nil : result == 1
    }

    /// `EncryptWithAd` on arrays (handshake use).
    public mutating func encryptWithAd(_ ad: [UInt8], _ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard hasKey else { return plaintext }
        return try inPlace(plaintext + [UInt8](repeating: 0, count: CipherState.tagLength), ad: ad) {
            (state, bytes, ad) throws(NoiseError) in try state.encrypt(inPlace: bytes, count: plaintext.count, ad: ad)
        }
    }

    /// `DecryptWithAd` on arrays (handshake use).
    public mutating func decryptWithAd(_ ad: [UInt8], _ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard hasKey else { return ciphertext }
        guard ciphertext.count >= CipherState.tagLength else { throw .decryptFailed }
        return try inPlace(ciphertext, ad: ad) {
            (state, bytes, ad) throws(NoiseError) in try state.decrypt(inPlace: bytes, count: ciphertext.count, ad: ad)
        }
    }

    /// Runs an in-place transform over a copy of `buffer` and returns the bytes it wrote.
    private mutating func inPlace(
        _ buffer: [UInt8], ad: [UInt8],
        _ transform: (inout CipherState, UnsafeMutableRawPointer, UnsafeRawBufferPointer) throws(NoiseError) -> Int
    ) throws(NoiseError) -> [UInt8] {
        var buffer = buffer
        var state = self
        let result = buffer.withUnsafeMutableBytes { raw in
            ad.withUnsafeBytes { adBytes in
                Result { () throws(NoiseError) -> Int in try transform(&state, raw.baseAddress!, adBytes) }
            }
        }
        self = state
        return Array(buffer.prefix(try result.get()))
    }

    /// `Rekey()`: k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes) (sections
    /// 4.2, 11.3). The nonce is kept.
    public mutating func rekey() {
        guard let key else { return }
        var buffer = [UInt8](repeating: 0, count: 32 + CipherState.tagLength)
        var written: UInt64 = 0
        buffer.withUnsafeMutableBufferPointer { out in
            CipherState.withNonce(CipherState.maxNonce) { nonceBytes in
                _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                    out.baseAddress!, &written, out.baseAddress!, 32, nil, 0, nil, nonceBytes,
                    key.pointer.assumingMemoryBound(to: UInt8.self))
            }
        }
        self.key = SecretBytes(buffer.prefix(32))
        wipe(&buffer)
    }

    /// Runs `body` with the 96-bit nonce: 32 bits of zeros, then `n` little-endian (section
    /// 12.3), on the stack.
    @inline(__always)
    private static func withNonce<R>(_ n: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { bytes in
            for index in 0..<4 { bytes[index] = 0 }
            for index in 0..<8 { bytes[4 + index] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(index))) }
            return body(UnsafePointer(bytes.baseAddress!))
        }
    }
}
