import Handshake
import Noise
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
    public let tokens: TokenSealer
    public let ledger: TokenLedger
    public let registration: RegistrationPolicy
    public let nodeID: String
    public let tokenLifetimeSeconds: UInt64
    public let handshakeTimeoutMilliseconds: Int
    public let idleTimeoutSeconds: UInt64
    private let staticKey: Mutex<KeyPair>
    /// Receives session events for logging (any loop's thread).
    public let log: (@Sendable (SessionEvent) -> Void)?

    public init(
        staticKey: KeyPair, accounts: AccountStore, tokens: TokenSealer, ledger: TokenLedger,
        registration: RegistrationPolicy, nodeID: String, tokenLifetimeSeconds: UInt64,
        handshakeTimeoutMilliseconds: Int, idleTimeoutSeconds: UInt64,
        log: (@Sendable (SessionEvent) -> Void)? = nil
    ) {
        self.log = log
        self.staticKey = Mutex(staticKey)
        self.accounts = accounts
        self.tokens = tokens
        self.ledger = ledger
        self.registration = registration
        self.nodeID = nodeID
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.handshakeTimeoutMilliseconds = handshakeTimeoutMilliseconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

    /// The key new handshakes use (read once per connection).
    public var currentStaticKey: KeyPair { staticKey.withLock { $0 } }

    /// Replaces the server's static key; handshakes already under way keep the old one.
    public func replaceStaticKey(_ key: KeyPair) { staticKey.withLock { $0 = key } }

    var handshakeConfiguration: ServerHandshake.Configuration {
        ServerHandshake.Configuration(
            staticKey: currentStaticKey,
            serverHello: ServerHello(nodeID: nodeID, registration: registration == .open ? 1 : 2))
    }
}
