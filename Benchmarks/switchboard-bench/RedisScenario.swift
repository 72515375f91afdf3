import CSwitchboardShims
import Reactor
import Synchronization

/// The reference peer: the relay and fan-out workloads done the way one would with Redis alone —
/// PUBLISH to a per-recipient (or per-group) channel with the recipients SUBSCRIBEd — at the same
/// message size and the same number of messages in flight as the node's scenarios. Redis does
/// the least possible work per message (no encryption, no storage, no acknowledgements), so it is
/// the bar for the work the node does per message on top.
final class RedisScenario: @unchecked Sendable {
    // `@unchecked Sendable`: connections and histograms are touched only on their loops;
    // counters are atomic.
    enum Mode {
        /// `pairs` publisher/subscriber pairs, one channel each.
        case relay(pairs: Int)
        /// One publisher and `members - 1` subscribers on one channel.
        case fanout(members: Int)
    }

    let target: SocketAddress
    let mode: Mode
    let window: Int
    let size: Int
    let group: EventLoopGroup
    let phase = Atomic<Int>(0)
    let ready = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let messages = Atomic<Int>(0)
    /// Fan-out: copies of in-flight messages not yet received.
    let outstanding = Atomic<Int>(0)
    let runID = UInt64(sb_monotonic_ns() % 1_000_000_000)
    var histograms: [Histogram]
    var endpoints: [[RedisEndpoint]]

    init(target: SocketAddress, mode: Mode, window: Int, size: Int, group: EventLoopGroup) {
        self.target = target
        self.mode = mode
        self.window = window
        self.size = size
        self.group = group
        histograms = group.loops.map { _ in Histogram() }
        endpoints = group.loops.map { _ in [] }
    }

    /// Subscribers and publishers that must be ready before sending.
    var expected: Int {
        switch mode {
        case .relay(let pairs): return 2 * pairs
        case .fanout(let members): return members
        }
    }

    var subscribersPerMessage: Int {
        switch mode {
        case .relay: return 1
        case .fanout(let members): return members - 1
        }
    }

    func start() {
        switch mode {
        case .relay(let pairs):
            for pair in 0..<pairs {
                let loop = group.loops[pair % group.loops.count]
                loop.execute { [self] in
                    let channel = Array("r\(runID):\(pair)".utf8)
                    let publisher = RedisEndpoint(scenario: self, loop: loop, channel: channel, publishing: true)
                    let subscriber = RedisEndpoint(scenario: self, loop: loop, channel: channel, publishing: false)
                    subscriber.publisher = publisher
                    endpoints[loop.id] += [publisher, subscriber]
                    subscriber.open()
                    publisher.open()
                }
            }
        case .fanout(let members):
            let channel = Array("g\(runID)".utf8)
            for index in 0..<members {
                let loop = group.loops[index % group.loops.count]
                loop.execute { [self] in
                    let endpoint = RedisEndpoint(scenario: self, loop: loop, channel: channel, publishing: index == 0)
                    endpoints[loop.id].append(endpoint)
                    endpoint.open()
                }
            }
        }
    }

    func beginSending() {
        for loop in group.loops {
            loop.execute { [self] in
                for endpoint in endpoints[loop.id] where endpoint.publishing {
                    for _ in 0..<window { endpoint.publish() }
                }
            }
        }
    }

    /// The fan-out publisher (loop 0), for subscribers on any loop to wake.
    var fanoutPublisher: RedisEndpoint? { endpoints[0].first { $0.publishing } }

    func histogram() -> Histogram { Histogram.merged(histograms) }
}

final class RedisEndpoint {
    unowned let scenario: RedisScenario
    unowned let loop: EventLoop
    let channel: [UInt8]
    let publishing: Bool
    let redis = RESPConnection()
    weak var publisher: RedisEndpoint?
    private var payload: [UInt8]

    init(scenario: RedisScenario, loop: EventLoop, channel: [UInt8], publishing: Bool) {
        self.scenario = scenario
        self.loop = loop
        self.channel = channel
        self.publishing = publishing
        payload = [UInt8](repeating: 0x5A, count: scenario.size)
    }

    func open() {
        redis.onOpen = { [unowned self] in
            if publishing {
                scenario.ready.add(1, ordering: .relaxed)
            } else {
                redis.send([Array("SUBSCRIBE".utf8), channel])
            }
        }
        redis.onReply = { [unowned self] value in received(value) }
        redis.onClose = { [unowned self] in scenario.failed.add(1, ordering: .relaxed) }
        do {
            _ = try Connection.connect(to: scenario.target, on: loop, handler: redis)
        } catch {
            scenario.failed.add(1, ordering: .relaxed)
        }
    }

    /// The message carries its send time in its first 8 bytes, as in the node's scenarios.
    func publish() {
        guard scenario.phase.load(ordering: .relaxed) < 3 else { return }
        let now = sb_monotonic_ns()
        for index in 0..<8 { payload[index] = UInt8(truncatingIfNeeded: now >> (8 * UInt64(index))) }
        if case .fanout = scenario.mode { scenario.outstanding.add(scenario.subscribersPerMessage, ordering: .relaxed) }
        redis.send([Array("PUBLISH".utf8), channel, payload])
    }

    private func received(_ value: RESPConnection.Value) {
        switch value {
        case .integer(let receivers) where publishing:
            if receivers != scenario.subscribersPerMessage { scenario.failed.add(1, ordering: .relaxed) }
        case .error:
            scenario.failed.add(1, ordering: .relaxed)
        case .array(let items):
            guard items.count == 3, case .bulk(let kind) = items[0] else { return }
            if kind == Array("subscribe".utf8) {
                scenario.ready.add(1, ordering: .relaxed)
            } else if kind == Array("message".utf8), case .bulk(let body) = items[2] {
                delivered(body)
            }
        default:
            break
        }
    }

    private func delivered(_ body: [UInt8]) {
        let recording = scenario.phase.load(ordering: .relaxed) == 2
        if recording {
            var sentAt: UInt64 = 0
            for index in 0..<min(8, body.count) { sentAt |= UInt64(body[index]) << (8 * UInt64(index)) }
            scenario.histograms[loop.id].record(sb_monotonic_ns() &- sentAt)
            scenario.delivered.add(1, ordering: .relaxed)
        }
        switch scenario.mode {
        case .relay:
            publisher?.publish()  // closed loop: the pair's publisher sends the next one
        case .fanout:
            // The last subscriber of a message: the publisher sends the next.
            if scenario.outstanding.subtract(1, ordering: .relaxed).newValue % scenario.subscribersPerMessage == 0 {
                if recording { scenario.messages.add(1, ordering: .relaxed) }
                let owner = scenario
                owner.group.loops[0].execute { owner.fanoutPublisher?.publish() }
            }
        }
    }
}
