import Noise
import Wire

/// The server's side of the Noise Pipes handshake (PROTOCOL.md "Handshake"), as a value-type
/// state machine: handshake frames in, steps out. It does no I/O and knows nothing of accounts:
/// when the client's hello is readable it asks the session to authenticate it, and the session
/// answers with `finish(with:)`.
public struct ServerHandshake {
    public struct Configuration: Sendable {
        public var staticKey: KeyPair
        public var serverHello: ServerHello

        public init(staticKey: KeyPair, serverHello: ServerHello) {
            self.staticKey = staticKey
            self.serverHello = serverHello
        }
    }

    public enum Step: Sendable {
        /// Send these bytes (a handshake frame) and wait for the next frame.
        case reply([UInt8])
        /// The client's hello and its authenticated static key: log it in, then call `finish`.
        case authenticate(Hello, clientKey: [UInt8])
        /// The keys are agreed but the hello is unusable: answer with this error through
        /// `finish(with:)` (so it travels encrypted, as a welcome would) and close.
        case refuse(ErrorStanza)
        /// Send `wire` (possibly empty) and close: the handshake cannot continue.
        case fail(ErrorCode, String, wire: [UInt8])
    }

    /// Which Noise pattern completed (for metrics and tests).
    public enum Pattern: String, Sendable { case xx = "XX", ik = "IK", xxFallback = "XXfallback" }

    private enum State {
        case awaitingFirst
        case xxAwaitingThird(HandshakeState<SHA256>)
        case fallbackAwaitingSecond(HandshakeState<SHA256>)
        case ikAwaitingAnswer(HandshakeState<SHA256>)
        case established(SecureTransport)
        case finished
    }

    private let configuration: Configuration
    private var state = State.awaitingFirst
    public private(set) var pattern: Pattern?

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    private var prologue: [UInt8] { WireLimits.preface }

    /// The transport, once the client's last handshake message has been read (XX and
    /// XXfallback: before the answer is decided, so errors can travel encrypted).
    public var transport: SecureTransport? {
        if case .established(let transport) = state { return transport }
        return nil
    }

    /// Handles one handshake frame from the client. `staticSecrets` (one per loop) spares a
    /// returning client's IK message its `ss` X25519 operation.
    public mutating func receive(type: UInt8, body: [UInt8], staticSecrets: StaticSecretCache? = nil) -> Step {
        // After its last handshake message (XX 3, XXfallback 2) the client reads transport
        // frames only: a plaintext error frame would be misread, so failures then just close.
        switch state {
        case .xxAwaitingThird, .fallbackAwaitingSecond: plaintextErrors = false
        default: break
        }
        do {
            switch (state, type) {
            case (.awaitingFirst, HandshakeFrameType.xx):
                var noise = try HandshakeState<SHA256>(
                    pattern: .XX, initiator: false, prologue: prologue, localStatic: configuration.staticKey)
                let (payload, _) = try noise.readMessage(body)
                guard payload.isEmpty else { return fail(.handshakeFailed, "XX message 1 carries no payload") }
                let (reply, _) = try noise.writeMessage(StanzaCodec.encode(.serverHello(configuration.serverHello)))
                pattern = .xx
                state = .xxAwaitingThird(noise)
                return .reply(HandshakeFrameType.frame(HandshakeFrameType.xx, reply))

            case (.xxAwaitingThird(var noise), HandshakeFrameType.xx):
                let (payload, completion) = try noise.readMessage(body)
                guard let completion, let clientKey = noise.remoteStatic else { return fail(.handshakeFailed, "XX incomplete") }
                // The client initiated: it sends with the first Split() key.
                state = .established(SecureTransport(sender: completion.responderToInitiator, receiver: completion.initiatorToResponder))
                return authenticate(payload, clientKey)

            case (.awaitingFirst, HandshakeFrameType.ik):
                var noise = try HandshakeState<SHA256>(
                    pattern: .IK, initiator: false, prologue: prologue, localStatic: configuration.staticKey,
                    remoteStatic: nil)
                do {
                    let (payload, _) = try noise.readMessage(body, staticSecrets: staticSecrets)
                    guard let clientKey = noise.remoteStatic else { return fail(.handshakeFailed, "IK without key") }
                    pattern = .ik
                    state = .ikAwaitingAnswer(noise)
                    return authenticate(payload, clientKey)
                } catch NoiseError.decryptFailed {
                    return fallBack(ikMessage: body)
                }

            case (.fallbackAwaitingSecond(var noise), HandshakeFrameType.xxFallback):
                let (payload, completion) = try noise.readMessage(body)
                guard let completion, let clientKey = noise.remoteStatic else { return fail(.handshakeFailed, "XXfallback incomplete") }
                // Roles reversed (Noise rev 34, section 10): the server initiated XXfallback and
                // sends with the first Split() key.
                state = .established(SecureTransport(sender: completion.initiatorToResponder, receiver: completion.responderToInitiator))
                return authenticate(payload, clientKey)

            default:
                return fail(.handshakeFailed, "unexpected handshake frame type \(type)")
            }
        } catch {
            return fail(.handshakeFailed, "handshake message rejected")
        }
    }

    /// The client's IK message was sealed to a static key we do not hold (it cached an old one):
    /// become the XXfallback initiator with its ephemeral key as the pre-message.
    private mutating func fallBack(ikMessage: [UInt8]) -> Step {
        guard ikMessage.count >= 32 else { return fail(.handshakeFailed, "IK message too short") }
        do {
            var noise = try HandshakeState<SHA256>(
                pattern: .XXfallback, initiator: true, prologue: prologue, localStatic: configuration.staticKey,
                remoteEphemeral: Array(ikMessage.prefix(32)))
            let (reply, _) = try noise.writeMessage(StanzaCodec.encode(.serverHello(configuration.serverHello)))
            pattern = .xxFallback
            state = .fallbackAwaitingSecond(noise)
            return .reply(HandshakeFrameType.frame(HandshakeFrameType.xxFallback, reply))
        } catch {
            return fail(.handshakeFailed, "cannot fall back")
        }
    }

    private mutating func authenticate(_ payload: [UInt8], _ clientKey: [UInt8]) -> Step {
        let stanzas: [Stanza]
        do {
            stanzas = try StanzaCodec.decodeAll(payload)
        } catch {
            return .refuse(ErrorStanza(code: .helloInvalid, message: "hello does not decode: \(error)", reference: StanzaType.hello))
        }
        guard stanzas.count == 1, case .hello(let hello) = stanzas[0] else {
            return .refuse(ErrorStanza(code: .helloInvalid, message: "the handshake payload must be exactly one hello stanza",
                                       reference: StanzaType.hello))
        }
        return .authenticate(hello, clientKey: clientKey)
    }

    private var plaintextErrors = true

    private mutating func fail(_ code: ErrorCode, _ reason: String) -> Step {
        state = .finished
        return .fail(code, reason, wire: plaintextErrors ? HandshakeFrameType.errorFrame(code, reason) : [])
    }

    /// Completes the handshake with the answer to the hello (a welcome, or an error that ends
    /// the connection). Returns the handshake frame to send, if the answer travels in one (IK),
    /// and the transport. When `handshakeFrame` is nil the answer must be sent as the first
    /// transport frame.
    public mutating func finish(with answer: Stanza) throws(NoiseError) -> (handshakeFrame: [UInt8]?, transport: SecureTransport) {
        switch state {
        case .ikAwaitingAnswer(var noise):
            let (message, completion) = try noise.writeMessage(StanzaCodec.encode(answer))
            guard let completion else { throw .outOfTurn }
            state = .finished
            let transport = SecureTransport(sender: completion.responderToInitiator, receiver: completion.initiatorToResponder)
            return (HandshakeFrameType.frame(HandshakeFrameType.ik, message), transport)
        case .established(let transport):
            state = .finished
            return (nil, transport)
        default:
            throw .outOfTurn
        }
    }
}
