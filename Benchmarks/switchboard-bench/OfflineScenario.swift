import CSwitchboardShims
import Noise
import Reactor
import Synchronization
import SwitchboardClient
import Wire

/// Store and drain: `pairs` recipients register and go offline; their senders store `messages`
/// in all for them (keeping `window` sends waiting each), then the recipients come back (IK
/// resume) and drain their queues, acknowledging as they go. Two measured phases: messages
/// stored durably per second, messages drained per second.
final class OfflineScenario: @unchecked Sendable {
    // `@unchecked Sendable`: endpoints are touched only on their loops; counters are atomic.
    let target: SocketAddress
    let pairs: Int
    let perPair: Int
    let window: Int
    let size: Int
    let group: EventLoopGroup
    let ready = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let stored = Atomic<Int>(0)
    let drained = Atomic<Int>(0)
    let reconnected = Atomic<Int>(0)
    /// Set when the recipients come back: from then on the drained count is the judge (idle
    /// senders may be closed by the node's idle timeout during a long drain, which is no failure).
    let draining = Atomic<Bool>(false)
    let runID = UInt64(sb_monotonic_ns() % 1_000_000_000)
    var endpoints: [[OfflineEndpoint]]

    init(target: SocketAddress, pairs: Int, messages: Int, window: Int, size: Int, group: EventLoopGroup) {
        self.target = target
        self.pairs = pairs
        perPair = max(1, messages / pairs)
        self.window = window
        self.size = size
        self.group = group
        endpoints = group.loops.map { _ in [] }
    }

    var total: Int { perPair * pairs }

    /// Registers every recipient, takes it offline, registers its sender.
    func start() {
        for pair in 0..<pairs {
            let loop = group.loops[pair % group.loops.count]
            loop.execute { [self] in
                let recipient = OfflineEndpoint(scenario: self, loop: loop)
                let sender = OfflineEndpoint(scenario: self, loop: loop)
                endpoints[loop.id] += [recipient, sender]
                recipient.connect(hello: Hello(mode: .register, accountName: "o\(runID)r\(pair)")) { welcome in
                    sender.peer = (welcome.accountID, welcome.deviceID)
                    recipient.connection?.close()
                    sender.connect(hello: Hello(mode: .register, accountName: "o\(self.runID)s\(pair)")) { _ in
                        self.ready.add(1, ordering: .relaxed)
                    }
                }
            }
        }
    }

    func beginStoring() {
        for loop in group.loops {
            loop.execute { [self] in
                for endpoint in endpoints[loop.id] where endpoint.peer != nil {
                    for _ in 0..<window { endpoint.sendNext() }
                }
            }
        }
    }

    func beginDraining() {
        draining.store(true, ordering: .relaxed)
        for loop in group.loops {
            loop.execute { [self] in
                for endpoint in endpoints[loop.id] where endpoint.peer == nil {
                    endpoint.connect(hello: Hello(mode: .resume)) { _ in self.reconnected.add(1, ordering: .relaxed) }
                }
            }
        }
    }
}

final class OfflineEndpoint: ClientDelegate {
    unowned let scenario: OfflineScenario
    unowned let loop: EventLoop
    var credentials = ClientCredentials()
    var connection: ClientConnection?
    var peer: (account: UInt64, device: UInt64)?
    var sent = 0
    var onWelcome: ((Welcome) -> Void)?
    var pendingAcks: [UInt64] = []
    let payload: [UInt8]

    init(scenario: OfflineScenario, loop: EventLoop) {
        self.scenario = scenario
        self.loop = loop
        payload = [UInt8](repeating: 0x4F, count: scenario.size)
    }

    func connect(hello: Hello, then: @escaping (Welcome) -> Void) {
        onWelcome = then
        do {
            connection = try ClientConnection(to: scenario.target, on: loop, credentials: credentials, hello: hello, delegate: self)
        } catch {
            scenario.failed.add(1, ordering: .relaxed)
        }
    }

    func sendNext() {
        guard let peer, sent < scenario.perPair, let connection else { return }
        sent += 1
        connection.send(.send(SendMessage(messageID: .random(), toAccount: peer.account,
                                          copies: [MessageCopy(deviceID: peer.device, ciphertext: payload)])))
    }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        credentials = client.credentials
        onWelcome?(welcome)
        onWelcome = nil
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) {
        switch stanza {
        case .sendResult(let result):
            if result.code == .ok { scenario.stored.add(1, ordering: .relaxed) } else { scenario.failed.add(1, ordering: .relaxed) }
            sendNext()
        case .deliver(let delivery):
            if delivery.kind == .message { scenario.drained.add(1, ordering: .relaxed) }
            pendingAcks.append(delivery.seq)
            if pendingAcks.count >= 64 {
                client.send(.ack(seqs: pendingAcks))
                pendingAcks.removeAll(keepingCapacity: true)
            }
            // The node delivers 256 at a time; ack the tail of a batch too.
            loop.deferTask { [self] in
                guard !pendingAcks.isEmpty else { return }
                connection?.send(.ack(seqs: pendingAcks))
                pendingAcks.removeAll(keepingCapacity: true)
            }
        default:
            break
        }
    }

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        // Recipients go away on purpose (.local); any other close before the drain is a failure.
        if error != nil || reason != .local, !scenario.draining.load(ordering: .relaxed) { scenario.failed.add(1, ordering: .relaxed) }
    }
}
