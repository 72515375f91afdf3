import Wire

/// The last message ids one connection sent and which way each went. The store de-duplicates only
/// what it stored, so a resend on the same connection of a message delivered directly (PROTOCOL.md
/// section 20.8) is recognised here: answered as a duplicate, never delivered twice.
///
/// Kept small because every sending connection has one: 64 ids, each folded to one word
/// (`MessageID.folded`; a client that makes two of its own ids fold alike only confuses itself), in
/// two 512-byte arrays allocated at the first send and searched linearly (faster than hashing at
/// this size).
struct RecentSends {
    enum Path: Equatable {
        case stored
        /// Sent directly to `account`, not answered yet.
        case directPending(account: UInt64)
        case directDone
    }

    static let capacity = 64
    private var keys: [UInt64] = []
    private var paths: [Path] = []
    private var next = 0

    /// An id as one nonzero word.
    private static func key(_ id: MessageID) -> UInt64 {
        let folded = id.folded
        return folded == 0 ? 1 : folded
    }

    func path(of id: MessageID) -> Path? {
        index(of: RecentSends.key(id)).map { paths[$0] }
    }

    /// Where `key` is kept: compares eight keys at a time (a send looks up and records its id
    /// about three times, most often missing, which scans every key).
    private func index(of key: UInt64) -> Int? {
        keys.withUnsafeBufferPointer { buffer -> Int? in
            guard let base = buffer.baseAddress else { return nil }
            let needle = SIMD8<UInt64>(repeating: key)
            var start = 0
            while start + 8 <= buffer.count {
                let lanes = UnsafeRawPointer(base + start).loadUnaligned(as: SIMD8<UInt64>.self)
                if any(lanes .== needle) {
                    for lane in 0..<8 where lanes[lane] == key { return start + lane }
                }
                start += 8
            }
            while start < buffer.count {
                if buffer[start] == key { return start }
                start += 1
            }
            return nil
        }
    }

    /// Records `id`, forgetting the oldest id once `capacity` are kept.
    /// - Parameter absent: the caller just found `id` is not kept (`path(of:)` was nil).
    mutating func record(_ id: MessageID, _ path: Path, absent: Bool = false) {
        let key = RecentSends.key(id)
        if !absent, let index = index(of: key) {
            paths[index] = path
        } else if keys.count < RecentSends.capacity {
            if keys.isEmpty {
                keys.reserveCapacity(RecentSends.capacity)
                paths.reserveCapacity(RecentSends.capacity)
            }
            keys.append(key)
            paths.append(path)
        } else {
            keys[next] = key
            paths[next] = path
            next = (next + 1) % RecentSends.capacity
        }
    }

    /// Forgets `id` (its send failed: sending it again is a new attempt).
    mutating func forget(_ id: MessageID) {
        if let index = index(of: RecentSends.key(id)) { keys[index] = 0 }
    }
}
