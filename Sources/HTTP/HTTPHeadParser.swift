/// Parses a complete request head (request line, header lines, blank line; CRLF endings already
/// checked) and decides the body's framing, refusing every ambiguous shape (RFC 9112 §3, §5,
/// §6.3; PROTOCOL.md section 24.4).
enum HTTPHeadParser {
    static func parse(_ bytes: [UInt8]) throws(HTTPParseError) -> (HTTPRequestHead, HTTPRequestHead.Framing) {
        var lines = splitLines(bytes)
        guard !lines.isEmpty else { throw .bad("empty request") }
        let requestLine = lines.removeFirst()
        var head = try parseRequestLine(requestLine)
        guard lines.count <= HTTPLimits.maxHeaderLines else {
            throw HTTPParseError(431, "more than \(HTTPLimits.maxHeaderLines) header lines")
        }
        for line in lines {
            head.headers.append(try parseHeaderLine(line))
        }
        return (head, try framing(of: head))
    }

    /// The lines of the head without their CRLFs, the final blank line dropped.
    private static func splitLines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 {
                lines.append(bytes[start..<index])
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPRequestHead {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .bad("request line is not 'METHOD target HTTP/1.1'") }
        let method = parts[0], target = parts[1], version = parts[2]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else { throw .bad("method is not a token") }
        guard let first = target.first, first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw .bad("request target must be a path starting with '/'")
        }
        let versionText = Array(version)
        guard versionText.count == 8, versionText.starts(with: Array("HTTP/".utf8)), versionText[6] == UInt8(ascii: "."),
              isDigit(versionText[5]), isDigit(versionText[7])
        else { throw .bad("version is not HTTP/x.y") }
        guard versionText[5] == UInt8(ascii: "1"), versionText[7] <= UInt8(ascii: "1") else {
            throw HTTPParseError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        }
        return HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            minorVersion: Int(versionText[7] - UInt8(ascii: "0")), headers: [])
    }

    private static func parseHeaderLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (name: String, value: String) {
        guard let first = line.first else { throw .bad("empty header line") }
        guard first != 0x20 && first != 0x09 else { throw .bad("obsolete line folding is not accepted") }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .bad("header line without a colon") }
        let name = line[line.startIndex..<colon]
        if let last = name.last, last == 0x20 || last == 0x09 { throw .bad("whitespace before a header's colon") }
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .bad("header name is not a token") }
        var value = line[(colon + 1)...]
        while let b = value.first, b == 0x20 || b == 0x09 { value.removeFirst() }
        while let b = value.last, b == 0x20 || b == 0x09 { value.removeLast() }
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7f) }) else {
            throw .bad("control character in header '\(String(decoding: name, as: UTF8.self))'")
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private static func framing(of head: HTTPRequestHead) throws(HTTPParseError) -> HTTPRequestHead.Framing {
        var lengths: [String] = []
        var encodings: [String] = []
        var hosts = 0
        for (name, value) in head.headers {
            switch name.lowercased() {
            case "content-length": lengths.append(value)
            case "transfer-encoding": encodings.append(value)
            case "host": hosts += 1
            default: break
            }
        }
        if head.minorVersion == 1 {
            guard hosts == 1 else { throw .bad(hosts == 0 ? "HTTP/1.1 request without Host" : "more than one Host header") }
        } else {
            guard hosts <= 1 else { throw .bad("more than one Host header") }
        }
        if !encodings.isEmpty {
            guard lengths.isEmpty else { throw .bad("both Content-Length and Transfer-Encoding") }
            guard head.minorVersion == 1 else { throw .bad("Transfer-Encoding in an HTTP/1.0 request") }
            let codings = encodings.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingSpaces().lowercased() }
            guard codings == ["chunked"] else {
                throw HTTPParseError(501, "Transfer-Encoding '\(encodings.joined(separator: ", "))' is not supported (only chunked)")
            }
            return .chunked
        }
        guard !lengths.isEmpty else { return .none }
        guard lengths.count == 1 else { throw .bad("Content-Length given more than once") }
        let digits = lengths[0].utf8
        guard !digits.isEmpty, digits.count <= HTTPLimits.maxLengthDigits, digits.allSatisfy(isDigit), let length = Int(lengths[0]) else {
            throw .bad("Content-Length is not a number")
        }
        return .length(length)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x30...0x39: return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}
