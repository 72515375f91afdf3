internal import CSodium

/// Fixed-size secret material (keys, chaining keys) in memory that is wiped when freed.
/// Reference type so copies of a `CipherState` share one wiped allocation instead of spreading
/// unwiped copies of the key around.
public final class SecretBytes: @unchecked Sendable {
    // `@unchecked Sendable`: written only at creation (and by `overwrite`, which its owner calls
    // from its own thread); handshake and transport states are owned by one loop.
    /// The secret's storage, for C crypto calls; valid while this object lives.
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = .allocate(byteCount: max(count, 1), alignment: 16)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }

    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        var offset = 0
        for byte in bytes {
            pointer.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }

    /// Fresh random bytes from libsodium's CSPRNG.
    public static func random(count: Int) -> SecretBytes {
        let secret = SecretBytes(count: count)
        randombytes_buf(secret.pointer, count)
        return secret
    }

    deinit {
        sodium_memzero(pointer, count)
        pointer.deallocate()
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }

    /// A copy as an array (for writing to a key file; the caller must not keep it longer than needed).
    public var array: [UInt8] { Array(bytes) }

    func overwrite(with source: UnsafeRawBufferPointer) {
        precondition(source.count >= count)
        pointer.copyMemory(from: source.baseAddress!, byteCount: count)
    }
}

/// Wipes an array's storage (for temporaries that held secrets).
func wipe(_ array: inout [UInt8]) {
    array.withUnsafeMutableBytes { raw in
        if let base = raw.baseAddress { sodium_memzero(base, raw.count) }
    }
}
