import CSwitchboardShims
import Reactor
import Synchronization
import SwitchboardClient
import Wire

/// Closed-loop round trips over the encrypted protocol: each connection registers (XX), then
/// keeps `window` pings of `size` bytes in flight; each pong is timed and replaced. With no
/// window the connections stay idle (`connect`), pinging once per heartbeat; with `resume` each
/// one first registers, closes, and comes back with IK (`resumeAll`).
final class PingScenario: @unchecked Sendable {
    // `@unchecked Sendable`: `states[i]` is touched only on loop i; the rest is atomic/immutable.
    struct Options {
        var target: SocketAddress
        var transport = ClientTransport.native
        var connections = 100
        var window = 1
        var sources = 1
        /// The first source address's index: loopback sources are numbered 127.0.0.2, 127.0.0.3,
        /// … 127.0.0.251, 127.0.1.2, … (250 per /24), so load processes can use distinct ones —
        /// the kernel hands out a source address's ephemeral ports once whatever the destination.
        var sourceOffset = 0
        /// More addresses of the node (its other listen ports): connections go round robin over
        /// `target` and these, and over the source addresses for each.
        var moreTargets: [SocketAddress] = []
        /// Register (XX), close, and come back with IK resuming with the token (`resumeAll`).
        var resume = false
        /// Idle connections ping this often (0: never), so an idle limit does not close them.
        var heartbeatMilliseconds = 0
    }

    let options: Options
    let group: EventLoopGroup
    let phase = Atomic<Int>(0)  // 0 connecting, 1 warm-up, 2 recording, 3 stopping
    let welcomed = Atomic<Int>(0)
    /// With `resume`: connections registered and closed, waiting for `resumeAll`.
    let registered = Atomic<Int>(0)
    let heartbeats = Atomic<Int>(0)
    /// Welcomed connections that closed before the run ended.
    let dropped = Atomic<Int>(0)
    /// Welcomed and still open.
    var held: Int { welcomed.load(ordering: .relaxed) - dropped.load(ordering: .relaxed) }
    let failed = Atomic<Int>(0)
    /// Handshakes tried again after the node closed them before the welcome without an error.
    let retried = Atomic<Int>(0)
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
                let client = PingClient(scenario: self, state: states[loop.id], index: index, loop: loop)
                if client.open(Hello(mode: .register, accountName: "b\(runID)x\(index)")) { states[loop.id].clients.append(client) }
                index += group.loops.count
                opened += 1
            }
            if index < options.connections { connect(from: index, on: loop) }
        }
    }

    /// With `resume`: every registered connection comes back with IK, a batch per iteration.
    func resumeAll() {
        for loop in group.loops { resume(from: 0, on: loop) }
    }

    private func resume(from start: Int, on loop: EventLoop) {
        loop.execute { [self] in
            let clients = states[loop.id].clients
            var index = start
            while index < clients.count && index < start + PingScenario.connectBatch {
                if clients[index].awaitingResume { _ = clients[index].open(Hello(mode: .resume)) }
                index += 1
            }
            if index < clients.count { resume(from: index, on: loop) }
        }
    }

    /// The node address and source address of connection `index`: round robin over the
    /// targets, and over the sources within each.
    func addresses(of index: Int) -> (SocketAddress, SocketAddress?) {
        let targets = [options.target] + options.moreTargets
        let target = targets[index % targets.count]
        guard options.sources > 1 || options.sourceOffset > 0 else { return (target, nil) }
        let source = options.sourceOffset + (index / targets.count) % options.sources
        return (target, try? SocketAddress(parsing: "127.0.\(source / 250).\(2 + source % 250):0"))
    }

    static let connectBatch = 100

    func histogram() -> Histogram { Histogram.merged(states.map(\.histogram)) }
}

final class PingClient: ClientDelegate {
    unowned let scenario: PingScenario
    unowned let state: PingScenario.LoopState
    unowned let loop: EventLoop
    let index: Int
    var connection: ClientConnection?
    private var credentials = ClientCredentials()
    /// Registered and closed on purpose, to come back with IK.
    private(set) var awaitingResume = false
    private var isOpen = false
    private var welcomed = false
    /// This connection registers (with `resume`, the one that closes to come back with IK).
    private var registering = false
    /// The hello of the current attempt, and how many attempts it has had: an idle connection
    /// (`connect`) whose handshake the node closes before the welcome without an error — an
    /// overloaded node shedding handshakes whose client answered too slowly — tries again a
    /// second later, as a device would, up to `maxAttempts` times.
    private var hello: Hello?
    private var attempts = 0
    static let maxAttempts = 3

    init(scenario: PingScenario, state: PingScenario.LoopState, index: Int, loop: EventLoop) {
        self.scenario = scenario
        self.state = state
        self.index = index
        self.loop = loop
    }

    /// Connects with `hello`; false (counted as failed) when the connect call itself fails.
    func open(_ hello: Hello) -> Bool {
        awaitingResume = false
        registering = hello.mode == .register
        if self.hello?.mode != hello.mode { attempts = 0 }
        self.hello = hello
        attempts += 1
        let (target, source) = scenario.addresses(of: index)
        do {
            connection = try ClientConnection(
                to: target, from: source, on: loop, credentials: credentials, hello: hello, delegate: self,
                transport: scenario.options.transport)
            isOpen = true
            return true
        } catch {
            scenario.failed.add(1, ordering: .relaxed)
            return false
        }
    }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        credentials = client.credentials
        if scenario.options.resume && registering {
            // Registered: close, and come back with IK once every connection has registered.
            awaitingResume = true
            scenario.registered.add(1, ordering: .relaxed)
            client.close()
            return
        }
        scenario.welcomed.add(1, ordering: .relaxed)
        welcomed = true
        for _ in 0..<scenario.options.window { client.send(.ping(sb_monotonic_ns())) }  // none when idle
        let period = scenario.options.heartbeatMilliseconds
        if scenario.options.window == 0 && period > 0 {
            heartbeat(in: period * (index % 1_000 + 1) / 1_000)  // spread over one period
        }
    }

    private func heartbeat(in milliseconds: Int) {
        _ = loop.scheduleTimer(in: milliseconds) { [weak self] in
            guard let self, self.isOpen, self.scenario.phase.load(ordering: .relaxed) < 3, let connection = self.connection else { return }
            _ = connection.send(.ping(sb_monotonic_ns()))
            self.heartbeat(in: self.scenario.options.heartbeatMilliseconds)
        }
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) {
        guard case .pong(let sentAt) = stanza else { return }
        if scenario.options.window == 0 {
            scenario.heartbeats.add(1, ordering: .relaxed)  // a heartbeat answered
            return
        }
        let phase = scenario.phase.load(ordering: .relaxed)
        if phase == 2 {
            state.histogram.record(sb_monotonic_ns() &- sentAt)
            scenario.completed.add(1, ordering: .relaxed)
        }
        if phase < 3 { client.send(.ping(sb_monotonic_ns())) }
    }

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        isOpen = false
        if awaitingResume { return }  // closed on purpose after registering
        guard scenario.phase.load(ordering: .relaxed) < 3 else { return }
        // Closed without a word (shed under load, over the node's connection limit): try again.
        // An error stanza (a name taken, a token already used) or a refused connect would only
        // repeat itself.
        var silent = error == nil
        if case .connectFailed = reason { silent = false }
        if !welcomed, silent, scenario.options.window == 0, attempts < PingClient.maxAttempts, let hello {
            scenario.retried.add(1, ordering: .relaxed)
            _ = loop.scheduleTimer(in: 1_000) { [weak self] in
                guard let self, self.scenario.phase.load(ordering: .relaxed) < 3 else { return }
                _ = self.open(hello)
            }
            return
        }
        scenario.failed.add(1, ordering: .relaxed)
        if welcomed { scenario.dropped.add(1, ordering: .relaxed) }
    }
}
