/// Stanza types of PROTOCOL.md sections 18-20. Never renumber.
extension StanzaType {
    public static let listDevices: UInt64 = 8
    public static let deviceList: UInt64 = 9
    public static let addDevice: UInt64 = 10
    public static let removeDevice: UInt64 = 11
    public static let result: UInt64 = 12
    public static let publishKeys: UInt64 = 13
    public static let getKeys: UInt64 = 14
    public static let keyBundles: UInt64 = 15
    public static let prekeysLow: UInt64 = 16
    public static let send: UInt64 = 17
    public static let sendResult: UInt64 = 18
    public static let deliver: UInt64 = 19
    public static let ack: UInt64 = 20
    public static let receipt: UInt64 = 21
    public static let registerPush: UInt64 = 22
    public static let presenceAllow: UInt64 = 23
    public static let presenceSubscribe: UInt64 = 24
    public static let presence: UInt64 = 25
    public static let typing: UInt64 = 26
    public static let createGroup: UInt64 = 27
    public static let updateGroup: UInt64 = 28
    public static let getGroup: UInt64 = 29
    public static let groupInfo: UInt64 = 30
    public static let mute: UInt64 = 31
}

/// A mute request (PROTOCOL.md 23): a one-to-one chat (`chatAccount`) or a group.
public struct MuteRequest: Equatable, Sendable {
    public var requestID: UInt64
    public var chatAccount: UInt64
    public var groupID: UInt64
    /// Unix ms; 0 with `automatic` false: unmute.
    public var untilMilliseconds: UInt64
    public var automatic: Bool
    /// Silent pushes instead of none.
    public var silent: Bool
    public init(requestID: UInt64, chatAccount: UInt64 = 0, groupID: UInt64 = 0, untilMilliseconds: UInt64 = 0,
                automatic: Bool = false, silent: Bool = false) {
        self.requestID = requestID
        self.chatAccount = chatAccount
        self.groupID = groupID
        self.untilMilliseconds = untilMilliseconds
        self.automatic = automatic
        self.silent = silent
    }
}

/// A change to a group (PROTOCOL.md 22.2).
public enum GroupOperation: UInt64, Sendable {
    case add = 1, remove = 2, promote = 3, demote = 4, rename = 5, leave = 6
}

public struct GroupMember: Equatable, Sendable {
    public var accountID: UInt64
    public var admin: Bool
    public init(accountID: UInt64, admin: Bool) {
        self.accountID = accountID
        self.admin = admin
    }
}

public struct DeviceInfo: Equatable, Sendable {
    public var deviceID: UInt64
    public var name: String
    public var createdAt: UInt64
    public init(deviceID: UInt64, name: String, createdAt: UInt64) {
        self.deviceID = deviceID
        self.name = name
        self.createdAt = createdAt
    }
}

public struct SignedPrekey: Equatable, Sendable {
    public var keyID: UInt64
    public var publicKey: [UInt8]
    public var signature: [UInt8]
    public init(keyID: UInt64, publicKey: [UInt8], signature: [UInt8]) {
        self.keyID = keyID
        self.publicKey = publicKey
        self.signature = signature
    }
}

public struct OneTimePrekey: Equatable, Sendable {
    public var keyID: UInt64
    public var publicKey: [UInt8]
    public init(keyID: UInt64, publicKey: [UInt8]) {
        self.keyID = keyID
        self.publicKey = publicKey
    }
}

public struct KeyBundle: Equatable, Sendable {
    public var deviceID: UInt64
    public var identityKey: [UInt8]
    public var signedPrekey: SignedPrekey?
    public var oneTimePrekey: OneTimePrekey?
    public init(deviceID: UInt64, identityKey: [UInt8], signedPrekey: SignedPrekey?, oneTimePrekey: OneTimePrekey?) {
        self.deviceID = deviceID
        self.identityKey = identityKey
        self.signedPrekey = signedPrekey
        self.oneTimePrekey = oneTimePrekey
    }
}

public struct MessageCopy: Equatable, Sendable {
    public var deviceID: UInt64
    public var ciphertext: [UInt8]
    public init(deviceID: UInt64, ciphertext: [UInt8]) {
        self.deviceID = deviceID
        self.ciphertext = ciphertext
    }
}

public struct DeviceAddress: Hashable, Sendable, Comparable {
    public var accountID: UInt64
    public var deviceID: UInt64
    public init(accountID: UInt64, deviceID: UInt64) {
        self.accountID = accountID
        self.deviceID = deviceID
    }
    public static func < (a: DeviceAddress, b: DeviceAddress) -> Bool { (a.accountID, a.deviceID) < (b.accountID, b.deviceID) }
}

public struct SendMessage: Equatable, Sendable {
    public var messageID: MessageID
    public var toAccount: UInt64
    public var copies: MessageCopies
    /// Set for a group message; `toAccount` is then 0.
    public var groupID: UInt64
    public init(messageID: MessageID, toAccount: UInt64, copies: MessageCopies, groupID: UInt64 = 0) {
        self.groupID = groupID
        self.messageID = messageID
        self.toAccount = toAccount
        self.copies = copies
    }
    public init(messageID: MessageID, toAccount: UInt64, copies: [MessageCopy], groupID: UInt64 = 0) {
        self.init(messageID: messageID, toAccount: toAccount, copies: MessageCopies(copies), groupID: groupID)
    }
}

public struct SendResult: Equatable, Sendable {
    public var messageID: MessageID
    public var code: ErrorCode  // rawValue 0: accepted
    public var message: String
    public var devices: [DeviceAddress]
    public var duplicate: Bool
    public init(messageID: MessageID, code: ErrorCode, message: String = "", devices: [DeviceAddress] = [], duplicate: Bool = false) {
        self.messageID = messageID
        self.code = code
        self.message = message
        self.devices = devices
        self.duplicate = duplicate
    }
}

public struct Delivery: Equatable, Sendable {
    /// What a delivery carries: a message copy, or a receipt for a message this device's
    /// account sent (PROTOCOL.md 20.3).
    public enum Kind: UInt64, Sendable {
        /// `group_changed`: the group's membership, admins or name changed; fetch GroupInfo.
        case message = 1, delivered = 2, read = 3, groupChanged = 4
    }

    public var seq: UInt64
    public var messageID: MessageID
    public var fromAccount: UInt64
    public var fromDevice: UInt64
    public var sentAtMilliseconds: UInt64
    public var ciphertext: [UInt8]
    public var kind: Kind
    /// The group the message was sent to (0: a one-to-one message).
    public var groupID: UInt64
    /// The recipient had muted this chat when the message arrived.
    public var muted: Bool = false
    /// Aggregated group delivery receipt: devices of other accounts that have the message, of
    /// how many (0 and 0 otherwise).
    public var deliveredCount: UInt64 = 0
    public var deliveredTotal: UInt64 = 0
    public init(seq: UInt64, messageID: MessageID, fromAccount: UInt64, fromDevice: UInt64, sentAtMilliseconds: UInt64, ciphertext: [UInt8],
                kind: Kind = .message, groupID: UInt64 = 0, muted: Bool = false, deliveredCount: UInt64 = 0, deliveredTotal: UInt64 = 0) {
        self.kind = kind
        self.muted = muted
        self.deliveredCount = deliveredCount
        self.deliveredTotal = deliveredTotal
        self.groupID = groupID
        self.seq = seq
        self.messageID = messageID
        self.fromAccount = fromAccount
        self.fromDevice = fromDevice
        self.sentAtMilliseconds = sentAtMilliseconds
        self.ciphertext = ciphertext
    }
}

public struct RequestResult: Equatable, Sendable {
    public var requestID: UInt64
    public var code: ErrorCode
    public var message: String
    public var value: UInt64?
    public init(requestID: UInt64, code: ErrorCode, message: String = "", value: UInt64? = nil) {
        self.requestID = requestID
        self.code = code
        self.message = message
        self.value = value
    }
}

extension ErrorCode {
    /// Success in Result and SendResult.
    public static let ok = ErrorCode(rawValue: 0)
    public static let deviceListMismatch = ErrorCode(rawValue: 60)
    public static let unknownAccount = ErrorCode(rawValue: 61)
    public static let unknownDeviceID = ErrorCode(rawValue: 62)
    public static let recipientQueueFull = ErrorCode(rawValue: 63)
    public static let messageTooLarge = ErrorCode(rawValue: 64)
    public static let tooManyDevices = ErrorCode(rawValue: 66)
    public static let notPermitted = ErrorCode(rawValue: 67)
    /// Goodbye: the same device connected again; this older connection ends.
    public static let sessionReplaced = ErrorCode(rawValue: 43)
}

extension WireLimits {
    public static let messageIDLength = 16
    public static let maxKeyBytes = 64
    public static let maxSignatureBytes = 128
    public static let maxPrekeysPerStanza = 100
}

extension UInt64 {
    /// For comparing with SQLite integers.
    public var asInt64: Int64 { Int64(bitPattern: self) }
}

extension WireLimits {
    public static let maxReceiptIDs = 100
    public static let maxGroupMembersPerStanza = 1024
}
