internal import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// Remembers `DH(local static, remote static)` — the `ss` token's result — per pair of static
/// keys, so a returning peer's IK handshake costs one X25519 operation less (of four on the
/// responder). The value depends only on the two long-term keys, so it is the same on every
/// handshake between them; a process that holds the local private key learns nothing new by
/// keeping it.
///
/// Direct-mapped: a fixed table of `capacity` slots chosen by the remote key's first bytes (a
/// curve point; a peer that picks colliding keys only evicts its own entries). The table is one
/// zeroed allocation made at the first insert, whose pages the kernel provides as slots are
/// first written; an entry is overwritten, never freed, when another pair maps to its slot. Not
/// thread-safe: one per event loop. Capacity 0 caches nothing.
public final class StaticSecretCache {
    /// Slot layout: local public key | remote public key | shared secret, 32 bytes each.
    private static let slotBytes = 3 * DH25519.length
    public let capacity: Int
    /// `capacity` slots, then one occupied flag per slot; nil until the first insert.
    private var table: UnsafeMutablePointer<UInt8>?
    public private(set) var hits = 0
    public private(set) var misses = 0

    /// `capacity` is rounded up to a power of two.
    public init(capacity: Int) {
        precondition(capacity >= 0, "a cache capacity is not negative")
        var rounded = capacity > 0 ? 1 : 0
        while rounded < capacity { rounded <<= 1 }
        self.capacity = rounded
    }

    deinit {
        guard let table else { return }
        // The secrets are key material: gone with the cache.
        for slot in 0..<capacity where table[capacity * Self.slotBytes + slot] != 0 {
            sodium_memzero(table + slot * Self.slotBytes, Self.slotBytes)
        }
        free(table)
    }

    /// The shared secret of `local` with `remoteStatic`, from the table or computed (and kept).
    func agree(_ local: KeyPair, with remoteStatic: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard capacity > 0, remoteStatic.count == DH25519.length else { return try DH25519.dh(local, remoteStatic) }
        let slot = Self.slot(of: remoteStatic, capacity: capacity)
        let flags = capacity * Self.slotBytes
        if let table, table[flags + slot] != 0 {
            let entry = table + slot * Self.slotBytes
            if memcmp(entry, local.publicKey, 32) == 0, memcmp(entry + 32, remoteStatic, 32) == 0 {
                hits += 1
                return Array(UnsafeBufferPointer(start: entry + 64, count: 32))
            }
        }
        misses += 1
        let shared = try DH25519.dh(local, remoteStatic)
        if table == nil {
            // calloc: large enough to come from fresh zero pages, touched only as slots fill.
            guard let allocated = calloc(flags + capacity, 1) else { return shared }
            table = allocated.assumingMemoryBound(to: UInt8.self)
        }
        guard let table else { return shared }
        let entry = table + slot * Self.slotBytes
        entry.update(from: local.publicKey, count: 32)
        (entry + 32).update(from: remoteStatic, count: 32)
        (entry + 64).update(from: shared, count: 32)
        table[flags + slot] = 1
        return shared
    }

    private static func slot(of key: [UInt8], capacity: Int) -> Int {
        var index = 0
        for byte in key.prefix(8) { index = index << 8 | Int(byte) }
        // Fibonacci hashing of the first eight bytes: a well-spread index even if a client's
        // key generator were poor in its low bits.
        return Int(truncatingIfNeeded: (UInt64(bitPattern: Int64(index)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & (capacity - 1)
    }
}
