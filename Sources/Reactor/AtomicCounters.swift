import CSwitchboardShims

/// A fixed number of counters bumped by one thread (a loop) and read by any (a metrics scrape),
/// with relaxed atomic operations. Swift's `Atomic` cannot be stored in an array; this can.
///
/// `@unchecked Sendable`: the storage is allocated once, never resized, and every access goes
/// through the C atomic builtins.
public final class AtomicCounters: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Int>
    public let count: Int

    public init(count: Int) {
        self.count = count
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
    }

    deinit { storage.deallocate() }

    @inline(__always)
    public func add(_ index: Int, _ value: Int = 1) {
        precondition(index >= 0 && index < count)
        sb_atomic_add(storage + index, value)
    }

    public func load(_ index: Int) -> Int {
        precondition(index >= 0 && index < count)
        return sb_atomic_load(storage + index)
    }
}
