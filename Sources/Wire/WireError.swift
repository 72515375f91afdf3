/// A wire-format violation found while decoding. `code` is what the peer is told.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Bytes that do not follow the encoding rules.
    case malformed(String)
    /// A size over its limit.
    case tooLarge(String)

    public var code: ErrorCode {
        switch self {
        case .malformed: return .malformedStanza
        case .tooLarge: return .frameTooLarge
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why): return "malformed: \(why)"
        case .tooLarge(let why): return "too large: \(why)"
        }
    }
}
