import Noise

/// What a device keeps between connections: its static key (its identity), the server key it
/// learned (for IK), and its latest resumption token.
public struct ClientCredentials: Sendable {
    public var staticKey: KeyPair
    public var serverKey: [UInt8]?
    /// The operator root key (Ed25519) that signs the server's key: pin it, or let the first
    /// contact set it. A server key change (XXfallback) is accepted only if this root signed it.
    public var serverRootKey: [UInt8]?
    public var resumptionToken: [UInt8]?
    public var accountID: UInt64?
    public var deviceID: UInt64?

    public init(staticKey: KeyPair = .generate(), serverKey: [UInt8]? = nil, serverRootKey: [UInt8]? = nil,
                resumptionToken: [UInt8]? = nil) {
        self.staticKey = staticKey
        self.serverKey = serverKey
        self.serverRootKey = serverRootKey
        self.resumptionToken = resumptionToken
    }
}
