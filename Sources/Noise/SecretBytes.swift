internal import CSodium

/// Fixed-size secret material (keys, chaining keys) in memory that is wiped when freed.
/// Copies share one wiped allocation (the storage is a reference) instead of spreading unwiped
/// copies of the key around. The bytes live inside that one object, so a secret costs one heap
/// allocation: an established connection holds two, and idle connections are what a node holds
/// most of.
public struct SecretBytes: @unchecked Sendable {
    // `@unchecked Sendable`: the storage is written only at creation (and by `overwrite`, which
    // its owner calls from its own thread); handshake and transport states are owned by one loop.
    // (`ManagedBuffer`, which gives the inline storage, cannot itself be declared Sendable.)
    private let storage: Storage

    private final class Storage: ManagedBuffer<Int, UInt8> {
        deinit {
            withUnsafeMutablePointers { count, bytes in sodium_memzero(bytes, count.pointee) }
        }
    }

    /// `count` zero bytes.
    public init(count: Int) {
        storage = unsafeDowncast(Storage.create(minimumCapacity: max(count, 1)) { _ in count }, to: Storage.self)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }

    /// A copy of `bytes`.
    public init(_ bytes: some Collection<UInt8>) {
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

    public var count: Int { storage.header }

    /// The secret's storage, for C crypto calls; valid while this value (or a copy) lives: the
    /// bytes are part of the storage object and never move.
    public var pointer: UnsafeMutableRawPointer {
        storage.withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
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
