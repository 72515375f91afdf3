import Reactor

/// Counters of the HTTP listeners, one set per loop (bumped by that loop only, summed on scrape).
public final class HTTPMetrics: Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        case plainOpened, plainClosed, tlsOpened, tlsClosed
        case tlsHandshakes, tlsHandshakeFailures
        case streamsOpened, streamsClosed
        case status1xx, status2xx, status3xx, status4xx, status5xx
        case headerTimeouts, bodyTimeouts
    }

    private let counts = AtomicCounters(count: Counter.allCases.count)

    public init() {}

    public func bump(_ counter: Counter) { counts.add(counter.rawValue) }

    public func value(_ counter: Counter) -> Int { counts.load(counter.rawValue) }

    func countStatus(_ status: Int) {
        switch status {
        case ..<200: bump(.status1xx)
        case ..<300: bump(.status2xx)
        case ..<400: bump(.status3xx)
        case ..<500: bump(.status4xx)
        default: bump(.status5xx)
        }
    }
}
