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
/// A result is kept only once the message that needed it has authenticated (its payload
/// decrypted under a key mixed from it): a peer can only add pairs whose static private key it
/// holds, each at the cost of an X25519 operation of its own, so evicting others' entries costs
/// it as much as it costs the node. A hit answers one X25519 operation sooner; the timing tells
/// an observer at most that some key holder handshook with this loop recently.
///
/// Direct-mapped: a fixed table of `capacity` slots chosen by the remote key's first bytes. The
/// table is one zeroed allocation made at the first insert, whose pages the kernel provides as
/// slots are first written; an entry is overwritten, never freed, when another pair maps to its
/// slot. 97 bytes per slot (three keys and a flag). Not thread-safe: one per event loop.
/// Capacity 0 caches nothing.
public final class StaticSecretCache {
    /// Slot layout: local public key | remote public key | shared secret, 32 bytes each; the
    /// occupied flags follow all the slots.
    private static let slotBytes = 3 * DH25519.length
    public let capacity: Int
    private var table: UnsafeMutablePointer<UInt8>?
    /// The table could not be allocated: the cache keeps nothing from then on.
    private var unavailable = false
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
        removeAll()
        free(table)
    }

    /// Wipes every entry (the local key changed: none can hit again).
    public func removeAll() {
        guard let table else { return }
        let flags = capacity * Self.slotBytes
        for slot in 0..<capacity where table[flags + slot] != 0 {
            sodium_memzero(table + slot * Self.slotBytes, Self.slotBytes)
            table[flags + slot] = 0
        }
    }

    /// The kept secret of `local` with `remoteStatic`, if any.
    func secret(_ local: KeyPair, with remoteStatic: [UInt8]) -> [UInt8]? {
        guard capacity > 0, remoteStatic.count == DH25519.length, let table else {
            if capacity > 0 { misses += 1 }
            return nil
        }
        let slot = Self.slot(of: remoteStatic, capacity: capacity)
        let entry = table + slot * Self.slotBytes
        guard table[capacity * Self.slotBytes + slot] != 0,
              memcmp(entry, local.publicKey, 32) == 0, memcmp(entry + 32, remoteStatic, 32) == 0
        else {
            misses += 1
            return nil
        }
        hits += 1
        return Array(UnsafeBufferPointer(start: entry + 64, count: 32))
    }

    /// Keeps `shared` = DH(`local`, `remoteStatic`), replacing whatever held its slot.
    func remember(_ shared: [UInt8], of local: KeyPair, with remoteStatic: [UInt8]) {
        guard capacity > 0, !unavailable, remoteStatic.count == DH25519.length, shared.count == 32 else { return }
        let flags = capacity * Self.slotBytes
        if table == nil {
            // calloc: large enough to come from fresh zero pages, touched only as slots fill.
            guard let allocated = calloc(flags + capacity, 1) else {
                unavailable = true
                return
            }
            table = allocated.assumingMemoryBound(to: UInt8.self)
        }
        guard let table else { return }
        let slot = Self.slot(of: remoteStatic, capacity: capacity)
        let entry = table + slot * Self.slotBytes
        entry.update(from: local.publicKey, count: 32)
        (entry + 32).update(from: remoteStatic, count: 32)
        (entry + 64).update(from: shared, count: 32)
        table[flags + slot] = 1
    }

    private static func slot(of key: [UInt8], capacity: Int) -> Int {
        var index = 0
        for byte in key.prefix(8) { index = index << 8 | Int(byte) }
        // Fibonacci hashing of the first eight bytes: a well-spread index even if a client's
        // key generator were poor in its low bits.
        return Int(truncatingIfNeeded: (UInt64(bitPattern: Int64(index)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & (capacity - 1)
    }
}
