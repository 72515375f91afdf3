import Noise
import Wire

/// The client's side of the Noise Pipes handshake: XX on first contact, IK when the server's
/// static key is cached, XXfallback when the server answers an IK attempt with a switch.
public struct ClientHandshake {
    public struct Established {
        public var transport: SecureTransport
        /// The server's static key as authenticated by this handshake (cache it for IK).
        public var serverKey: [UInt8]
        public var pattern: ServerHandshake.Pattern
        /// IK carries the server's answer (welcome or error) in its last handshake message; the
        /// other patterns deliver it as the first transport frame.
        public var answer: Stanza?
        public var serverHello: ServerHello?
        /// The operator root key that vouches for `serverKey` (cache it with the server key).
        public var serverRootKey: [UInt8]?
    }

    public enum Step {
        /// Send `bytes`; if `established` is set the handshake is complete.
        case send([UInt8], established: Established?)
        case established(Established)
        case failed(ErrorCode, String)
    }

    private enum State {
        case idle
        case xxAwaitingSecond(HandshakeState<SHA256>)
        case ikAwaitingSecond(HandshakeState<SHA256>, ephemeral: KeyPair)
        case finished
    }

    private let staticKey: KeyPair
    private let cachedServerKey: [UInt8]?
    private let trustedRoot: [UInt8]?
    private let hello: Hello
    private var state = State.idle

    /// - Parameters:
    ///   - staticKey: the device's key pair (its identity).
    ///   - cachedServerKey: the server key from an earlier handshake; selects IK.
    ///   - trustedRoot: the operator root key the server's certificate must be signed by — pinned
    ///     by the application or learned on first contact. Without it, first contact trusts the
    ///     root it is shown; a fallback (a server key change) is refused.
    ///   - hello: register, login or resume.
    public init(staticKey: KeyPair, cachedServerKey: [UInt8]?, trustedRoot: [UInt8]? = nil, hello: Hello) {
        self.staticKey = staticKey
        self.cachedServerKey = cachedServerKey
        self.trustedRoot = trustedRoot
        self.hello = hello
    }

    private var prologue: [UInt8] { WireLimits.preface }
    private var helloPayload: [UInt8] { StanzaCodec.encode(.hello(hello)) }

    /// The first bytes to send: the preface and the first handshake frame.
    public mutating func start() throws(NoiseError) -> [UInt8] {
        guard case .idle = state else { throw .outOfTurn }
        if let serverKey = cachedServerKey {
            let ephemeral = KeyPair.generate()
            var noise = try HandshakeState<SHA256>(
                pattern: .IK, initiator: true, prologue: prologue, localStatic: staticKey,
                localEphemeral: ephemeral, remoteStatic: serverKey)
            let (message, _) = try noise.writeMessage(helloPayload)
            state = .ikAwaitingSecond(noise, ephemeral: ephemeral)
            return WireLimits.preface + HandshakeFrameType.frame(HandshakeFrameType.ik, message)
        }
        var noise = try HandshakeState<SHA256>(pattern: .XX, initiator: true, prologue: prologue, localStatic: staticKey)
        let (message, _) = try noise.writeMessage()
        state = .xxAwaitingSecond(noise)
        return WireLimits.preface + HandshakeFrameType.frame(HandshakeFrameType.xx, message)
    }

    /// Handles one handshake frame from the server.
    public mutating func receive(type: UInt8, body: [UInt8]) -> Step {
        if type == HandshakeFrameType.error {
            state = .finished
            let (code, reason) = HandshakeFrameType.parseError(body)
            return .failed(code, reason)
        }
        do {
            switch (state, type) {
            case (.xxAwaitingSecond(var noise), HandshakeFrameType.xx):
                let (payload, _) = try noise.readMessage(body)
                let serverHello = try ClientHandshake.serverHello(payload)
                guard let serverKey = noise.remoteStatic else { return failed("XX incomplete") }
                // Check the server before telling it anything.
                guard let root = vouchedRoot(serverHello, serverKey: serverKey, requireKnownRoot: false) else {
                    return failed("the server's certificate does not vouch for its key")
                }
                let (message, completion) = try noise.writeMessage(helloPayload)
                guard let completion else { return failed("XX incomplete") }
                state = .finished
                let established = Established(
                    transport: SecureTransport(sender: completion.initiatorToResponder, receiver: completion.responderToInitiator),
                    serverKey: serverKey, pattern: .xx, answer: nil, serverHello: serverHello, serverRootKey: root)
                return .send(HandshakeFrameType.frame(HandshakeFrameType.xx, message), established: established)

            case (.ikAwaitingSecond(var noise, _), HandshakeFrameType.ik):
                let (payload, completion) = try noise.readMessage(body)
                guard let completion, let serverKey = cachedServerKey else { return failed("IK incomplete") }
                let stanzas = try StanzaCodec.decodeAll(payload)
                guard stanzas.count == 1 else { return failed("IK answer must be one stanza") }
                state = .finished
                return .established(Established(
                    transport: SecureTransport(sender: completion.initiatorToResponder, receiver: completion.responderToInitiator),
                    serverKey: serverKey, pattern: .ik, answer: stanzas[0], serverHello: nil, serverRootKey: trustedRoot))

            case (.ikAwaitingSecond(_, let ephemeral), HandshakeFrameType.xxFallback):
                // The server could not read our IK message: our cached key is stale. Continue as
                // the XXfallback responder, reusing our IK ephemeral key (its pre-message).
                var noise = try HandshakeState<SHA256>(
                    pattern: .XXfallback, initiator: false, prologue: prologue, localStatic: staticKey,
                    localEphemeral: ephemeral)
                let (payload, _) = try noise.readMessage(body)
                let serverHello = try ClientHandshake.serverHello(payload)
                guard let serverKey = noise.remoteStatic else { return failed("XXfallback incomplete") }
                // A key change must be vouched for by the root we already trust: otherwise
                // anyone who saw our IK attempt could answer with a fallback of its own.
                guard let root = vouchedRoot(serverHello, serverKey: serverKey, requireKnownRoot: true) else {
                    return failed("the server's new key is not signed by the trusted root")
                }
                let (message, completion) = try noise.writeMessage(helloPayload)
                guard let completion else { return failed("XXfallback incomplete") }
                state = .finished
                let established = Established(
                    transport: SecureTransport(sender: completion.responderToInitiator, receiver: completion.initiatorToResponder),
                    serverKey: serverKey, pattern: .xxFallback, answer: nil, serverHello: serverHello, serverRootKey: root)
                return .send(HandshakeFrameType.frame(HandshakeFrameType.xxFallback, message), established: established)

            default:
                return failed("unexpected handshake frame type \(type)")
            }
        } catch {
            return failed("server handshake message rejected: \(error)")
        }
    }

    /// The root that vouches for `serverKey` through the ServerHello's certificate, if the
    /// certificate is valid, names this key, and (when a root is trusted) is signed by that root.
    private func vouchedRoot(_ hello: ServerHello, serverKey: [UInt8], requireKnownRoot: Bool) -> [UInt8]? {
        guard let bytes = hello.certificate, let certificate = ServerCertificate(decoding: bytes),
            certificate.serverKey == serverKey
        else { return nil }
        if let trustedRoot { return certificate.rootKey == trustedRoot ? trustedRoot : nil }
        return requireKnownRoot ? nil : certificate.rootKey
    }

    private mutating func failed(_ reason: String) -> Step {
        state = .finished
        return .failed(.handshakeFailed, reason)
    }

    private static func serverHello(_ payload: [UInt8]) throws -> ServerHello {
        guard case .serverHello(let hello)? = try StanzaCodec.decodeAll(payload).first else {
            throw WireError.malformed("expected a server hello")
        }
        return hello
    }
}
