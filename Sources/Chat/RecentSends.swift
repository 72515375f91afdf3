/// The last message ids one connection sent and which way each went. The store de-duplicates only
/// what it stored, so a resend on the same connection of a message delivered directly (PROTOCOL.md
/// section 20.8) is recognised here: answered as a duplicate, never delivered twice.
struct RecentSends {
    enum Path: Equatable {
        case stored
        /// Sent directly to `account`, not answered yet.
        case directPending(account: UInt64)
        case directDone
    }

    /// A message id (16 bytes, PROTOCOL.md section 20.1) as two words: hashed in two steps rather
    /// than sixteen.
    struct Key: Hashable {
        let high: UInt64
        let low: UInt64
        init(_ id: [UInt8]) {
            (high, low) = id.withUnsafeBytes { raw in
                raw.count >= 16 ? (raw.loadUnaligned(as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                    : (UInt64(raw.count), raw.reduce(0) { $0 << 8 | UInt64($1) })
            }
        }
    }

    static let capacity = 256
    private var paths: [Key: Path] = [:]
    /// Ids in the order recorded, a ring once full: the oldest is forgotten first.
    private var order: [Key] = []
    private var next = 0

    func path(of id: [UInt8]) -> Path? { paths[Key(id)] }

    /// Records `id`, forgetting the oldest id once `capacity` are kept.
    mutating func record(_ id: [UInt8], _ path: Path) {
        let id = Key(id)
        if paths.updateValue(path, forKey: id) != nil { return }
        if order.count < RecentSends.capacity {
            if order.isEmpty {
                order.reserveCapacity(RecentSends.capacity)
                paths.reserveCapacity(RecentSends.capacity)
            }
            order.append(id)
        } else {
            paths.removeValue(forKey: order[next])
            order[next] = id
            next = (next + 1) % RecentSends.capacity
        }
    }

    /// Forgets `id` (its send failed: sending it again is a new attempt).
    mutating func forget(_ id: [UInt8]) { paths.removeValue(forKey: Key(id)) }
}
