import CSwitchboardShims
import Reactor
import Synchronization
import SwitchboardClient
import Wire

/// Connect, handshake, get welcomed, close, again — `concurrency` such slots at once. IK slots
/// resume with the token of their previous welcome (no store lookup on the node); XX slots log
/// in without a cached key (XX plus a store lookup).
final class HandshakeScenario: @unchecked Sendable {
    // `@unchecked Sendable`: slots are touched only on their loop; counters are atomic.
    enum Pattern: String { case xx, ik }

    let target: SocketAddress
    let pattern: Pattern
    let group: EventLoopGroup
    let phase = Atomic<Int>(0)  // 0 registering, 1 warm-up, 2 recording, 3 stopping
    let registered = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let runID = UInt64(sb_monotonic_ns() % 1_000_000_000)
    var slots: [[HandshakeSlot]]

    init(target: SocketAddress, pattern: Pattern, concurrency: Int, group: EventLoopGroup) {
        self.target = target
        self.pattern = pattern
        self.group = group
        slots = group.loops.map { _ in [] }
        for index in 0..<concurrency {
            slots[index % group.loops.count].append(HandshakeSlot(index: index))
        }
    }

    /// Registers every slot's device, then starts cycling.
    func start() {
        for loop in group.loops {
            loop.execute { [self] in
                for slot in slots[loop.id] {
                    slot.scenario = self
                    slot.loop = loop
                    slot.open(Hello(mode: .register, accountName: "h\(runID)x\(slot.index)"))
                }
            }
        }
    }
}

final class HandshakeSlot: ClientDelegate {
    let index: Int
    unowned var scenario: HandshakeScenario!
    unowned var loop: EventLoop!
    var credentials = ClientCredentials()
    var connection: ClientConnection?
    var registeredOnce = false

    init(index: Int) { self.index = index }

    func open(_ hello: Hello) {
        do {
            connection = try ClientConnection(to: scenario.target, on: loop, credentials: credentials, hello: hello, delegate: self)
        } catch {
            scenario.failed.add(1, ordering: .relaxed)
        }
    }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        credentials = client.credentials
        if !registeredOnce {
            registeredOnce = true
            scenario.registered.add(1, ordering: .relaxed)
        } else if scenario.phase.load(ordering: .relaxed) == 2 {
            scenario.completed.add(1, ordering: .relaxed)
        }
        client.close()
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) {}

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        if error != nil { scenario.failed.add(1, ordering: .relaxed) }
        guard scenario.phase.load(ordering: .relaxed) < 3 else { return }
        // A failed connect is counted; while registering it ends the slot (the run stops), later
        // the slot tries again after 20 ms instead of spinning on a refusing target.
        if case .connectFailed = reason {
            scenario.failed.add(1, ordering: .relaxed)
            guard scenario.phase.load(ordering: .relaxed) > 0 else { return }
            _ = loop.scheduleTimer(in: 20) { [self] in reopen() }
            return
        }
        reopen()
    }

    private func reopen() {
        guard scenario.phase.load(ordering: .relaxed) < 3 else { return }
        switch scenario.pattern {
        case .ik:
            open(Hello(mode: .resume))
        case .xx:
            credentials.serverKey = nil  // force XX
            open(Hello(mode: .login))
        }
    }
}
