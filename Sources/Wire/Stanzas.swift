/// Stanza type numbers (PROTOCOL.md "Stanzas"). Never renumber.
public enum StanzaType {
    public static let hello: UInt64 = 1
    public static let serverHello: UInt64 = 2
    public static let welcome: UInt64 = 3
    public static let error: UInt64 = 4
    public static let ping: UInt64 = 5
    public static let pong: UInt64 = 6
    public static let goodbye: UInt64 = 7
}

/// The client's hello, carried in its handshake payload: register, log in or resume.
public struct Hello: Equatable, Sendable {
    public enum Mode: UInt64, Sendable { case register = 1, login = 2, resume = 3 }

    public var version: UInt64 = UInt64(WireLimits.protocolVersion)
    public var mode: Mode
    public var accountName: String?
    public var deviceName: String?
    public var inviteCode: String?
    public var resumptionToken: [UInt8]?
    public var clientAgent: String?

    public init(mode: Mode, accountName: String? = nil, deviceName: String? = nil, inviteCode: String? = nil,
                resumptionToken: [UInt8]? = nil, clientAgent: String? = nil) {
        self.mode = mode
        self.accountName = accountName
        self.deviceName = deviceName
        self.inviteCode = inviteCode
        self.resumptionToken = resumptionToken
        self.clientAgent = clientAgent
    }
}

/// The server's hello, in its first handshake payload (XX message 2, XXfallback message 1).
public struct ServerHello: Equatable, Sendable {
    public var version: UInt64 = UInt64(WireLimits.protocolVersion)
    public var nodeID: String
    public var maxFramePlaintext: UInt64 = UInt64(WireLimits.maxFramePlaintext)
    public var registration: UInt64  // 1 open, 2 invite
    /// The node's static key signed by its operator's root key (PROTOCOL.md section 11).
    public var certificate: [UInt8]?

    public init(nodeID: String, registration: UInt64, certificate: [UInt8]? = nil) {
        self.nodeID = nodeID
        self.registration = registration
        self.certificate = certificate
    }
}

/// Login accepted: who the device is and its next resumption token.
public struct Welcome: Equatable, Sendable {
    public var accountID: UInt64
    public var deviceID: UInt64
    public var accountName: String
    public var resumptionToken: [UInt8]
    public var tokenExpiresAt: UInt64  // unix seconds
    public var serverTimeMilliseconds: UInt64
    public var newAccount: Bool
    public var idleTimeoutSeconds: UInt64

    public init(accountID: UInt64, deviceID: UInt64, accountName: String, resumptionToken: [UInt8],
                tokenExpiresAt: UInt64, serverTimeMilliseconds: UInt64, newAccount: Bool, idleTimeoutSeconds: UInt64) {
        self.accountID = accountID
        self.deviceID = deviceID
        self.accountName = accountName
        self.resumptionToken = resumptionToken
        self.tokenExpiresAt = tokenExpiresAt
        self.serverTimeMilliseconds = serverTimeMilliseconds
        self.newAccount = newAccount
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}

public struct ErrorStanza: Equatable, Sendable {
    public var code: ErrorCode
    public var message: String
    /// The stanza type the error answers, when it answers one.
    public var reference: UInt64?

    public init(code: ErrorCode, message: String, reference: UInt64? = nil) {
        self.code = code
        self.message = message
        self.reference = reference
    }
}

/// The server is closing the connection on purpose (draining, idle) and says when to return.
public struct Goodbye: Equatable, Sendable {
    public var code: ErrorCode
    public var message: String
    public var retryAfterMilliseconds: UInt64

    public init(code: ErrorCode, message: String, retryAfterMilliseconds: UInt64) {
        self.code = code
        self.message = message
        self.retryAfterMilliseconds = retryAfterMilliseconds
    }
}

/// Every stanza this version knows, and `unknown` for types it does not.
public enum Stanza: Equatable, Sendable {
    case hello(Hello)
    case serverHello(ServerHello)
    case welcome(Welcome)
    case error(ErrorStanza)
    case ping(UInt64)
    case pong(UInt64)
    case goodbye(Goodbye)
    case listDevices(requestID: UInt64, accountID: UInt64)
    case deviceList(requestID: UInt64, accountID: UInt64, devices: [DeviceInfo])
    case addDevice(requestID: UInt64, staticKey: [UInt8], name: String)
    case removeDevice(requestID: UInt64, deviceID: UInt64)
    case result(RequestResult)
    case publishKeys(requestID: UInt64, identityKey: [UInt8]?, signedPrekey: SignedPrekey?, oneTimePrekeys: [OneTimePrekey])
    case getKeys(requestID: UInt64, accountID: UInt64, deviceID: UInt64?)
    case keyBundles(requestID: UInt64, accountID: UInt64, bundles: [KeyBundle])
    case prekeysLow(remaining: UInt64)
    case send(SendMessage)
    case sendResult(SendResult)
    case deliver(Delivery)
    case ack(seqs: [UInt64])
    case receipt(requestID: UInt64, toAccount: UInt64, messageIDs: [MessageID])
    case registerPush(requestID: UInt64, token: String)
    case presenceAllow(requestID: UInt64, accountID: UInt64, allowed: Bool)
    case presenceSubscribe(requestID: UInt64, accountID: UInt64)
    case presence(accountID: UInt64, online: Bool, lastSeenMilliseconds: UInt64)
    /// Client to node: `account` is the recipient, `device` 0. Node to client: the typist.
    case typing(accountID: UInt64, deviceID: UInt64, active: Bool)
    case createGroup(requestID: UInt64, name: String, members: [UInt64])
    case updateGroup(requestID: UInt64, groupID: UInt64, operation: GroupOperation, accountID: UInt64, name: String)
    case getGroup(requestID: UInt64, groupID: UInt64)
    case groupInfo(requestID: UInt64, groupID: UInt64, name: String, members: [GroupMember])
    case mute(MuteRequest)
    case unknown(type: UInt64)

    public var type: UInt64 {
        switch self {
        case .hello: return StanzaType.hello
        case .serverHello: return StanzaType.serverHello
        case .welcome: return StanzaType.welcome
        case .error: return StanzaType.error
        case .ping: return StanzaType.ping
        case .pong: return StanzaType.pong
        case .goodbye: return StanzaType.goodbye
        case .listDevices: return StanzaType.listDevices
        case .deviceList: return StanzaType.deviceList
        case .addDevice: return StanzaType.addDevice
        case .removeDevice: return StanzaType.removeDevice
        case .result: return StanzaType.result
        case .publishKeys: return StanzaType.publishKeys
        case .getKeys: return StanzaType.getKeys
        case .keyBundles: return StanzaType.keyBundles
        case .prekeysLow: return StanzaType.prekeysLow
        case .send: return StanzaType.send
        case .sendResult: return StanzaType.sendResult
        case .deliver: return StanzaType.deliver
        case .ack: return StanzaType.ack
        case .receipt: return StanzaType.receipt
        case .registerPush: return StanzaType.registerPush
        case .presenceAllow: return StanzaType.presenceAllow
        case .presenceSubscribe: return StanzaType.presenceSubscribe
        case .presence: return StanzaType.presence
        case .typing: return StanzaType.typing
        case .createGroup: return StanzaType.createGroup
        case .updateGroup: return StanzaType.updateGroup
        case .getGroup: return StanzaType.getGroup
        case .groupInfo: return StanzaType.groupInfo
        case .mute: return StanzaType.mute
        case .unknown(let type): return type
        }
    }
}
