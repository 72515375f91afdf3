internal import CSodium
internal import COpenSSL

/// A Noise hash function (section 4.3, 12.5, 12.8), with HMAC and HKDF built on it.
public protocol NoiseHashFunction: Sendable {
    /// The name used in protocol names ("SHA256", "BLAKE2b").
    static var name: String { get }
    static var hashLength: Int { get }
    static var blockLength: Int { get }
    /// HASH over the concatenation of `parts`.
    static func hash(_ parts: [UnsafeRawBufferPointer]) -> [UInt8]
    /// HASH(`first` || `second`), the shape of `MixHash`, without a list of parts to allocate.
    /// A default built on `hash(_:)` exists.
    static func hash(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> [UInt8]
    /// HMAC-HASH(key, concatenation of `parts`) per RFC 2104; a default built on `hash` exists.
    static func hmac(key: UnsafeRawBufferPointer, _ parts: [UnsafeRawBufferPointer]) -> [UInt8]
    /// HMAC-HASH(key, `data` followed by the byte `counter` when there is one): the shape of
    /// every HMAC in HKDF, without a list of parts to allocate. A default built on
    /// `hmac(key:_:)` exists.
    static func hmac(key: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer, counter: UInt8?) -> [UInt8]
}

/// SHA-256 through OpenSSL's SHA256_CTX functions, which use the CPU's SHA extensions where it
/// has them (about five times libsodium's portable code for the handshake's short inputs); the
/// state lives on the stack. HMAC is RFC 2104 over it, so no HMAC object is allocated either.
public enum SHA256: NoiseHashFunction {
    public static let name = "SHA256"
    public static let hashLength = 32
    public static let blockLength = 64

    public static func hash(_ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        var context = SHA256_CTX()
        SHA256_Init(&context)
        for part in parts { update(&context, part) }
        return finish(&context)
    }

    public static func hash(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> [UInt8] {
        var context = SHA256_CTX()
        SHA256_Init(&context)
        update(&context, first)
        update(&context, second)
        return finish(&context)
    }

    public static func hmac(key: UnsafeRawBufferPointer, _ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        hmacSHA256(key: key) { context in
            for part in parts { update(&context, part) }
        }
    }

    public static func hmac(key: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer, counter: UInt8?) -> [UInt8] {
        hmacSHA256(key: key) { context in
            update(&context, data)
            if var byte = counter { withUnsafeBytes(of: &byte) { update(&context, $0) } }
        }
    }

    private static func update(_ context: inout SHA256_CTX, _ part: UnsafeRawBufferPointer) {
        guard let base = part.baseAddress, part.count > 0 else { return }
        SHA256_Update(&context, base, part.count)
    }

    private static func finish(_ context: inout SHA256_CTX) -> [UInt8] {
        let digest = [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
            SHA256_Final(buffer.baseAddress!, &context)
            count = 32
        }
        wipeValue(&context)
        return digest
    }

    /// HMAC-SHA-256(key, what `feed` adds) per RFC 2104: a key longer than a block is hashed
    /// first, then zero-padded to 64 bytes; inner hash over key ⊕ 0x36 and the data, outer hash
    /// over key ⊕ 0x5c and the inner digest.
    private static func hmacSHA256(key: UnsafeRawBufferPointer, _ feed: (inout SHA256_CTX) -> Void) -> [UInt8] {
        var block: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var context = SHA256_CTX()
        defer {
            wipeValue(&block)
            wipeValue(&context)
        }
        withUnsafeMutableBytes(of: &block) { padded in
            if key.count > blockLength {
                SHA256_Init(&context)
                update(&context, key)
                SHA256_Final(padded.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
            } else if key.count > 0 {
                padded.copyMemory(from: key)
            }
            for index in 0..<blockLength { padded[index] ^= 0x36 }
            SHA256_Init(&context)
            SHA256_Update(&context, padded.baseAddress!, blockLength)
        }
        feed(&context)
        var inner: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        defer { wipeValue(&inner) }
        return withUnsafeMutableBytes(of: &inner) { innerDigest in
            SHA256_Final(innerDigest.baseAddress!.assumingMemoryBound(to: UInt8.self), &context)
            return withUnsafeMutableBytes(of: &block) { padded in
                for index in 0..<blockLength { padded[index] ^= 0x36 ^ 0x5c }
                SHA256_Init(&context)
                SHA256_Update(&context, padded.baseAddress!, blockLength)
                SHA256_Update(&context, innerDigest.baseAddress!, 32)
                return [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
                    SHA256_Final(buffer.baseAddress!, &context)
                    count = 32
                }
            }
        }
    }
}

/// Zeroes a value stored inline that held key material (a hash state, a tuple holding a padded
/// key). Not for arrays, whose inline bytes are only a reference: `wipe(_:)` clears those.
func wipeValue<T>(_ value: inout T) {
    withUnsafeMutableBytes(of: &value) { raw in
        if let base = raw.baseAddress { sodium_memzero(base, raw.count) }
    }
}

public enum BLAKE2b: NoiseHashFunction {
    public static let name = "BLAKE2b"
    public static let hashLength = 64
    public static let blockLength = 128

    public static func hash(_ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        // One-shot over the concatenation: libsodium's incremental BLAKE2b state needs 64-byte
        // alignment that Swift cannot import; handshake inputs are small.
        var input: [UInt8] = []
        input.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { input.append(contentsOf: part) }
        var out = [UInt8](repeating: 0, count: 64)
        crypto_generichash_blake2b(&out, 64, input, UInt64(input.count), nil, 0)
        wipe(&input)
        return out
    }
}

extension NoiseHashFunction {
    static func hash(_ parts: [UInt8]...) -> [UInt8] {
        withBuffers(parts) { hash($0) }
    }

    public static func hmac(key rawKey: UnsafeRawBufferPointer, _ data: [UnsafeRawBufferPointer]) -> [UInt8] {
        genericHMAC(key: rawKey, data)
    }

    public static func hash(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> [UInt8] {
        hash([first, second])
    }

    public static func hmac(key: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer, counter: UInt8?) -> [UInt8] {
        withParts(data, counter) { hmac(key: key, $0) }
    }

    /// `data`, then the counter byte if there is one, as a list of parts.
    static func withParts<R>(_ data: UnsafeRawBufferPointer, _ counter: UInt8?, _ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        guard var byte = counter else { return body([data]) }
        return withUnsafeBytes(of: &byte) { body([data, $0]) }
    }

    /// The generic HMAC construction over `hash`.
    static func genericHMAC(key rawKey: UnsafeRawBufferPointer, _ data: [UnsafeRawBufferPointer]) -> [UInt8] {
        let key = Array(rawKey)
        var block = key.count > blockLength ? hash(key) : key
        block += [UInt8](repeating: 0, count: blockLength - block.count)
        var inner = block.map { $0 ^ 0x36 }
        var outer = block.map { $0 ^ 0x5c }
        defer {
            wipe(&block)
            wipe(&inner)
            wipe(&outer)
        }
        let innerHash = inner.withUnsafeBytes { innerBytes in hash([innerBytes] + data) }
        return hash(outer, innerHash)
    }

    /// HKDF(chaining_key, input_key_material, num_outputs) as section 4.3 defines it.
    /// Each HMAC goes through `hmac(key:_:counter:)`: no list of parts or literal arrays per call
    /// (a handshake runs several HKDFs; they were most of its allocations).
    static func hkdf(chainingKey: [UInt8], inputKeyMaterial: [UInt8], outputs: Int) -> [[UInt8]] {
        var tempKey = chainingKey.withUnsafeBytes { key in
            inputKeyMaterial.withUnsafeBytes { hmac(key: key, $0, counter: nil) }
        }
        defer { wipe(&tempKey) }
        return tempKey.withUnsafeBytes { key in
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            let output1 = hmac(key: key, empty, counter: 0x01)
            let output2 = output1.withUnsafeBytes { hmac(key: key, $0, counter: 0x02) }
            if outputs == 2 { return [output1, output2] }
            let output3 = output2.withUnsafeBytes { hmac(key: key, $0, counter: 0x03) }
            return [output1, output2, output3]
        }
    }
}

/// Calls `body` with raw views of every array.
func withBuffers<R>(_ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) -> R) -> R {
    func recurse(_ index: Int, _ collected: inout [UnsafeRawBufferPointer]) -> R {
        if index == arrays.count { return body(collected) }
        return arrays[index].withUnsafeBytes { raw in
            collected.append(raw)
            return recurse(index + 1, &collected)
        }
    }
    var collected: [UnsafeRawBufferPointer] = []
    return recurse(0, &collected)
}
