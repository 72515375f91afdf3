import Handshake
import Noise
import Reactor
import Store
import Synchronization
import Wire

/// How new accounts may be created.
public enum RegistrationPolicy: String, Sendable {
    /// Anyone may register (development).
    case open
    /// Registration needs a code minted by `switchboard invite`.
    case invite
}

/// What every session of the node shares: the server's keys, the store, the token ledger and
/// the policies. One instance per node; the server key can be swapped (SIGHUP after keygen).
public final class SessionServices: Sendable {
    public let accounts: AccountStore
    public let directory: DeviceDirectory
    public let messages: MessageStore
    public let groups: GroupStore
    public let mutes: MuteStore
    public let router: DeliveryRouter
    /// One frame-buffer pool per loop (by loop id).
    let framePools: [LoopBound<FrameBufferPool>]
    /// One cache of IK `ss` results per loop (by loop id): a returning client's handshake costs
    /// one X25519 operation less.
    let staticSecrets: [LoopBound<StaticSecretCache>]
    public let tokens: TokenSealer
    public let ledger: TokenLedger
    public let registration: RegistrationPolicy
    public let nodeID: String
    public let tokenLifetimeSeconds: UInt64
    public let handshakeTimeoutMilliseconds: Int
    public let idleTimeoutSeconds: UInt64
    private let identity: Mutex<(key: KeyPair, certificate: [UInt8])>
    /// Receives session events for logging (any loop's thread).
    public let log: (@Sendable (SessionEvent) -> Void)?

    /// - Parameter certificate: `staticKey`'s public half signed by the operator root
    ///   (`ServerCertificate.encoded`), sent in every ServerHello.
    public init(
        staticKey: KeyPair, certificate: [UInt8], accounts: AccountStore, directory: DeviceDirectory,
        messages: MessageStore, groups: GroupStore, mutes: MuteStore, router: DeliveryRouter, tokens: TokenSealer, ledger: TokenLedger,
        registration: RegistrationPolicy, nodeID: String, tokenLifetimeSeconds: UInt64,
        handshakeTimeoutMilliseconds: Int, idleTimeoutSeconds: UInt64,
        staticSecretsPerLoop: Int = SessionServices.defaultStaticSecretsPerLoop,
        log: (@Sendable (SessionEvent) -> Void)? = nil
    ) {
        self.log = log
        self.directory = directory
        self.messages = messages
        self.groups = groups
        self.mutes = mutes
        self.router = router
        self.framePools = router.loops.map { LoopBound(FrameBufferPool(), on: $0) }
        self.staticSecrets = router.loops.map { LoopBound(StaticSecretCache(capacity: staticSecretsPerLoop), on: $0) }
        self.identity = Mutex((staticKey, certificate))
        self.accounts = accounts
        self.tokens = tokens
        self.ledger = ledger
        self.registration = registration
        self.nodeID = nodeID
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.handshakeTimeoutMilliseconds = handshakeTimeoutMilliseconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

    /// Entries of each loop's `ss` cache unless configured: 97 bytes each, 776 KiB per loop.
    public static let defaultStaticSecretsPerLoop = 8_192

    /// The key new handshakes use (read once per connection).
    public var currentStaticKey: KeyPair { identity.withLock { $0.key } }

    /// Replaces the server's static key and its certificate; handshakes already under way keep
    /// the old ones. Each loop's `ss` cache is wiped: its entries were made with the old key.
    public func replaceStaticKey(_ key: KeyPair, certificate: [UInt8]) {
        identity.withLock { $0 = (key, certificate) }
        for cache in staticSecrets { cache.loop.execute { cache.value.removeAll() } }
    }

    var handshakeConfiguration: ServerHandshake.Configuration {
        let (key, certificate) = identity.withLock { ($0.key, $0.certificate) }
        return ServerHandshake.Configuration(
            staticKey: key,
            serverHello: ServerHello(nodeID: nodeID, registration: registration == .open ? 1 : 2, certificate: certificate))
    }
}
