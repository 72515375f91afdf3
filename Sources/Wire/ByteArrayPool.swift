/// Byte arrays whose storage is used again: the ciphertext a Send carries is copied out of its
/// frame into an array that lives until the recipient acknowledges it, and the relay path hands
/// that array back here afterwards, so the next Send's copy lands in the same storage instead of
/// a fresh allocation.
///
/// Reuse is only ever an optimisation: an array handed back while something else still shares
/// its storage is copied on write the next time it is filled (an allocation, as without the
/// pool), never overwritten under its other owner.
///
/// Not thread-safe: one pool per event loop, touched only on that loop. An array may come back to
/// a different loop's pool than the one it was taken from.
public final class ByteArrayPool {
    private var free: [[UInt8]] = []
    /// Arrays kept at most (a group message to 1,024 members frees ~1,000 at once), the bytes
    /// of storage kept at most, and the largest storage kept (bigger arrays are freed): a burst
    /// of large messages does not stay resident.
    public let limit: Int
    public let byteLimit: Int
    public let maxCapacity: Int
    private var bytesKept = 0
    /// Copies made in storage used again, and arrays taken back.
    public private(set) var reused = 0
    public private(set) var recycled = 0

    public init(limit: Int = 4_096, byteLimit: Int = 1 << 20, maxCapacity: Int = 2_048) {
        self.limit = limit
        self.byteLimit = byteLimit
        self.maxCapacity = maxCapacity
    }

    /// An array holding a copy of `bytes`, in reused storage when the array on top of the pool is
    /// large enough (one too small stays for a later, smaller copy). New storage is rounded up to
    /// a power of two (at least 64 bytes), so messages of similar sizes can use each other's
    /// without holding more than twice what they need.
    public func copy(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        if !free.isEmpty, free[free.count - 1].capacity >= bytes.count {
            // Shared storage (someone still holds the array) is copied on write below: reuse can
            // cost an allocation, never overwrite bytes another owner sees.
            var array = free.removeLast()
            bytesKept -= array.capacity
            reused += 1
            array.removeAll(keepingCapacity: true)
            array.append(contentsOf: bytes)
            return array
        }
        var array: [UInt8] = []
        let rounded = bytes.count <= 64 ? 64 : 1 << (Int.bitWidth - (bytes.count - 1).leadingZeroBitCount)
        array.reserveCapacity(rounded <= maxCapacity ? rounded : bytes.count)  // large ones are not kept: no rounding
        array.append(contentsOf: bytes)
        return array
    }

    /// Takes `array`'s storage back for a later `copy` (kept while the pool has room and the
    /// storage is not larger than `maxCapacity`); leaves `array` empty.
    public func recycle(_ array: inout [UInt8]) {
        let capacity = array.capacity
        // malloc may give a little more than was asked for: storage asked as `maxCapacity` is kept.
        guard capacity > 0, capacity <= maxCapacity + 64, free.count < limit, bytesKept + capacity <= byteLimit else { return }
        recycled += 1
        bytesKept += capacity
        free.append(array)
        array = []
    }

    /// More than half its arrays waiting: storage is coming back here faster than this loop
    /// reuses it (a loop whose devices receive more than they send), and some should move to a
    /// loop that is short (`takeSpare`).
    public var hasSpare: Bool { free.count > limit / 2 }

    /// Up to `count` arrays taken out for another loop's pool (`adopt`).
    public func takeSpare(_ count: Int) -> [[UInt8]] {
        let taken = Array(free.suffix(count))
        free.removeLast(taken.count)
        for array in taken { bytesKept -= array.capacity }
        return taken
    }

    /// Arrays another loop had to spare, kept as if given back here (while there is room).
    public func adopt(_ arrays: consuming [[UInt8]]) {
        for index in arrays.indices { recycle(&arrays[index]) }
    }

    /// Arrays waiting for reuse.
    public var count: Int { free.count }
}
