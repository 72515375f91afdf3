/// A parsed request line and header block (RFC 9112 §3, §5).
public struct HTTPRequestHead: Sendable {
    public var method: String
    /// The request target as sent (origin form: path and optional query).
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Header fields in order, names as sent.
    public var headers: [(name: String, value: String)]

    public var path: Substring { target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0] }

    /// The first value of a header field (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }

    /// Every value of a header field, each comma-separated list element on its own.
    public func values(_ name: String) -> [Substring] {
        headers.filter { $0.name.lowercased() == name }
            .flatMap { $0.value.split(separator: ",") }
            .map { $0.trimmingSpaces() }
    }

    /// How the body is delimited (RFC 9112 §6.3).
    public enum Framing: Sendable, Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// HTTP/1.1 is persistent unless the client says close; HTTP/1.0 connections close after
    /// one response (the node does not offer 1.0 keep-alive).
    public var keepAlive: Bool {
        minorVersion == 1 && !values("connection").contains { $0.lowercased() == "close" }
    }

    public var expectsContinue: Bool {
        header("expect")?.lowercased() == "100-continue"
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s.removeFirst() }
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return s
    }
}
