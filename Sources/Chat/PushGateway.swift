import Reactor
import Store
import Wire

/// Where push notifications go: `http://HOST:PORT/PATH` (`--push-url`).
public struct PushEndpoint: Sendable, Equatable {
    public let address: SocketAddress
    public let hostHeader: String
    public let path: String

    /// Parses `http://HOST:PORT/PATH` (an IPv4 or IPv6 literal, or `localhost`).
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        guard !authority.isEmpty, !authority.hasPrefix(":") else { return nil }
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        let withPort = authority.contains("]:") || (!authority.hasPrefix("[") && authority.contains(":")) ? authority : authority + ":80"
        guard let parsed = try? SocketAddress(parsing: withPort), !path.contains(" "), !path.contains("\r") else { return nil }
        address = parsed
        hostHeader = authority
    }
}

/// Posts push notifications for offline devices to an HTTP gateway with our own HTTP/1.1 client
/// on the Reactor: one POST per notification, a timeout, retries with backoff, notifications to
/// one device coalesced while one is pending, and a bound on what may wait. One instance per loop
/// (the registry loop of the device decides), touched only on that loop.
///
/// The body carries no message content: `{"token": "...", "account": N, "device": N,
/// "sender_account": N, "waiting": N, "node": "..."}`.
final class PushGateway: TimerTarget {
    static let maxPending = 10_000
    /// Pending notifications one sender account may cause, so one account cannot crowd out
    /// everyone else's pushes.
    static let maxPendingPerSender = 500
    static let timeoutMilliseconds = 5_000
    static let backoffMilliseconds = [250, 1_000, 4_000]

    private let loop: EventLoop
    private let endpoint: PushEndpoint
    private let directory: DeviceDirectory
    private let nodeID: String
    private let counters: PushCounters
    /// Devices with a notification waiting or in flight: the sender of the latest message.
    private var pending: [UInt64: UInt64] = [:]
    private var pendingBySender: [UInt64: Int] = [:]
    /// Pending notifications that are to be silent (the chat is muted with silent pushes).
    private var silentPending: Set<UInt64> = []
    private var retries: [Int: (device: UInt64, sender: UInt64, attempt: Int)] = [:]
    private var nextRetryTag = 0

    init(loop: EventLoop, endpoint: PushEndpoint, directory: DeviceDirectory, nodeID: String, counters: PushCounters) {
        self.loop = loop
        self.endpoint = endpoint
        self.directory = directory
        self.nodeID = nodeID
        self.counters = counters
    }

    /// Something new waits for an offline device.
    func notify(device: UInt64, sender: UInt64, silent: Bool = false) {
        if pending[device] != nil {
            counters.add(.coalesced)  // folded into the notification already on its way
            if !silent { silentPending.remove(device) }  // an unmuted message makes it audible
            return
        }
        guard pending.count < PushGateway.maxPending, pendingBySender[sender, default: 0] < PushGateway.maxPendingPerSender else {
            counters.add(.dropped)
            return
        }
        pending[device] = sender
        pendingBySender[sender, default: 0] += 1
        if silent { silentPending.insert(device) }
        attempt(device: device, attempt: 0)
    }

    private func attempt(device: UInt64, attempt: Int) {
        let bound = LoopBound(self, on: loop)
        directory.pushTarget(device: device, on: loop) { result in
            let gateway = bound.value
            guard case .success(let target?) = result, let sender = gateway.pending[device] else {
                gateway.settle(device)  // no token: nothing to send
                return
            }
            gateway.post(device: device, sender: sender, token: target.token, waiting: target.waiting, attempt: attempt)
        }
    }

    private func post(device: UInt64, sender: UInt64, token: String, waiting: UInt64, attempt: Int) {
        let body = "{\"token\":\(PushGateway.jsonString(token)),\"device\":\(device),\"sender_account\":\(sender),"
            + "\"waiting\":\(waiting),\"silent\":\(silentPending.contains(device)),\"node\":\(PushGateway.jsonString(nodeID))}"
        let request = "POST \(endpoint.path) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\nUser-Agent: switchboard\r\n\r\n" + body
        let exchange = PushExchange(request: Array(request.utf8)) { [weak self] succeeded in
            self?.finished(device: device, sender: sender, attempt: attempt, succeeded: succeeded)
        }
        do {
            let connection = try Connection.connect(to: endpoint.address, on: loop, handler: exchange)
            connection.setDeadline(milliseconds: PushGateway.timeoutMilliseconds)
        } catch {
            finished(device: device, sender: sender, attempt: attempt, succeeded: false)
        }
    }

    private func finished(device: UInt64, sender: UInt64, attempt: Int, succeeded: Bool) {
        if succeeded {
            counters.add(.delivered)
            settle(device)
            return
        }
        counters.add(.failedAttempts)
        guard attempt < PushGateway.backoffMilliseconds.count else {
            counters.add(.abandoned)
            settle(device)
            return
        }
        // Timer tags are 32-bit; a tag only has to differ from the few retries pending now.
        nextRetryTag = nextRetryTag >= Int(Int32.max) ? 1 : nextRetryTag + 1
        retries[nextRetryTag] = (device, sender, attempt + 1)
        _ = loop.scheduleTimer(in: PushGateway.backoffMilliseconds[attempt], target: self, tag: nextRetryTag)
    }

    /// The device's notification is done (sent, abandoned or not needed).
    private func settle(_ device: UInt64) {
        silentPending.remove(device)
        guard let sender = pending.removeValue(forKey: device) else { return }
        pendingBySender[sender, default: 1] -= 1
        if pendingBySender[sender] == 0 { pendingBySender.removeValue(forKey: sender) }
    }

    func timerFired(tag: Int) {
        guard let retry = retries.removeValue(forKey: tag) else { return }
        attempt(device: retry.device, attempt: retry.attempt)
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// One POST: write the request, read the status line, close. A 2xx status is success; anything
/// else — another status, a reset, the timeout, a response head over 8 KiB — is a failure.
final class PushExchange: ConnectionHandler {
    private let request: [UInt8]
    private var response: [UInt8] = []
    private var done: ((Bool) -> Void)?

    init(request: [UInt8], done: @escaping (Bool) -> Void) {
        self.request = request
        self.done = done
    }

    func connectionDidOpen(_ connection: any ByteStream) { connection.write(request) }

    func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        response.append(contentsOf: bytes)
        guard let end = response.firstIndex(of: 0x0A) else {
            if response.count > 8192 { finish(false, connection) }
            return
        }
        // "HTTP/1.1 200 OK"
        let line = String(decoding: response[..<end], as: UTF8.self)
        let parts = line.split(separator: " ")
        let ok = parts.count >= 2 && parts[0].hasPrefix("HTTP/1.") && parts[1].count == 3 && parts[1].hasPrefix("2")
        finish(ok, connection)
    }

    private func finish(_ succeeded: Bool, _ connection: any ByteStream) {
        done?(succeeded)
        done = nil
        connection.close(.local)
    }

    func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        done?(false)
        done = nil
    }
}

/// Push outcomes, per loop, summed by a scrape.
public final class PushCounters: Sendable {
    public enum Counter: Int, CaseIterable, Sendable { case delivered, failedAttempts, abandoned, dropped, coalesced }
    private let counts = AtomicCounters(count: Counter.allCases.count)
    public init() {}
    func add(_ counter: Counter) { counts.add(counter.rawValue) }
    public func value(_ counter: Counter) -> Int { counts.load(counter.rawValue) }
}
