import CSwitchboardShims
import Foundation
import Noise
import Reactor
import Synchronization
import SwitchboardClient
import Wire

/// One-to-one messages through the node: `pairs` sender/recipient pairs, each sender keeping
/// `window` messages in flight (a new one when the recipient receives one) — or, with `rate`,
/// open loop: messages sent at a fixed total rate whatever the node answers. Recipients
/// acknowledge in batches. With `offline`, recipients stay away and the figure is messages
/// stored durably per second (sender acknowledgements).
final class RelayScenario: @unchecked Sendable {
    // `@unchecked Sendable`: clients and histograms are touched only on their loop; counters
    // are atomic.
    struct Options {
        var target: SocketAddress
        var transport = ClientTransport.native
        var pairs = 50
        var window = 8
        var size = 128
        var offline = false
        /// Messages per second over all senders (open loop); 0: closed loop with `window`.
        var rate = 0
        /// How often the open-loop pacer hands out the sends that are due.
        var tickMicroseconds = 1_000
    }

    let options: Options
    let group: EventLoopGroup
    let phase = Atomic<Int>(0)
    let ready = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    let runID = UInt64(sb_monotonic_ns() % 1_000_000_000)
    var histograms: [Histogram]
    /// Every endpoint, per loop (clients hold their delegates weakly), and the senders.
    var endpoints: [[RelayEndpoint]]
    var senders: [[RelayEndpoint]]

    init(options: Options, group: EventLoopGroup) {
        self.options = options
        self.group = group
        histograms = group.loops.map { _ in Histogram() }
        endpoints = group.loops.map { _ in [] }
        senders = group.loops.map { _ in [] }
        nextSender = group.loops.map { _ in 0 }
    }

    /// Registers every pair (recipient first, so the sender knows its device), then starts.
    func start() {
        for pair in 0..<options.pairs {
            let loop = group.loops[pair % group.loops.count]
            loop.execute { [self] in
                let recipient = RelayEndpoint(scenario: self, loop: loop, role: .recipient)
                endpoints[loop.id].append(recipient)
                let runID = self.runID
                recipient.open(name: "r\(runID)x\(pair)") { welcome in
                    let sender = RelayEndpoint(scenario: self, loop: loop, role: .sender)
                    self.endpoints[loop.id].append(sender)
                    sender.peerAccount = welcome.accountID
                    sender.peerDevice = welcome.deviceID
                    recipient.sender = sender
                    sender.open(name: "s\(runID)x\(pair)") { _ in
                        if self.options.offline { recipient.connection?.close() }
                        self.ready.add(1, ordering: .relaxed)
                    }
                }
            }
        }
    }

    func beginSending() {
        if options.rate > 0 {
            startPacer()
            return
        }
        for loop in group.loops {
            loop.execute { [self] in
                for sender in senders[loop.id] {
                    for _ in 0..<options.window { sender.sendOne() }
                }
            }
        }
    }

    /// Open loop: a thread wakes every tick (a millisecond by default) and hands each loop the sends that are due
    /// by then (rate × elapsed time), spread round-robin over that loop's senders.
    private func startPacer() {
        let loops = group.loops
        let rate = Double(options.rate)
        let thread = Thread { [self] in
            let start = sb_monotonic_ns()
            var sent = 0
            while phase.load(ordering: .relaxed) < 3 {
                usleep(UInt32(options.tickMicroseconds))
                let due = Int(rate * Double(sb_monotonic_ns() - start) / 1e9) - sent
                guard due > 0 else { continue }
                sent += due
                for (index, loop) in loops.enumerated() {
                    let share = due / loops.count + (index < due % loops.count ? 1 : 0)
                    guard share > 0 else { continue }
                    loop.execute { [self] in
                        let mine = senders[loop.id]
                        guard !mine.isEmpty else { return }
                        for _ in 0..<share {
                            mine[nextSender[loop.id] % mine.count].sendOne()
                            nextSender[loop.id] += 1
                        }
                    }
                }
            }
        }
        thread.start()
    }

    /// Per loop: the sender the pacer uses next (each loop touches only its own slot).
    var nextSender: [Int]

    func histogram() -> Histogram { Histogram.merged(histograms) }
}

final class RelayEndpoint: ClientDelegate {
    enum Role { case sender, recipient }
    unowned let scenario: RelayScenario
    unowned let loop: EventLoop
    let role: Role
    var connection: ClientConnection?
    var peerAccount: UInt64 = 0
    var peerDevice: UInt64 = 0
    var onWelcome: ((Welcome) -> Void)?
    var payload: [UInt8]
    /// Receipts (sender) or messages (recipient) to acknowledge: in batches of 32, or of the
    /// window when that is smaller.
    let acks: AckBatcher

    init(scenario: RelayScenario, loop: EventLoop, role: Role) {
        self.scenario = scenario
        self.loop = loop
        self.role = role
        payload = [UInt8](repeating: 0x5A, count: scenario.options.size)
        acks = AckBatcher(batch: role == .sender ? 32 : min(32, scenario.options.window), loop: loop)
    }

    func open(name: String, then: @escaping (Welcome) -> Void) {
        onWelcome = then
        do {
            connection = try ClientConnection(to: scenario.options.target, on: loop, credentials: ClientCredentials(),
                                              hello: Hello(mode: .register, accountName: name), delegate: self,
                                              transport: scenario.options.transport)
        } catch {
            scenario.failed.add(1, ordering: .relaxed)
        }
    }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        if role == .sender { scenario.senders[loop.id].append(self) }
        onWelcome?(welcome)
        onWelcome = nil
    }

    /// The message carries its send time in its first 8 bytes (the node never reads it).
    func sendOne() {
        guard scenario.phase.load(ordering: .relaxed) < 3, let connection else { return }
        var body = payload
        let now = sb_monotonic_ns()
        for index in 0..<8 { body[index] = UInt8(truncatingIfNeeded: now >> (8 * UInt64(index))) }
        connection.send(.send(SendMessage(messageID: .random(), toAccount: peerAccount,
                                          copies: [MessageCopy(deviceID: peerDevice, ciphertext: body)])))
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) {
        switch stanza {
        case .sendResult(let result):
            if result.code == .ok {
                if scenario.phase.load(ordering: .relaxed) == 2 { scenario.accepted.add(1, ordering: .relaxed) }
                if scenario.options.offline { sendOne() }
            } else {
                scenario.failed.add(1, ordering: .relaxed)
                // Closed loop: keep the window full. Open loop: the pacer decides when to send; an
                // answer of over_limit sent again at once would be a storm of refused sends.
                if scenario.options.rate == 0 { sendOne() }
            }
        case .deliver(let delivery) where delivery.kind != .message:
            // A delivery receipt for one of our messages: acknowledge it, count nothing.
            acks.add(delivery.seq, on: client)
        case .deliver(let delivery):
            if scenario.phase.load(ordering: .relaxed) == 2 {
                var sentAt: UInt64 = 0
                for index in 0..<8 where index < delivery.ciphertext.count {
                    sentAt |= UInt64(delivery.ciphertext[index]) << (8 * UInt64(index))
                }
                scenario.histograms[loop.id].record(sb_monotonic_ns() &- sentAt)
                scenario.delivered.add(1, ordering: .relaxed)
            }
            acks.add(delivery.seq, on: client)
            // Closed loop: the matching sender sends the next one.
            if scenario.options.rate == 0 { sender?.sendOne() }
        default:
            break
        }
    }

    weak var sender: RelayEndpoint?

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        // Offline recipients close on purpose (.local); anything else before the end is a failure
        // (a refused connect, a node that went away), which stops registration at once.
        if (error != nil || reason != .local), scenario.phase.load(ordering: .relaxed) < 3 { scenario.failed.add(1, ordering: .relaxed) }
    }
}
