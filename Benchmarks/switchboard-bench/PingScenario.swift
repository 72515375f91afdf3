import CSwitchboardShims
import Reactor
import Synchronization
import SwitchboardClient
import Wire

/// Closed-loop round trips over the encrypted protocol: each connection registers (XX), then
/// keeps `window` pings of `size` bytes in flight; each pong is timed and replaced.
final class PingScenario: @unchecked Sendable {
    // `@unchecked Sendable`: `states[i]` is touched only on loop i; the rest is atomic/immutable.
    struct Options {
        var target: SocketAddress
        var transport = ClientTransport.native
        var connections = 100
        var window = 1
        var sources = 1
    }

    let options: Options
    let group: EventLoopGroup
    let phase = Atomic<Int>(0)  // 0 connecting, 1 warm-up, 2 recording, 3 stopping
    let welcomed = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let runID = UInt64(sb_monotonic_ns() % 1_000_000_000)
    var states: [LoopState]

    final class LoopState {
        var histogram = Histogram()
        var clients: [PingClient] = []
    }

    init(options: Options, group: EventLoopGroup) {
        self.options = options
        self.group = group
        states = group.loops.map { _ in LoopState() }
    }

    func connect() {
        for loop in group.loops { connect(from: loop.id, on: loop) }
    }

    /// Opens this loop's connections from `index` on, a batch per loop iteration, so the loop
    /// answers the node's handshake messages while it is still opening the rest (one long
    /// burst would leave the first connections unanswered for seconds).
    private func connect(from start: Int, on loop: EventLoop) {
        loop.execute { [self] in
            var index = start
            var opened = 0
            while index < options.connections && opened < PingScenario.connectBatch {
                let client = PingClient(scenario: self, state: states[loop.id])
                let source = options.sources > 1 ? try? SocketAddress(parsing: "127.0.0.\(2 + index % options.sources):0") : nil
                do {
                    client.connection = try ClientConnection(
                        to: options.target, from: source, on: loop, credentials: ClientCredentials(),
                        hello: Hello(mode: .register, accountName: "b\(runID)x\(index)"), delegate: client,
                        transport: options.transport)
                    states[loop.id].clients.append(client)
                } catch {
                    failed.add(1, ordering: .relaxed)
                }
                index += group.loops.count
                opened += 1
            }
            if index < options.connections { connect(from: index, on: loop) }
        }
    }

    static let connectBatch = 100

    func histogram() -> Histogram { Histogram.merged(states.map(\.histogram)) }
}

final class PingClient: ClientDelegate {
    unowned let scenario: PingScenario
    unowned let state: PingScenario.LoopState
    var connection: ClientConnection?

    init(scenario: PingScenario, state: PingScenario.LoopState) {
        self.scenario = scenario
        self.state = state
    }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        scenario.welcomed.add(1, ordering: .relaxed)
        for _ in 0..<scenario.options.window { client.send(.ping(sb_monotonic_ns())) }  // none when idle
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) {
        guard case .pong(let sentAt) = stanza else { return }
        let phase = scenario.phase.load(ordering: .relaxed)
        if phase == 2 {
            state.histogram.record(sb_monotonic_ns() &- sentAt)
            scenario.completed.add(1, ordering: .relaxed)
        }
        if phase < 3 { client.send(.ping(sb_monotonic_ns())) }
    }

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        if scenario.phase.load(ordering: .relaxed) < 3 { scenario.failed.add(1, ordering: .relaxed) }
    }
}
