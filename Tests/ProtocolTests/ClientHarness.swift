import Foundation
import Handshake
import Noise
import Reactor
import SwitchboardClient
import TestSupport
import Wire

/// Runs Switchboard clients on a loop of their own and turns their callbacks into a queue the
/// test thread can wait on.
final class ClientHarness: @unchecked Sendable {
    // `@unchecked Sendable`: `group` is immutable; events go through `lock`.
    let group: EventLoopGroup
    var loop: EventLoop { group.loops[0] }

    init() throws {
        group = try EventLoopGroup(threads: 1)
        group.start()
    }

    deinit {
        group.stop()
        group.join()
    }

    /// Opens a client and waits for its welcome or its end.
    func connect(port: Int, credentials: ClientCredentials, hello: Hello, timeout: Double = 10,
                 transport: ClientTransport = .native) throws -> TestClient {
        let recorder = Recorder()
        let box = ResultBox<LoopBound<ClientConnection>>()
        let loop = self.loop
        loop.execute {
            do {
                let address = try SocketAddress(parsing: "127.0.0.1:\(port)")
                let client = try ClientConnection(to: address, on: loop, credentials: credentials, hello: hello, delegate: recorder,
                                                  transport: transport)
                box.set(.success(LoopBound(client, on: loop)))
            } catch {
                box.set(.failure(error))
            }
        }
        let client = try box.wait(timeout: timeout).get()
        let test = TestClient(harness: self, client: client, recorder: recorder)
        _ = recorder.waitFor(timeout: timeout) { event in
            if case .connected = event { return true }
            if case .closed = event { return true }
            return false
        }
        return test
    }

    /// Opens `count` clients at once (new devices) and waits until each is welcomed or closed.
    func connectMany(count: Int, port: Int, hello: @escaping @Sendable (Int) -> Hello) throws -> ClientBatch {
        let batch = ClientBatch(expected: count)
        let loop = self.loop
        loop.execute {
            let address = try! SocketAddress(parsing: "127.0.0.1:\(port)")
            for index in 0..<count {
                do {
                    let client = try ClientConnection(
                        to: address, on: loop, credentials: ClientCredentials(), hello: hello(index), delegate: batch)
                    batch.clients.append(client)
                } catch {
                    batch.failed(String(describing: error))
                }
            }
        }
        batch.waitSettled(timeout: 120)
        batch.harness = self
        return batch
    }

    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let box = ResultBox<T>()
        loop.execute { box.set(.success(body())) }
        return try! box.wait(timeout: 10).get()
    }
}

/// One client under test.
final class TestClient: @unchecked Sendable {
    // `@unchecked Sendable`: immutable; `client` is opened only on the harness loop.
    let harness: ClientHarness
    let client: LoopBound<ClientConnection>
    let recorder: Recorder

    init(harness: ClientHarness, client: LoopBound<ClientConnection>, recorder: Recorder) {
        self.harness = harness
        self.client = client
        self.recorder = recorder
    }

    var welcome: Welcome? { recorder.welcome }
    var error: ErrorStanza? { harness.onLoop { [client] in client.value.lastError } }
    var credentials: ClientCredentials { harness.onLoop { [client] in client.value.credentials } }
    var pattern: ServerHandshake.Pattern? { harness.onLoop { [client] in client.value.pattern } }
    var roundTrips: Int { harness.onLoop { [client] in client.value.roundTripsToWelcome } }
    var isClosed: Bool { harness.onLoop { [client] in client.value.phase == .closed } }

    func send(_ stanza: Stanza) {
        harness.loop.execute { [client] in client.value.send(stanza) }
    }

    /// Sends a ping and waits for its pong.
    func ping(_ value: UInt64, timeout: Double = 10) -> Bool {
        send(.ping(value))
        return recorder.waitFor(timeout: timeout) { event in
            if case .stanza(.pong(let v)) = event { return v == value }
            return false
        } != nil
    }

    func close() {
        harness.loop.execute { [client] in client.value.close() }
    }

    func waitClosed(timeout: Double = 10) -> Recorder.Event? {
        recorder.waitFor(timeout: timeout) { event in
            if case .closed = event { return true }
            return false
        }
    }
}

/// Collects client events.
final class Recorder: ClientDelegate, @unchecked Sendable {
    // `@unchecked Sendable`: `events` and `welcome` are guarded by `condition`.
    enum Event {
        case connected(Welcome)
        case stanza(Stanza)
        case closed(ErrorStanza?, CloseReason)
    }

    private let condition = NSCondition()
    private var events: [Event] = []
    private(set) var welcome: Welcome?
    /// Counts kept as events arrive, so waiting on them costs nothing per event.
    private(set) var deliveryCount = 0
    private(set) var sendResultCount = 0

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        record(.connected(welcome))
    }

    func client(_ client: ClientConnection, didReceive stanza: Stanza) { record(.stanza(stanza)) }

    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        record(.closed(error, reason))
    }

    private func record(_ event: Event) {
        condition.lock()
        if case .connected(let w) = event { welcome = w }
        if case .stanza(.deliver) = event { deliveryCount += 1 }
        if case .stanza(.sendResult) = event { sendResultCount += 1 }
        events.append(event)
        condition.broadcast()
        condition.unlock()
    }

    var sendResultCountSnapshot: Int {
        condition.lock()
        defer { condition.unlock() }
        return sendResultCount
    }

    /// Every event so far.
    var all: [Event] {
        condition.lock()
        defer { condition.unlock() }
        return events
    }

    /// Every event so far, for predicates that already hold the lock (inside `waitFor`).
    var allUnlocked: [Event] { events }

    /// Waits until `condition` (evaluated under the lock, with the recorder) holds.
    func waitUntil(timeout: Double, _ holds: (Recorder) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !holds(self) {
            if !condition.wait(until: deadline) { return holds(self) }
        }
        return true
    }

    /// Waits for an event matching `predicate` (looking at every event recorded so far).
    func waitFor(timeout: Double, _ predicate: (Event) -> Bool) -> Event? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let match = events.first(where: predicate) { return match }
            if !condition.wait(until: deadline) { return events.first(where: predicate) }
        }
    }
}

/// A one-shot result handed from a loop to the test thread.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    // `@unchecked Sendable`: guarded by `condition`.
    private let condition = NSCondition()
    private var value: Result<T, Error>?

    func set(_ result: Result<T, Error>) {
        condition.lock()
        value = result
        condition.broadcast()
        condition.unlock()
    }

    func wait(timeout: Double) throws -> Result<T, Error> {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while value == nil {
            if !condition.wait(until: deadline) { throw BlockingSocket.Failure(description: "timed out") }
        }
        return value!
    }
}

/// Many clients sharing one delegate.
final class ClientBatch: ClientDelegate, @unchecked Sendable {
    // `@unchecked Sendable`: `clients` is touched only on the harness loop; counters are guarded
    // by `condition`.
    var clients: [ClientConnection] = []
    weak var harness: ClientHarness?
    private let condition = NSCondition()
    private let expected: Int
    private(set) var welcomed = 0
    private(set) var closed = 0
    private(set) var errors: [String] = []
    private var pongs = 0
    /// Welcomes by client (account, device), and group messages received.
    private(set) var addresses: [DeviceAddress] = []
    private(set) var groupMessages = 0

    init(expected: Int) { self.expected = expected }

    func clientDidConnect(_ client: ClientConnection, welcome: Welcome) {
        bump {
            welcomed += 1
            addresses.append(DeviceAddress(accountID: welcome.accountID, deviceID: welcome.deviceID))
        }
    }
    func client(_ client: ClientConnection, didReceive stanza: Stanza) {
        if case .pong = stanza { bump { pongs += 1 } }
        if case .deliver(let delivery) = stanza, delivery.kind == .message, delivery.groupID != 0 {
            bump { groupMessages += 1 }
            client.send(.ack(seqs: [delivery.seq]))
        } else if case .deliver(let delivery) = stanza {
            client.send(.ack(seqs: [delivery.seq]))
        }
    }

    /// Waits until `count` group messages have arrived across the batch.
    func waitForGroupMessages(_ count: Int, timeout: Double) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while groupMessages < count && condition.wait(until: deadline) {}
        return groupMessages
    }
    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason) {
        bump {
            closed += 1
            errors.append("\(String(describing: error)) \(reason)")
        }
    }
    func failed(_ why: String) { bump { closed += 1; errors.append(why) } }

    private func bump(_ change: () -> Void) {
        condition.lock()
        change()
        condition.broadcast()
        condition.unlock()
    }

    func waitSettled(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        while welcomed + closed < expected && condition.wait(until: deadline) {}
        condition.unlock()
    }

    /// Pings every client once; returns how many pongs arrived.
    func pingAll(value: UInt64, timeout: Double) -> Int {
        guard let harness else { return 0 }
        let clients = LoopBoundList(self)
        harness.loop.execute { for client in clients.batch.clients { client.send(.ping(value)) } }
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while pongs < welcomed && condition.wait(until: deadline) {}
        return pongs
    }
}

/// Carries the batch into a loop closure. `@unchecked Sendable`: used only on the harness loop.
struct LoopBoundList: @unchecked Sendable {
    let batch: ClientBatch
    init(_ batch: ClientBatch) { self.batch = batch }
}
