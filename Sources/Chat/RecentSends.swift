/// The last message ids one connection sent and which way each went. The store de-duplicates only
/// what it stored, so a resend on the same connection of a message delivered directly (PROTOCOL.md
/// section 20.8) is recognised here: answered as a duplicate, never delivered twice.
struct RecentSends {
    enum Path { case stored, directPending, directDone }

    static let capacity = 256
    private var paths: [[UInt8]: Path] = [:]
    /// Ids in the order recorded, a ring once full: the oldest is forgotten first.
    private var order: [[UInt8]] = []
    private var next = 0

    func path(of id: [UInt8]) -> Path? { paths[id] }

    /// Records `id`, forgetting the oldest id once `capacity` are kept.
    mutating func record(_ id: [UInt8], _ path: Path) {
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
    mutating func forget(_ id: [UInt8]) { paths.removeValue(forKey: id) }
}
