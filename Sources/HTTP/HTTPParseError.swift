/// A request (or response) the parser refuses: the status to answer with and why, in words a
/// client's developer can act on. After one, the connection is closed: its framing is unknown.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let reason: String

    public init(_ status: Int, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status) \(reason)" }

    static func bad(_ reason: String) -> HTTPParseError { HTTPParseError(400, reason) }
}

/// The parser's limits (PROTOCOL.md section 24.4).
public enum HTTPLimits {
    /// Request line and header lines together, CRLFs included.
    public static let maxHeadBytes = 16 * 1024
    public static let maxHeaderLines = 64
    /// A chunk-size line with its extensions.
    public static let maxChunkLineBytes = 256
    /// Trailer lines after the last chunk, together.
    public static let maxTrailerBytes = 8 * 1024
    /// Hex digits in a chunk size (15 keeps it inside Int64).
    public static let maxChunkSizeDigits = 15
    /// Digits in a Content-Length.
    public static let maxLengthDigits = 18
    /// Body of an ordinary (buffered) route.
    public static let defaultMaxBodyBytes = 1 << 20
}
