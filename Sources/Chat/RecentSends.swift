/// The last message ids one connection sent and which way each went. The store de-duplicates only
/// what it stored, so a resend on the same connection of a message delivered directly (PROTOCOL.md
/// section 20.8) is recognised here: answered as a duplicate, never delivered twice.
///
/// Kept small because every sending connection has one: 64 ids, each folded to one word (ids are
/// 16 random bytes; a client that makes two of its own ids fold alike only confuses itself), in
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
    private static func key(_ id: [UInt8]) -> UInt64 {
        let folded = id.withUnsafeBytes { raw -> UInt64 in
            raw.count >= 16 ? raw.loadUnaligned(as: UInt64.self) ^ raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                : raw.reduce(UInt64(raw.count)) { $0 &* 31 &+ UInt64($1) }
        }
        return folded == 0 ? 1 : folded
    }

    func path(of id: [UInt8]) -> Path? {
        let key = RecentSends.key(id)
        return keys.firstIndex(of: key).map { paths[$0] }
    }

    /// Records `id`, forgetting the oldest id once `capacity` are kept.
    mutating func record(_ id: [UInt8], _ path: Path) {
        let key = RecentSends.key(id)
        if let index = keys.firstIndex(of: key) {
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
    mutating func forget(_ id: [UInt8]) {
        if let index = keys.firstIndex(of: RecentSends.key(id)) { keys[index] = 0 }
    }
}
