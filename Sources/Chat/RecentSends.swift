import Wire

/// The last message ids one connection sent and which way each went. The store de-duplicates only
/// what it stored, so a resend on the same connection of a message delivered directly (PROTOCOL.md
/// section 20.8) is recognised here: answered as a duplicate, never delivered twice.
///
/// Kept small because every sending connection has one: 64 ids, each folded to one word
/// (`MessageID.folded`; a client that makes two of its own ids fold alike only confuses itself), in
/// a ring that gives the order of forgetting, and a 128-slot open-addressing index into it (ids
/// are random, so the folded word's low bits pick the slot): a send looks its id up in a probe or
/// two instead of scanning 64 words. About 1.7 KB, allocated at the first send.
struct RecentSends {
    enum Path: Equatable {
        case stored
        /// Sent directly to `account`, not answered yet.
        case directPending(account: UInt64)
        case directDone
    }

    static let capacity = 64
    private static let tableSize = 128
    private var keys: [UInt64] = []  // the ring; 0 = forgotten
    private var paths: [Path] = []
    /// Ring index + 1 of each kept key, by slot; 0 = empty.
    private var table: [UInt8] = []
    private var next = 0

    /// An id as one nonzero word.
    private static func key(_ id: MessageID) -> UInt64 {
        let folded = id.folded
        return folded == 0 ? 1 : folded
    }

    func path(of id: MessageID) -> Path? {
        index(of: RecentSends.key(id)).map { paths[$0] }
    }

    private static func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: key) & (tableSize - 1) }

    /// Where `key` is in the ring.
    private func index(of key: UInt64) -> Int? {
        guard !table.isEmpty else { return nil }
        var slot = RecentSends.slot(key)
        while true {
            let entry = Int(table[slot])
            if entry == 0 { return nil }
            if keys[entry - 1] == key { return entry - 1 }
            slot = (slot + 1) & (RecentSends.tableSize - 1)
        }
    }

    /// Records `id`, forgetting the oldest id once `capacity` are kept.
    /// - Parameter absent: the caller just found `id` is not kept (`path(of:)` was nil).
    mutating func record(_ id: MessageID, _ path: Path, absent: Bool = false) {
        let key = RecentSends.key(id)
        if !absent, let index = index(of: key) {
            paths[index] = path
            return
        }
        let position: Int
        if keys.count < RecentSends.capacity {
            if keys.isEmpty {
                keys.reserveCapacity(RecentSends.capacity)
                paths.reserveCapacity(RecentSends.capacity)
                table = [UInt8](repeating: 0, count: RecentSends.tableSize)
            }
            keys.append(key)
            paths.append(path)
            position = keys.count - 1
        } else {
            position = next
            if keys[position] != 0 { unindex(position) }
            keys[position] = key
            paths[position] = path
            next = (next + 1) % RecentSends.capacity
        }
        var slot = RecentSends.slot(key)
        while table[slot] != 0 { slot = (slot + 1) & (RecentSends.tableSize - 1) }
        table[slot] = UInt8(position + 1)
    }

    /// Forgets `id` (its send failed: sending it again is a new attempt).
    mutating func forget(_ id: MessageID) {
        guard let index = index(of: RecentSends.key(id)) else { return }
        unindex(index)
        keys[index] = 0
    }

    /// Takes ring position `position` (whose key is still in `keys`) out of the index, moving
    /// later entries of its probe run back so that no lookup stops early (backward-shift
    /// deletion).
    private mutating func unindex(_ position: Int) {
        let mask = RecentSends.tableSize - 1
        var hole = RecentSends.slot(keys[position])
        while Int(table[hole]) != position + 1 { hole = (hole + 1) & mask }
        table[hole] = 0
        var probe = (hole + 1) & mask
        while table[probe] != 0 {
            let home = RecentSends.slot(keys[Int(table[probe]) - 1])
            // The entry may move into the hole unless its home lies after the hole in the run.
            if (probe - home) & mask >= (probe - hole) & mask {
                table[hole] = table[probe]
                table[probe] = 0
                hole = probe
            }
            probe = (probe + 1) & mask
        }
    }
}
