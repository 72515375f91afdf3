import CSwitchboardShims
import Noise
import Reactor
import Synchronization
import SwitchboardClient
import Wire

/// Group fan-out: one sender and `members - 1` recipients in one group; the sender keeps
/// `window` group messages in flight (one ciphertext per member device) and sends the next when
/// its previous one has been delivered to every member. Counts deliveries (copies) per second.
final class FanoutScenario: @unchecked Sendable {
    // `@unchecked Sendable`: endpoints are touched only on their loops; counters are atomic.
    let target: SocketAddress
    let members: Int
    let window: Int
    let size: Int
    let group: EventLoopGroup
    let phase = Atomic<Int>(0)
    let ready = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let messages = Atomic<Int>(0)
    let runID = UInt64(sb_monotonic_ns() % 1_000_000_000)
    var recipients: [[FanoutEndpoint]]
    var addresses: [DeviceAddress] = []  // loop 0 only
    var sender: FanoutEndpoint?
    var groupID: UInt64 = 0
    /// Copies of each in-flight message still to be delivered (loop 0 owns the sender; the
    /// count is atomic because recipients on other loops decrement it).
    let outstanding = Atomic<Int>(0)

    init(target: SocketAddress, members: Int, window: Int, size: Int, group: EventLoopGroup) {
        self.target = target
        self.members = members
        self.window = window
        self.size = size
        self.group = group
        recipients = group.loops.map { _ in [] }
    }

    func start() {
        for index in 0..<(members - 1) {
            let loop = group.loops[index % group.loops.count]
            loop.execute { [self] in
                let endpoint = FanoutEndpoint(scenario: self, loop: loop)
                recipients[loop.id].append(endpoint)
                endpoint.open(name: "f\(runID)m\(index)") { welcome in
                    let address = DeviceAddress(accountID: welcome.accountID, deviceID: welcome.deviceID)
                    self.group.loops[0].execute { self.addresses.append(address); self.ready.add(1, ordering: .relaxed) }
                }
            }
        }
    }

    /// Loop 0: registers the sender, creates the group, starts sending.
    func startSender(onReady: @escaping @Sendable () -> Void) {
        let loop = group.loops[0]
        loop.execute { [self] in
            let endpoint = FanoutEndpoint(scenario: self, loop: loop)
            sender = endpoint
            endpoint.open(name: "f\(runID)sender") { _ in
                endpoint.connection?.send(.createGroup(requestID: 1, name: "bench", members: self.addresses.map(\.accountID)))
            }
            endpoint.onGroup = { id in
                self.groupID = id
                onReady()
            }
        }
    }

    func beginSending() {
        group.loops[0].execute { [self] in
            for _ in 0..<window { sender?.sendGroupMessage() }
        }
    }
}

final class FanoutEndpoint: ClientDelegate {
    unowned let scenario: FanoutScenario
    unowned let loop: EventLoop
    var connection: ClientConnection?
    var onWelcome: ((Welcome) -> Void)?
    var onGroup: ((UInt64) -> Void)?
    let acks: AckBatcher
    init(scenario: FanoutScenario, loop: EventLoop) {
        self.scenario = scenario
        self.loop = loop
        acks = AckBatcher(batch: scenario.window, loop: loop)
    }

    func open(name: String, then: @escaping (Welcome) -> Void) {
        onWelcome = then
        do {
            connection = try ClientConnection(to: scenario.target, on: loop, credentials: ClientCredentials(),
                                              hello: Hello(mode: .register, accountName: name), delegate: self)
        } catch {
            scenario.failed.add(1, ordering: .relaxed)
        }
    }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        onWelcome?(welcome)
        onWelcome = nil
    }

    func sendGroupMessage() {
        guard scenario.phase.load(ordering: .relaxed) < 3, let connection else { return }
        let body = [UInt8](repeating: 0x33, count: scenario.size)
        let copies = scenario.addresses.map { MessageCopy(deviceID: $0.deviceID, ciphertext: body) }
        scenario.outstanding.add(copies.count, ordering: .relaxed)
        connection.send(.send(SendMessage(messageID: .random(), toAccount: 0, copies: copies,
                                          groupID: scenario.groupID)))
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) {
        switch stanza {
        case .result(let result) where result.requestID == 1:
            if result.code == .ok, let id = result.value { onGroup?(id) } else { scenario.failed.add(1, ordering: .relaxed) }
        case .sendResult(let result):
            if result.code != .ok { scenario.failed.add(1, ordering: .relaxed) }
        case .deliver(let delivery):
            // Acknowledged in batches of WINDOW, as the relay's recipients do: the sender sends
            // its next message when the last copy is delivered, not acknowledged, and a copy may
            // wait for its acknowledgement up to a second before the node stores it.
            acks.add(delivery.seq, on: client)
            guard delivery.kind == .message else { return }
            if scenario.phase.load(ordering: .relaxed) == 2 { scenario.delivered.add(1, ordering: .relaxed) }
            // The last copy of a message delivered: the sender sends the next one.
            if scenario.outstanding.subtract(1, ordering: .relaxed).newValue % (scenario.members - 1) == 0 {
                if scenario.phase.load(ordering: .relaxed) == 2 { scenario.messages.add(1, ordering: .relaxed) }
                let fanout = scenario
                scenario.group.loops[0].execute { fanout.sender?.sendGroupMessage() }
            }
        default:
            break
        }
    }

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        if scenario.phase.load(ordering: .relaxed) < 3 { scenario.failed.add(1, ordering: .relaxed) }
    }
}
