import CSwitchboardShims
import Reactor
import Synchronization

/// Closed-loop echo: every connection keeps `window` messages of `size` bytes in flight; each
/// echoed message is timed and replaced by a new one.
final class EchoScenario: @unchecked Sendable {
    // `@unchecked Sendable`: `loopStates[i]` is touched only on loop i; the phase is atomic.
    struct Options {
        var target: SocketAddress
        var connections = 100
        var size = 128
        var window = 1
        var sources = 1
    }

    let options: Options
    let group: EventLoopGroup
    let payload: [UInt8]
    /// 0 connecting, 1 running (not recorded), 2 recording, 3 stopping.
    let phase = Atomic<Int>(0)
    let connected = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    var loopStates: [LoopState]

    final class LoopState {
        var histogram = Histogram()
        var clients: [EchoClient] = []
    }

    init(options: Options, group: EventLoopGroup) {
        self.options = options
        self.group = group
        self.payload = (0..<options.size).map { UInt8(truncatingIfNeeded: $0) }
        self.loopStates = group.loops.map { _ in LoopState() }
    }

    /// Opens every connection, spread over the loops and over loopback source addresses.
    func connect() {
        for loop in group.loops {
            loop.execute { [self] in
                let state = loopStates[loop.id]
                var index = loop.id
                while index < options.connections {
                    let client = EchoClient(scenario: self, state: state)
                    let source = options.sources > 1
                        ? try? SocketAddress(parsing: "127.0.0.\(2 + index % options.sources):0") : nil
                    do {
                        _ = try Connection.connect(to: options.target, from: source, on: loop, handler: client)
                        state.clients.append(client)
                    } catch {
                        failed.add(1, ordering: .relaxed)
                    }
                    index += group.loops.count
                }
            }
        }
    }

    /// Merges the loops' histograms (call after the loops have stopped).
    func histogram() -> Histogram {
        var merged = Histogram()
        for state in loopStates { merged.merge(state.histogram) }
        return merged
    }
}

final class EchoClient: ConnectionHandler {
    unowned let scenario: EchoScenario
    unowned let state: EchoScenario.LoopState
    private var sentAt: [UInt64]
    private var head = 0
    private var inFlight = 0
    private var pendingBytes = 0

    init(scenario: EchoScenario, state: EchoScenario.LoopState) {
        self.scenario = scenario
        self.state = state
        self.sentAt = Array(repeating: 0, count: scenario.options.window)
    }

    func connectionDidOpen(_ connection: Connection) {
        scenario.connected.add(1, ordering: .relaxed)
        for _ in 0..<scenario.options.window { send(connection) }
    }

    private func send(_ connection: Connection) {
        sentAt[(head + inFlight) % sentAt.count] = sb_monotonic_ns()
        inFlight += 1
        scenario.payload.withUnsafeBytes { connection.write($0) }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeMutableRawBufferPointer) {
        pendingBytes += bytes.count
        let size = scenario.options.size
        let phase = scenario.phase.load(ordering: .relaxed)
        var done = 0
        while pendingBytes >= size && inFlight > 0 {
            pendingBytes -= size
            let now = sb_monotonic_ns()
            if phase == 2 { state.histogram.record(now - sentAt[head]) }
            head = (head + 1) % sentAt.count
            inFlight -= 1
            done += 1
            if phase < 3 { send(connection) }
        }
        if phase == 2 && done > 0 { scenario.completed.add(done, ordering: .relaxed) }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        if case .connectFailed = reason { scenario.failed.add(1, ordering: .relaxed) }
    }
}
