internal import CSodium

/// A Noise hash function (section 4.3, 12.5, 12.8), with HMAC and HKDF built on it.
public protocol NoiseHashFunction: Sendable {
    /// The name used in protocol names ("SHA256", "BLAKE2b").
    static var name: String { get }
    static var hashLength: Int { get }
    static var blockLength: Int { get }
    /// HASH over the concatenation of `parts`.
    static func hash(_ parts: [UnsafeRawBufferPointer]) -> [UInt8]
    /// HMAC-HASH(key, concatenation of `parts`) per RFC 2104; a default built on `hash` exists.
    static func hmac(key: UnsafeRawBufferPointer, _ parts: [UnsafeRawBufferPointer]) -> [UInt8]
}

public enum SHA256: NoiseHashFunction {
    public static let name = "SHA256"
    public static let hashLength = 32
    public static let blockLength = 64

    public static func hash(_ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        for part in parts where part.count > 0 {
            crypto_hash_sha256_update(&state, part.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(part.count))
        }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_hash_sha256_final(&state, &out)
        return out
    }

    /// libsodium's HMAC-SHA-256 (any key length), with its state on the stack: the handshake
    /// runs a dozen of these, so they should not allocate more than their output.
    public static func hmac(key: UnsafeRawBufferPointer, _ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        guard let keyBytes = key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count > 0 else {
            return genericHMAC(key: key, parts)
        }
        var state = crypto_auth_hmacsha256_state()
        crypto_auth_hmacsha256_init(&state, keyBytes, key.count)
        for part in parts where part.count > 0 {
            crypto_auth_hmacsha256_update(&state, part.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(part.count))
        }
        var out = [UInt8](repeating: 0, count: 32)
        crypto_auth_hmacsha256_final(&state, &out)
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        return out
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

    /// HMAC-HASH(key, data) per RFC 2104 with this hash's block length.
    static func hmac(key: [UInt8], _ data: [UInt8]...) -> [UInt8] {
        key.withUnsafeBytes { rawKey in withBuffers(data) { hmac(key: rawKey, $0) } }
    }

    public static func hmac(key rawKey: UnsafeRawBufferPointer, _ data: [UnsafeRawBufferPointer]) -> [UInt8] {
        genericHMAC(key: rawKey, data)
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
    static func hkdf(chainingKey: [UInt8], inputKeyMaterial: [UInt8], outputs: Int) -> [[UInt8]] {
        var tempKey = hmac(key: chainingKey, inputKeyMaterial)
        defer { wipe(&tempKey) }
        let output1 = hmac(key: tempKey, [0x01])
        let output2 = hmac(key: tempKey, output1, [0x02])
        if outputs == 2 { return [output1, output2] }
        let output3 = hmac(key: tempKey, output2, [0x03])
        return [output1, output2, output3]
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
