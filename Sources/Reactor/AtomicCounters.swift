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

/// A histogram with fixed bucket bounds, observed by one thread and read by any (a scrape), in
/// the shape Prometheus wants: cumulative counts per upper bound, a total count and a sum.
public final class AtomicHistogram: Sendable {
    /// Upper bounds in microseconds, ascending; one more bucket counts everything above.
    public let boundsMicroseconds: [Int]
    private let counts: AtomicCounters
    private let sum = AtomicCounters(count: 1)

    public init(boundsMicroseconds: [Int]) {
        self.boundsMicroseconds = boundsMicroseconds
        counts = AtomicCounters(count: boundsMicroseconds.count + 1)
    }

    /// Latency buckets from 50 µs to 1 s.
    public static let latencyBounds = [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000]

    @inline(__always)
    public func observe(microseconds: Int) {
        var index = 0
        while index < boundsMicroseconds.count && microseconds > boundsMicroseconds[index] { index += 1 }
        counts.add(index)
        sum.add(0, microseconds)
    }

    /// Cumulative counts for each bound and for +Inf (the total).
    public func cumulative() -> [Int] {
        var running = 0
        return (0...boundsMicroseconds.count).map { index in
            running += counts.load(index)
            return running
        }
    }

    public var sumMicroseconds: Int { sum.load(0) }
}
