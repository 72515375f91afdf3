/// The `HandshakeState` of section 5.3 over DH 25519 and ChaChaPoly, generic over the hash.
///
/// A value type: each `writeMessage`/`readMessage` consumes the next message pattern. The
/// message that completes the pattern also returns the transport cipher states (`Split()`),
/// after which the handshake state refuses further use.
public struct HandshakeState<Hash: NoiseHashFunction>: Sendable {
    /// Section 3: a Noise message is at most 65,535 bytes.
    public static var maxMessageLength: Int { 65_535 }

    public let initiator: Bool
    public let protocolName: String
    private var symmetric: SymmetricState<Hash>
    private var localStatic: KeyPair?
    private var localEphemeral: KeyPair?
    public private(set) var remoteStatic: [UInt8]?
    public private(set) var remoteEphemeral: [UInt8]?
    private var pending: ArraySlice<[Token]>
    private var sentOrReceived = 0
    private var finished = false

    /// The result of the last handshake message, when it completed the handshake.
    public struct Completion: Sendable {
        /// Encrypts initiator-to-responder transport messages.
        public var initiatorToResponder: CipherState
        /// Encrypts responder-to-initiator transport messages.
        public var responderToInitiator: CipherState
        /// `GetHandshakeHash()`: for channel binding.
        public let handshakeHash: [UInt8]
    }

    /// `Initialize(handshake_pattern, initiator, prologue, s, e, rs, re)`.
    /// - Parameters:
    ///   - localEphemeral: normally nil (generated when the `e` token is processed); set for test
    ///     vectors, and for the responder of `XXfallback`, which reuses its IK ephemeral key.
    ///   - remoteEphemeral: the initiator of `XXfallback` passes the key read from the IK message.
    public init(
        pattern: HandshakePattern, initiator: Bool, prologue: [UInt8] = [],
        localStatic: KeyPair? = nil, localEphemeral: KeyPair? = nil,
        remoteStatic: [UInt8]? = nil, remoteEphemeral: [UInt8]? = nil
    ) throws(NoiseError) {
        self.initiator = initiator
        self.protocolName = "Noise_\(pattern.name)_25519_ChaChaPoly_\(Hash.name)"
        symmetric = SymmetricState(protocolName: protocolName)
        symmetric.mixHash(prologue)
        self.localStatic = localStatic
        self.localEphemeral = localEphemeral
        self.remoteStatic = remoteStatic
        self.remoteEphemeral = remoteEphemeral
        // Pre-message keys, initiator's first (section 5.3).
        for (tokens, isInitiators) in [(pattern.initiatorPreMessage, true), (pattern.responderPreMessage, false)] {
            for token in tokens {
                let mine = isInitiators == initiator
                let key: [UInt8]?
                switch token {
                case .e: key = mine ? localEphemeral?.publicKey : remoteEphemeral
                case .s: key = mine ? localStatic?.publicKey : remoteStatic
                default: key = nil
                }
                guard let key else { throw .missingKey }
                symmetric.mixHash(key)
            }
        }
        pending = pattern.messages[...]
    }

    /// True when the next message is ours to write.
    public var isMyTurn: Bool { !finished && (sentOrReceived % 2 == 0) == initiator }
    public var isFinished: Bool { finished }
    /// The handshake hash so far.
    public var handshakeHash: [UInt8] { symmetric.handshakeHash }

    /// `WriteMessage(payload)`: returns the message, and the transport states if it was the last.
    public mutating func writeMessage(_ payload: [UInt8] = []) throws(NoiseError) -> (message: [UInt8], completion: Completion?) {
        guard isMyTurn, let tokens = pending.first else { throw .outOfTurn }
        var message: [UInt8] = []
        // Room for every key a message pattern can carry (e: 32, s: 32 + tag) and the sealed
        // payload, so the message is not regrown as it is built.
        message.reserveCapacity(2 * DH25519.length + 2 * CipherState.tagLength + payload.count)
        for token in tokens {
            switch token {
            case .e:
                let ephemeral = localEphemeral ?? KeyPair.generate()
                localEphemeral = ephemeral
                message += ephemeral.publicKey
                symmetric.mixHash(ephemeral.publicKey)
            case .s:
                guard let localStatic else { throw .missingKey }
                message += try symmetric.encryptAndHash(localStatic.publicKey)
            default:
                _ = try mixDH(token, nil)
            }
        }
        message += try symmetric.encryptAndHash(payload)
        guard message.count <= HandshakeState.maxMessageLength else { throw .badMessageLength }
        return (message, advance())
    }

    /// `ReadMessage(message)`: returns the payload, and the transport states if it was the last.
    /// `staticSecrets`, when given, supplies the `ss` token's result if it knows it, and keeps
    /// a computed one once the message has authenticated.
    public mutating func readMessage(
        _ message: [UInt8], staticSecrets: StaticSecretCache? = nil
    ) throws(NoiseError) -> (payload: [UInt8], completion: Completion?) {
        guard !finished, !isMyTurn, let tokens = pending.first else { throw .outOfTurn }
        guard message.count <= HandshakeState.maxMessageLength else { throw .badMessageLength }
        var offset = 0
        func take(_ count: Int) throws(NoiseError) -> [UInt8] {
            guard message.count - offset >= count else { throw .badMessageLength }
            defer { offset += count }
            return Array(message[offset..<offset + count])
        }
        var computedStaticSecret: [UInt8]?
        defer { if computedStaticSecret != nil { wipe(&computedStaticSecret!) } }
        for token in tokens {
            switch token {
            case .e:
                guard remoteEphemeral == nil else { throw .outOfTurn }
                let key = try take(DH25519.length)
                remoteEphemeral = key
                symmetric.mixHash(key)
            case .s:
                guard remoteStatic == nil else { throw .outOfTurn }
                let sealed = try take(DH25519.length + (symmetric.cipher.hasKey ? CipherState.tagLength : 0))
                remoteStatic = try symmetric.decryptAndHash(sealed)
            default:
                if let computed = try mixDH(token, staticSecrets) { computedStaticSecret = computed }
            }
        }
        let payload = try symmetric.decryptAndHash(Array(message[offset...]))
        if let computedStaticSecret, let staticSecrets, let localStatic, let remoteStatic {
            staticSecrets.remember(computedStaticSecret, of: localStatic, with: remoteStatic)
        }
        return (payload, advance())
    }

    /// Mixes the DH result `token` names. For `ss` with a cache: the kept result if there is
    /// one (returns nil), else the computed one, returned for the caller to keep once the
    /// message authenticates.
    private mutating func mixDH(_ token: Token, _ staticSecrets: StaticSecretCache?) throws(NoiseError) -> [UInt8]? {
        let local: KeyPair?
        let remote: [UInt8]?
        switch token {
        case .ee: (local, remote) = (localEphemeral, remoteEphemeral)
        case .ss: (local, remote) = (localStatic, remoteStatic)
        case .es: (local, remote) = initiator ? (localEphemeral, remoteStatic) : (localStatic, remoteEphemeral)
        case .se: (local, remote) = initiator ? (localStatic, remoteEphemeral) : (localEphemeral, remoteStatic)
        case .e, .s: return nil
        }
        guard let local, let remote else { throw .missingKey }
        if token == .ss, let staticSecrets, var kept = staticSecrets.secret(local, with: remote) {
            symmetric.mixKey(kept)
            wipe(&kept)
            return nil
        }
        var shared = try DH25519.dh(local, remote)
        symmetric.mixKey(shared)
        guard token == .ss, staticSecrets != nil else {
            wipe(&shared)
            return nil
        }
        return shared
    }

    private mutating func advance() -> Completion? {
        pending = pending.dropFirst()
        sentOrReceived += 1
        guard pending.isEmpty else { return nil }
        finished = true
        let hash = symmetric.handshakeHash
        let (c1, c2) = symmetric.split()
        localEphemeral = nil
        return Completion(initiatorToResponder: c1, responderToInitiator: c2, handshakeHash: hash)
    }

    /// The local ephemeral key pair (the IK initiator keeps it for a fallback).
    public var ephemeralKeyPair: KeyPair? { localEphemeral }
}
