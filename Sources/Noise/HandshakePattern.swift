/// A token of a message pattern (section 7.1).
public enum Token: Sendable, Equatable {
    case e, s, ee, es, se, ss
}

/// A handshake pattern as token arrays, in initiator/responder form (section 7).
public struct HandshakePattern: Sendable, Equatable {
    public let name: String
    /// Keys each side is known to have before the handshake (only `e` and `s` occur).
    public let initiatorPreMessage: [Token]
    public let responderPreMessage: [Token]
    /// Message patterns in order; even indices are sent by the initiator.
    public let messages: [[Token]]

    /// `XX`: the full handshake of Noise Pipes (section 10.4).
    public static let XX = HandshakePattern(
        name: "XX", initiatorPreMessage: [], responderPreMessage: [],
        messages: [[.e], [.e, .ee, .s, .es], [.s, .se]])

    /// `IK`: the zero-RTT handshake to a known responder static key (section 10.4).
    public static let IK = HandshakePattern(
        name: "IK", initiatorPreMessage: [], responderPreMessage: [.s],
        messages: [[.e, .es, .s, .ss], [.e, .ee, .se]])

    /// `XXfallback` (section 10.2), in the form the party that failed to read an IK message
    /// runs it: that party becomes the initiator, the other party's ephemeral key (from its IK
    /// message) is the responder's pre-message, and the DH tokens of the Alice-initiated text
    /// `<- e, ee, s, es` / `-> s, se` are swapped (`es` <-> `se`) because the initiator is Bob.
    public static let XXfallback = HandshakePattern(
        name: "XXfallback", initiatorPreMessage: [], responderPreMessage: [.e],
        messages: [[.e, .ee, .s, .se], [.s, .es]])

    public static func named(_ name: String) -> HandshakePattern? {
        [XX, IK, XXfallback].first { $0.name == name }
    }
}

/// A full protocol name such as `Noise_XX_25519_ChaChaPoly_SHA256` (section 8), limited to what
/// this implementation supports: DH 25519, cipher ChaChaPoly, hash SHA256 or BLAKE2b.
public struct ProtocolName: Sendable, Equatable, CustomStringConvertible {
    public enum HashChoice: String, Sendable { case SHA256, BLAKE2b }

    public let pattern: HandshakePattern
    public let hash: HashChoice

    public init(pattern: HandshakePattern, hash: HashChoice = .SHA256) {
        self.pattern = pattern
        self.hash = hash
    }

    /// Parses a protocol name; nil when any part is unsupported.
    public init?(_ text: String) {
        let parts = text.split(separator: "_")
        guard parts.count == 5, parts[0] == "Noise", parts[2] == "25519", parts[3] == "ChaChaPoly",
            let pattern = HandshakePattern.named(String(parts[1])), let hash = HashChoice(rawValue: String(parts[4]))
        else { return nil }
        self.init(pattern: pattern, hash: hash)
    }

    public var description: String { "Noise_\(pattern.name)_25519_ChaChaPoly_\(hash.rawValue)" }
}
