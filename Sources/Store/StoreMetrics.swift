import Reactor

/// What the store thread reports: batches, jobs, commit latency and the number of deliveries
/// waiting in the offline queue. Written by the store thread only; read by a scrape.
public final class StoreMetrics: Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        case batches, operations, failedBatches, refusedJobs
        /// Gauge: rows of `messages` (deliveries waiting for a device), as committed.
        case queuedMessages
    }

    private let counts = AtomicCounters(count: Counter.allCases.count)
    /// Time from a batch's BEGIN to its COMMIT (fsync included).
    public let batchLatency = AtomicHistogram(boundsMicroseconds: AtomicHistogram.latencyBounds)

    public init() {}

    func add(_ counter: Counter, _ value: Int = 1) { counts.add(counter.rawValue, value) }

    public func value(_ counter: Counter) -> Int { counts.load(counter.rawValue) }
}
