/// Error codes carried by Error stanzas, handshake error frames and Goodbye stanzas
/// (PROTOCOL.md "Error codes"). Numbers are part of the protocol: never renumber.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible, Error {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    // Connection and framing (fatal: the sender closes the connection after sending).
    public static let badPreface = ErrorCode(rawValue: 1)
    public static let unsupportedVersion = ErrorCode(rawValue: 2)
    public static let handshakeFailed = ErrorCode(rawValue: 3)
    public static let handshakeTimeout = ErrorCode(rawValue: 4)
    public static let frameTooLarge = ErrorCode(rawValue: 5)
    public static let decryptFailed = ErrorCode(rawValue: 6)
    public static let malformedStanza = ErrorCode(rawValue: 7)
    // Not fatal: the connection stays open.
    public static let unsupportedStanza = ErrorCode(rawValue: 8)
    public static let notAllowedNow = ErrorCode(rawValue: 9)
    // Registration and login (fatal).
    public static let registrationClosed = ErrorCode(rawValue: 20)
    public static let inviteInvalid = ErrorCode(rawValue: 21)
    public static let accountNameTaken = ErrorCode(rawValue: 22)
    public static let accountNameInvalid = ErrorCode(rawValue: 23)
    public static let unknownDevice = ErrorCode(rawValue: 24)
    public static let deviceRevoked = ErrorCode(rawValue: 25)
    public static let tokenExpired = ErrorCode(rawValue: 26)
    public static let tokenInvalid = ErrorCode(rawValue: 27)
    public static let tokenWrongDevice = ErrorCode(rawValue: 28)
    public static let tokenReplayed = ErrorCode(rawValue: 29)
    public static let helloInvalid = ErrorCode(rawValue: 30)
    public static let deviceAlreadyRegistered = ErrorCode(rawValue: 31)
    // Node state.
    public static let draining = ErrorCode(rawValue: 40)
    public static let idleTimeout = ErrorCode(rawValue: 41)
    public static let overLimit = ErrorCode(rawValue: 42)
    public static let internalError = ErrorCode(rawValue: 50)

    static let names: [UInt64: String] = [
        1: "bad_preface", 2: "unsupported_version", 3: "handshake_failed", 4: "handshake_timeout",
        5: "frame_too_large", 6: "decrypt_failed", 7: "malformed_stanza", 8: "unsupported_stanza",
        9: "not_allowed_now", 20: "registration_closed", 21: "invite_invalid", 22: "account_name_taken",
        23: "account_name_invalid", 24: "unknown_device", 25: "device_revoked", 26: "token_expired",
        27: "token_invalid", 28: "token_wrong_device", 29: "token_replayed", 30: "hello_invalid",
        31: "device_already_registered", 40: "draining", 41: "idle_timeout", 42: "over_limit", 43: "session_replaced",
        50: "internal_error", 60: "device_list_mismatch", 61: "unknown_account", 62: "unknown_device_id",
        63: "recipient_queue_full", 64: "message_too_large", 66: "too_many_devices", 67: "not_permitted",
    ]

    /// Every code this version names, in numeric order.
    public static var allNamed: [ErrorCode] { names.keys.sorted().map { ErrorCode(rawValue: $0) } }

    /// The code's name in PROTOCOL.md, or `error_N` for a code this version does not know.
    public var name: String { ErrorCode.names[rawValue] ?? "error_\(rawValue)" }
    public var description: String { name }

    /// Whether the sender closes the connection after this error. Codes answered in Result and
    /// SendResult (60 and up) never are.
    public var isFatal: Bool { !(rawValue == 8 || rawValue == 9 || rawValue >= 60) }
}
