/// The last message ids one connection sent and which way each went. The store de-duplicates only
/// what it stored, so a resend on the same connection of a message delivered directly (PROTOCOL.md
/// section 20.8) is recognised here: answered as a duplicate, never delivered twice.
struct RecentSends {
    enum Path { case stored, directPending, directDone }

    static let capacity = 256
    private var ids: [[UInt8]] = []
    private var paths: [Path] = []
    private var next = 0

    func path(of id: [UInt8]) -> Path? {
        ids.firstIndex(of: id).map { paths[$0] }
    }

    /// Records `id`, forgetting the oldest id once `capacity` are kept.
    mutating func record(_ id: [UInt8], _ path: Path) {
        if let index = ids.firstIndex(of: id) {
            paths[index] = path
        } else if ids.count < RecentSends.capacity {
            ids.append(id)
            paths.append(path)
        } else {
            ids[next] = id
            paths[next] = path
            next = (next + 1) % RecentSends.capacity
        }
    }

    /// Forgets `id` (its send failed: sending it again is a new attempt).
    mutating func forget(_ id: [UInt8]) {
        guard let index = ids.firstIndex(of: id) else { return }
        ids[index] = []
        paths[index] = .stored
    }
}
