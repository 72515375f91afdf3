import HTTP
import Handshake
import Noise
import Reactor
public import TLS
import Wire

/// How a client reaches the node.
public enum ClientTransport: Sendable {
    /// The native port (PROTOCOL.md section 3).
    case native
    /// The HTTP fallback over plain HTTP (section 24): `host` is sent as the `Host` header.
    case http(host: String)
    /// The HTTP fallback over TLS; `serverName` is sent (SNI) and checked against the
    /// certificate, which `context` (a client context) must trust.
    case https(serverName: String, context: TLSContext)
}

/// What an application hears from a `ClientConnection`, on the connection's loop.
public protocol ClientDelegate: AnyObject {
    /// The server welcomed the device; stanzas may be sent.
    func clientDidConnect(_ client: ClientConnection, welcome: Welcome)
    func client(_ client: ClientConnection, didReceive stanza: Stanza)
    /// The connection ended; `error` is the server's reason when it gave one.
    func clientDidClose(_ client: ClientConnection, error: ErrorStanza?, reason: CloseReason)
}

/// A Switchboard client connection on our Reactor: preface, Noise Pipes handshake (XX, IK with a
/// cached server key, XXfallback when that key is stale), then encrypted stanzas. Used by the
/// tests, the bench client and applications.
public final class ClientConnection: ConnectionHandler {
    public enum Phase: Sendable { case connecting, handshaking, awaitingWelcome, established, closed }

    public weak var delegate: ClientDelegate?
    public private(set) var credentials: ClientCredentials
    public private(set) var phase = Phase.connecting
    /// The Noise pattern that completed.
    public private(set) var pattern: ServerHandshake.Pattern?
    /// Server flights the client waited for before it was welcomed: 1 for IK, 2 for XX.
    public private(set) var roundTripsToWelcome = 0
    public private(set) var serverHello: ServerHello?
    public private(set) var lastError: ErrorStanza?

    private var handshake: ClientHandshake
    private var assembler = FrameAssembler(mode: .handshake)
    private var transport: SecureTransport?
    private var outbound = OutboundFrames()
    private var connection: (any ByteStream)?
    private var sawServerDataThisRead = false

    /// Starts connecting from `loop` (its thread only).
    /// - Parameters:
    ///   - hello: what to ask for; `.resume` uses `credentials.resumptionToken`.
    ///   - source: a local address to bind (spreads load over loopback addresses).
    ///   - transport: the native port or the HTTP fallback (plain or TLS).
    public init(
        to address: SocketAddress, from source: SocketAddress? = nil, on loop: EventLoop,
        credentials: ClientCredentials, hello: Hello, delegate: ClientDelegate?, transport: ClientTransport = .native
    ) throws(SystemError) {
        self.credentials = credentials
        self.delegate = delegate
        var hello = hello
        if hello.mode == .resume { hello.resumptionToken = credentials.resumptionToken }
        if hello.clientAgent == nil { hello.clientAgent = "switchboard-swift/0.1" }
        handshake = ClientHandshake(
            staticKey: credentials.staticKey, cachedServerKey: credentials.serverKey,
            trustedRoot: credentials.serverRootKey, hello: hello)
        let handler: ConnectionHandler
        switch transport {
        case .native:
            handler = self
        case .http(let host):
            let carrier = HTTPStreamClient(host: host, inner: self)
            failureSource = { [weak carrier] in carrier?.failure }
            handler = carrier
        case .https(let serverName, let context):
            let carrier = HTTPStreamClient(host: serverName, inner: self)
            let tls = TLSStream(context: context, inner: carrier, serverName: serverName)
            failureSource = { [weak tls, weak carrier] in tls?.failure ?? carrier?.failure }
            handler = tls
        }
        connection = try Connection.connect(to: address, from: source, on: loop, handler: handler)
    }

    /// Why the carrier failed (a TLS error, an HTTP refusal), when the fallback transport was used.
    public var transportFailure: String? { failureSnapshot ?? failureSource?() }
    private var failureSnapshot: String?
    private var failureSource: (() -> String?)?

    public func connectionDidOpen(_ connection: any ByteStream) {
        self.connection = connection
        do {
            // The preface and the first handshake frame in two writes: the HTTP fallback puts
            // each in a chunk of its own.
            let first = try handshake.start()
            first.withUnsafeBytes { raw in
                connection.write(UnsafeRawBufferPointer(rebasing: raw[..<WireLimits.preface.count]))
                connection.write(UnsafeRawBufferPointer(rebasing: raw[WireLimits.preface.count...]))
            }
            phase = .handshaking
        } catch {
            connection.close(.local)
        }
    }

    public func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        roundTripsToWelcome += phase == .handshaking || phase == .awaitingWelcome ? 1 : 0
        do {
            try assembler.feed(bytes) { (unit) throws(FrameError) -> FrameAssembler.Mode? in
                self.handle(unit, on: connection)
            }
        } catch {
            fail(connection, ErrorStanza(code: error.code, message: "server sent bad framing"))
        }
    }

    private func handle(_ unit: FrameAssembler.Unit, on connection: any ByteStream) -> FrameAssembler.Mode? {
        switch unit {
        case .preface:
            return .handshake
        case .handshake(let type, let body):
            switch handshake.receive(type: type, body: Array(body)) {
            case .send(let bytes, let established):
                connection.write(bytes)
                if let established {
                    adopt(established)
                    return .transport
                }
                return .handshake
            case .established(let established):
                adopt(established)
                if let answer = established.answer { deliver(answer, on: connection) }
                return phase == .closed ? nil : .transport
            case .failed(let code, let reason):
                fail(connection, ErrorStanza(code: code, message: reason))
                return nil
            }
        case .transport(let ciphertext):
            guard transport != nil else { return nil }
            let plaintext: UnsafeMutableRawBufferPointer
            do {
                plaintext = try transport!.open(ciphertext)
            } catch {
                fail(connection, ErrorStanza(code: .decryptFailed, message: "server frame failed authentication"))
                return nil
            }
            do {
                try StanzaCodec.forEach(UnsafeRawBufferPointer(plaintext)) { (stanza) throws(WireError) in
                    self.deliver(stanza, on: connection)
                }
            } catch {
                fail(connection, ErrorStanza(code: .malformedStanza, message: "\(error)"))
                return nil
            }
            return phase == .closed ? nil : .transport
        }
    }

    private func adopt(_ established: ClientHandshake.Established) {
        transport = established.transport
        pattern = established.pattern
        serverHello = established.serverHello
        credentials.serverKey = established.serverKey
        credentials.serverRootKey = established.serverRootKey
        phase = .awaitingWelcome
    }

    private func deliver(_ stanza: Stanza, on connection: any ByteStream) {
        switch (phase, stanza) {
        case (.awaitingWelcome, .welcome(let welcome)):
            credentials.resumptionToken = welcome.resumptionToken
            credentials.accountID = welcome.accountID
            credentials.deviceID = welcome.deviceID
            phase = .established
            // After IK the node waits for one transport frame to confirm the session (an IK
            // first message can be replayed; this frame cannot): send it now, empty unless the
            // delegate queues stanzas in this iteration. An empty frame needs no answer.
            if pattern == .ik {
                outbound.ensureFrame()
                connection.requestFlush()
            }
            delegate?.clientDidConnect(self, welcome: welcome)
        case (_, .error(let error)) where error.code.isFatal:
            lastError = error
            phase = .closed
            connection.close(.local)
        case (.established, .unknown(let type)):
            send(.error(ErrorStanza(code: .unsupportedStanza, message: "stanza type \(type) is not supported", reference: type)))
        default:
            delegate?.client(self, didReceive: stanza)
        }
    }

    /// Queues a stanza; stanzas queued in one loop iteration share one encrypted frame.
    /// - Returns: false if the connection is not established or the stanza cannot fit in one
    ///   frame (65,519 bytes; a group message with many copies must keep its copies small).
    @discardableResult
    public func send(_ stanza: Stanza) -> Bool {
        guard phase == .established, let connection else { return false }
        do {
            try outbound.append(stanza)
            connection.requestFlush()
            return true
        } catch {
            return false
        }
    }

    public func connectionWillFlush(_ connection: any ByteStream) {
        guard !outbound.isEmpty, let transport else { return }
        do {
            try outbound.seal(with: transport) { connection.write($0) }
        } catch {
            connection.close(.local)
        }
    }

    /// Closes after queued stanzas are written.
    public func close() {
        connection?.closeWhenFlushed(.local)
    }

    private func fail(_ connection: any ByteStream, _ error: ErrorStanza) {
        lastError = error
        phase = .closed
        connection.close(.local)
    }

    public func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        failureSnapshot = failureSource?()
        phase = .closed
        self.connection = nil
        delegate?.clientDidClose(self, error: lastError, reason: reason)
    }
}
