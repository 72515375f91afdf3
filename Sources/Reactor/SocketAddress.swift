import CSwitchboardShims
import Glibc

/// An IPv4 or IPv6 address and a TCP port, as given on the command line (`HOST:PORT`,
/// `[V6]:PORT`; `localhost` means 127.0.0.1).
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }

    public let family: Family
    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public let bytes: [UInt8]
    public var port: UInt16
    public let host: String

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case missingPort(String)
        case badPort(String)
        case badHost(String)

        public var description: String {
            switch self {
            case .missingPort(let s): return "address '\(s)' has no port (expected HOST:PORT)"
            case .badPort(let s): return "address '\(s)' has a bad port (expected 0-65535)"
            case .badHost(let s): return "address '\(s)' has a host that is not an IPv4 or IPv6 address"
            }
        }
    }

    /// Parses `HOST:PORT`.
    /// - Throws: `ParseError` naming what is wrong.
    public init(parsing text: String) throws(ParseError) {
        var hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .badHost(text) }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .missingPort(text) }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw .missingPort(text) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !portPart.isEmpty, portPart.allSatisfy(\.isASCII), let port = UInt16(portPart) else {
            throw .badPort(text)
        }
        if hostPart == "localhost" { hostPart = "127.0.0.1" }
        if hostPart.isEmpty { hostPart = "0.0.0.0" }
        var v4 = [UInt8](repeating: 0, count: 4)
        var v6 = [UInt8](repeating: 0, count: 16)
        let host = String(hostPart)
        if sb_parse_ipv4(host, &v4) == 0 {
            self.init(family: .v4, bytes: v4, port: port, host: host)
        } else if sb_parse_ipv6(host, &v6) == 0 {
            self.init(family: .v6, bytes: v6, port: port, host: host)
        } else {
            throw .badHost(text)
        }
    }

    init(family: Family, bytes: [UInt8], port: UInt16, host: String) {
        self.family = family
        self.bytes = bytes
        self.port = port
        self.host = host
    }

    var posixFamily: Int32 { family == .v4 ? AF_INET : AF_INET6 }

    public var description: String { family == .v4 ? "\(host):\(port)" : "[\(host)]:\(port)" }
}
