import Handshake
import Noise
import Reactor
import Store
import Wire

/// The account and device a session logged in as.
public struct DeviceIdentity: Sendable, Equatable {
    public let accountID: UInt64
    public let deviceID: UInt64
}

/// One client connection on the node: preface, Noise Pipes handshake, authentication, then
/// encrypted stanzas. Runs on its connection's loop; holds no buffer while idle.
public final class ServerSession: ConnectionHandler {
    enum Phase { case handshaking, authenticating, established, closing }

    // Stored properties are declared widest first and the flags last, so that they pack without
    // padding (Swift lays a class out in declaration order): an idle connection is what a node
    // holds most of, and this object is the largest part of one.
    let services: SessionServices
    let metrics: SessionMetrics
    /// The connection while it is open (cleared on close, which breaks the reference cycle).
    var connection: (any ByteStream)?
    /// Tells this session apart from other sessions of the same device (router entries).
    let serial: UInt64
    /// The store sequence number of the last stored copy this connection was sent.
    var lastDeliveredSeq: UInt64 = 0
    /// The `seq` of this connection's last Deliver (PROTOCOL.md section 20.3).
    var lastWireSeq: UInt64 = 0
    /// Direct copies this session took (the registry loop balances its books with it).
    var directTaken: UInt64 = 0
    /// Store sequence numbers of copies this connection already has (direct copies stored after
    /// their deadline): a pull skips them.
    var deliveredStoreSeqs: Set<UInt64> = []
    /// Section 20.8, sending side, allocated at the first Send (most connections only receive).
    var sending: SendingState?
    var sendState: SendingState {
        if let sending { return sending }
        let state = SendingState()
        sending = state
        return state
    }
    /// Accounts whose presence this session watches.
    var presenceSubscriptions: Set<UInt64> = []
    /// Typing indicators and read receipts allowed per second.
    var chattyStanzas = RateLimit(perSecond: 5)
    private var assembler = FrameAssembler()
    /// The handshake machine (211 bytes), boxed so that an established session keeps a nil
    /// pointer rather than the machine inline: idle connections are what a node holds most of.
    private final class HandshakeBox {
        var machine: ServerHandshake
        init(_ machine: ServerHandshake) { self.machine = machine }
    }
    private var handshake: HandshakeBox?
    private var transport: SecureTransport?
    private var outbound = OutboundFrames()
    /// Transport frames that arrived while the hello was being checked (XX and XXfallback
    /// clients may send right after their last handshake message), replayed once welcomed.
    private var held: [UInt8] = []
    /// Deliveries not acknowledged yet, by wire `seq`; at most `deliveryWindow`, spanning at most
    /// `deliverySpan` numbers.
    var inFlight = InFlightWindow<InFlight>()
    /// Direct copies waiting for room in the window or for a read of stored copies on its way,
    /// with their arrival (loop time), in the order they came (`DirectReceiving.swift`); made at
    /// the first copy that waits. A queue, not an array: acknowledgements free the window a few
    /// slots at a time, and an array's `removeFirst` moved every copy behind them each time.
    var directWaiting: LoopQueue<(copy: DirectCopy, since: UInt64)>?
    /// The logged-in device (its names stay in the store: the session needs only its ids).
    public private(set) var device: DeviceIdentity?
    /// Sends answered by nobody yet (stored, direct or held), at most `maxOutstandingSends`.
    var outstandingSends: Int32 = 0
    /// Direct copies this session sent to the store instead of delivering; later ones follow.
    var directStoring: Int32 = 0
    private var nonFatalErrors: Int32 = 0
    var phase = Phase.handshaking
    var online = false
    var directTimerArmed = false
    var pulling = false
    var pullAgain = false
    /// The connection's first pull (with the pre-key stock) has been answered.
    var loginPulled = false
    /// False after an IK login until the client's first valid transport frame: routing must not
    /// treat an unconfirmed session as the device's live connection.
    public internal(set) var confirmed = true

    /// Transport bytes a client may send before its login is confirmed (frame headers included).
    static let maxHeldBytes = 64 * 1024
    /// Non-fatal error replies (unsupported or misplaced stanzas) a connection may cause; a peer
    /// that keeps sending them is closed rather than answered, so it cannot make the node write
    /// more than it reads.
    static let maxNonFatalErrors: Int32 = 64

    public init(services: SessionServices, metrics: SessionMetrics) {
        self.services = services
        self.metrics = metrics
        self.serial = services.router.nextSerial()
    }

    public func connectionDidOpen(_ connection: any ByteStream) {
        self.connection = connection
        outbound = OutboundFrames(pool: services.framePools[connection.loop.id].value)
        handshake = HandshakeBox(ServerHandshake(configuration: services.handshakeConfiguration))
        connection.setDeadline(milliseconds: services.handshakeTimeoutMilliseconds)
        metrics.bump(.connectionsOpened)
    }

    public func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        guard phase != .closing else { return }
        do {
            try assembler.feed(bytes) { (unit) throws(FrameError) -> FrameAssembler.Mode? in
                self.handle(unit, on: connection)
            }
        } catch {
            fail(connection, error.code, describe(error))
        }
    }

    private func describe(_ error: FrameError) -> String {
        switch error {
        case .badPreface: return "not a Switchboard client (bad preface)"
        case .unsupportedVersion(let v): return "protocol version \(v) is not supported; this node speaks \(WireLimits.protocolVersion)"
        case .frameTooShort(let n): return "transport frame of \(n) bytes is shorter than its tag"
        case .rejected(_, let why): return why
        }
    }

    /// Handles one unit; returns the mode of the next, or nil to stop reading.
    private func handle(_ unit: FrameAssembler.Unit, on connection: any ByteStream) -> FrameAssembler.Mode? {
        switch unit {
        case .preface:
            return .handshake
        case .handshake(let type, let body):
            guard phase == .handshaking, let box = handshake else {
                fail(connection, .notAllowedNow, "handshake frame after the handshake")
                return nil
            }
            let staticSecrets = services.staticSecrets[connection.loop.id].value
            let (hits, misses) = (staticSecrets.hits, staticSecrets.misses)
            let step = box.machine.receive(type: type, body: Array(body), staticSecrets: staticSecrets)
            if staticSecrets.hits != hits { metrics.bump(.ikStaticSecretHits) }
            if staticSecrets.misses != misses { metrics.bump(.ikStaticSecretMisses) }
            switch step {
            case .reply(let bytes):
                connection.write(bytes)
                return .handshake
            case .authenticate(let hello, let clientKey):
                phase = .authenticating
                transport = box.machine.transport  // XX, XXfallback: errors from here on are encrypted
                authenticate(hello, clientKey: clientKey, on: connection)
                return phase == .closing ? nil : .transport
            case .refuse(let error):
                phase = .authenticating
                transport = box.machine.transport
                finishHandshake(.error(error), device: nil, mode: .login, on: connection)
                return nil
            case .fail(let code, let reason, let wire):
                metrics.bump(.handshakeFailures)
                metrics.countError(code)
                services.log?(.handshakeFailed(code: code, reason: reason))
                if !wire.isEmpty { connection.write(wire) }
                close(connection)
                return nil
            }
        case .transport(let ciphertext):
            switch phase {
            case .authenticating:
                guard held.count + ciphertext.count + 2 <= ServerSession.maxHeldBytes else {
                    fail(connection, .overLimit, "too much sent before the login was confirmed")
                    return nil
                }
                held.append(UInt8(ciphertext.count >> 8))
                held.append(UInt8(ciphertext.count & 0xff))
                held.append(contentsOf: ciphertext)
                return .transport
            case .established:
                return receiveFrame(ciphertext, on: connection) ? .transport : nil
            case .handshaking, .closing:
                return nil
            }
        }
    }

    private func authenticate(_ hello: Hello, clientKey: [UInt8], on connection: any ByteStream) {
        connection.openingWaitsOnPeer(false)  // the store has the login now, not the client
        let loop = connection.loop
        let bound = LoopBound((self, connection), on: loop)
        Authenticator(services: services).answer(hello, clientKey: clientKey, on: loop) { answer, device in
            // Runs on the connection's loop (the store posts back there).
            let (session, connection) = bound.value
            // The connection may have failed, started draining or closed while the store worked.
            guard connection.isOpen, session.phase == .authenticating else { return }
            session.finishHandshake(answer, device: device, mode: hello.mode, on: connection)
        }
    }

    private func finishHandshake(_ answer: Stanza, device: DeviceRecord?, mode: Hello.Mode, on connection: any ByteStream) {
        guard let box = handshake else { return }
        do {
            let (frame, transport) = try box.machine.finish(with: answer)
            handshake = nil
            if self.transport == nil { self.transport = transport }
            if let frame {
                connection.write(frame)
            } else {
                try? outbound.append(answer)
                connection.requestFlush()
            }
        } catch {
            close(connection)
            return
        }
        let pattern = box.machine.pattern ?? .xx
        guard case .welcome = answer, let device else {
            metrics.bump(.loginsRefused)
            if case .error(let error) = answer { services.log?(.loginRefused(code: error.code)) }
            phase = .closing
            connection.closeWhenFlushed(.local)
            return
        }
        metrics.countHandshake(pattern)
        self.device = DeviceIdentity(accountID: device.accountID, deviceID: device.deviceID)
        phase = .established
        if pattern == .ik {
            // IK message 1 can be replayed by anyone who recorded it; only the real client can
            // send a valid transport frame. Until one arrives the session is unconfirmed (the
            // router does not know it) and the handshake deadline keeps running.
            confirmed = false
            connection.openingWaitsOnPeer(true)
        } else {
            finishOpening(connection)
        }
        services.log?(.loggedIn(accountID: device.accountID, deviceID: device.deviceID, pattern: pattern.rawValue, mode: mode))
        replayHeld(on: connection)
    }

    /// The login is confirmed: the handshake deadline ends, the connection stops counting
    /// against the loop's opening connections, and the device goes online.
    private func finishOpening(_ connection: any ByteStream) {
        connection.clearDeadline()
        connection.finishedOpening()
        goOnline(on: connection)
    }

    private func replayHeld(on connection: any ByteStream) {
        guard !held.isEmpty else { return }
        var frames = held
        held = []
        frames.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset + 2 <= raw.count, phase == .established {
                let length = Int(raw[offset]) << 8 | Int(raw[offset + 1])
                let frame = UnsafeMutableRawBufferPointer(rebasing: raw[offset + 2..<offset + 2 + length])
                offset += 2 + length
                if !receiveFrame(frame, on: connection) { return }
            }
        }
    }

    /// Decrypts one transport frame in place and handles its stanzas; false when closing.
    private func receiveFrame(_ ciphertext: UnsafeMutableRawBufferPointer, on connection: any ByteStream) -> Bool {
        let plaintext: UnsafeMutableRawBufferPointer
        do {
            plaintext = try transport!.open(ciphertext)
        } catch {
            metrics.bump(.decryptFailures)
            fail(connection, .decryptFailed, "a frame failed authentication")
            return false
        }
        metrics.bump(.framesIn)
        if !confirmed {
            confirmed = true
            finishOpening(connection)
        }
        do {
            try StanzaCodec.forEach(UnsafeRawBufferPointer(plaintext), reusing: services.router.routes(onLoop: connection.loopID).ciphertexts, acks: { seqs in
                self.acknowledge(seqs, on: connection)
            }) { (stanza) throws(WireError) in
                self.handle(stanza, on: connection)
            }
        } catch {
            fail(connection, error.code, "\(error)")
            return false
        }
        return phase == .established
    }

    private func handle(_ stanza: Stanza, on connection: any ByteStream) {
        switch stanza {
        case .ping(let value):
            send(.pong(value), on: connection)
        case .pong, .error:
            break  // answers to our pings; client-side errors are informational
        case .unknown(let type):
            answerNonFatal(ErrorStanza(code: .unsupportedStanza, message: "stanza type \(type) is not supported", reference: type), on: connection)
        case .listDevices, .addDevice, .removeDevice, .publishKeys, .getKeys, .send, .ack, .receipt, .registerPush,
            .presenceAllow, .presenceSubscribe, .typing, .createGroup, .updateGroup, .getGroup, .mute:
            handleMessaging(stanza, on: connection)
        case .hello, .serverHello, .welcome, .goodbye, .deviceList, .result, .keyBundles, .prekeysLow, .sendResult, .deliver,
            .presence, .groupInfo:
            answerNonFatal(ErrorStanza(code: .notAllowedNow, message: "stanza not sent by clients or not allowed now", reference: stanza.type), on: connection)
        }
    }

    private func answerNonFatal(_ error: ErrorStanza, on connection: any ByteStream) {
        nonFatalErrors += 1
        guard nonFatalErrors <= ServerSession.maxNonFatalErrors else {
            fail(connection, .overLimit, "too many unsupported or misplaced stanzas")
            return
        }
        send(.error(error), on: connection)
    }

    /// Queues a stanza; it is sealed with everything else queued this iteration.
    public func send(_ stanza: Stanza, on connection: any ByteStream) {
        queue(on: connection) { (frames) throws(WireError) in try frames.append(stanza) }
    }

    /// Unix milliseconds for a time stamp: the loop's once-per-iteration reading while the
    /// session has its connection, the clock otherwise.
    var wallMilliseconds: UInt64 { connection?.loopWallMilliseconds ?? Authenticator.unixMilliseconds() }

    /// `send(.deliver(…))` for `delivery` numbered `seq`, without copying the delivery.
    func sendDeliver(_ delivery: Delivery, seq: UInt64, on connection: any ByteStream) {
        queue(on: connection) { (frames) throws(WireError) in try frames.append(deliver: delivery, seq: seq) }
    }

    /// Appends a stanza to the pending frames (`append`) and asks for a flush; nothing once the
    /// session no longer writes, or for a stanza too large for a frame.
    @inline(__always)
    private func queue(on connection: any ByteStream, _ append: (inout OutboundFrames) throws(WireError) -> Void) {
        guard transport != nil, phase == .established || phase == .closing else { return }
        do {
            try append(&outbound)
        } catch {
            return
        }
        connection.requestFlush()
    }

    public func connectionWillFlush(_ connection: any ByteStream) {
        // `write` may close the connection (hard limit), whose close handler drops `transport`:
        // the local reference keeps the state alive until sealing ends.
        guard !outbound.isEmpty, let transport else { return }
        do {
            try outbound.seal(with: transport) { bytes in connection.write(bytes) }
            metrics.bump(.framesOut)
        } catch {
            connection.close(.local)  // nonce exhaustion or a cipher failure: the session must end
        }
    }

    /// Sends the error where the client will read it — encrypted once keys exist, as a
    /// plaintext handshake error frame while the client still reads handshake frames — and
    /// closes after it is written.
    func fail(_ connection: any ByteStream, _ code: ErrorCode, _ message: String) {
        guard phase != .closing else { return }
        metrics.bump(.protocolErrors)
        metrics.countError(code)
        if transport != nil {
            try? outbound.append(.error(ErrorStanza(code: code, message: message)))
        } else {
            connection.write(HandshakeFrameType.errorFrame(code, message))
        }
        close(connection)
    }

    private func close(_ connection: any ByteStream) {
        phase = .closing
        held = []
        connection.closeWhenFlushed(.local)
    }

    public func connectionShouldDrain(_ connection: any ByteStream) {
        if phase == .established {
            send(.goodbye(Goodbye(code: .draining, message: "node shutting down", retryAfterMilliseconds: 1000)), on: connection)
        }
        phase = .closing
        connection.closeWhenFlushed(.draining)
    }

    public func connectionIdleTimedOut(_ connection: any ByteStream) {
        guard phase == .established else {
            connection.close(.idleTimeout)
            return
        }
        send(.goodbye(Goodbye(code: .idleTimeout, message: "connection idle too long", retryAfterMilliseconds: 0)), on: connection)
        phase = .closing
        connection.closeWhenFlushed(.idleTimeout)
    }

    public func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        if case .deadline = reason { metrics.bump(.handshakeTimeouts) }
        if online, let device {
            online = false
            let returning = returnDirectCopiesCount
            services.router.sessionOffline(device: device, serial: serial, subscriptions: presenceSubscriptions,
                                           keptDirect: directTaken - UInt64(returning), loop: connection.loop)
            presenceSubscriptions = []
            returnDirectCopies()
            leaveGroupTallies(on: connection.loop)
        }
        self.connection = nil
        metrics.bump(.connectionsClosed)
        phase = .closing
        handshake = nil
        transport = nil
        held = []
    }
}
