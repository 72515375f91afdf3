/// Incremental HTTP/1.1 request parser (RFC 9112): reads a head up to its blank line, decides
/// the body's framing, then hands out body bytes in place until the request ends, and starts
/// over for the next (pipelined) request. Pull style: the caller asks for one event at a time,
/// so between events it may change `maxBodyBytes` for the route it chose.
public struct HTTPRequestParser: Sendable {
    public enum Event {
        case head(HTTPRequestHead, HTTPRequestHead.Framing)
        /// Body bytes, in place in the caller's input.
        case body(UnsafeMutableRawBufferPointer)
        /// The request (head and body) is complete.
        case end
    }

    private enum State: Equatable {
        case head
        case length(remaining: Int)
        case chunked
        case finishing
    }

    private var state = State.head
    private var headBytes: [UInt8] = []
    private var skippedBlank = 0
    private var pendingCR = false
    private var chunks = ChunkedDecoder()
    private var bodyBytes = 0
    /// Body bytes the current request may carry (checked for chunked bodies as they arrive;
    /// callers check a declared `Content-Length` when they see the head).
    public var maxBodyBytes = HTTPLimits.defaultMaxBodyBytes

    public init() {}

    /// True between requests, before any byte of the next one arrived.
    public var isIdle: Bool { state == .head && headBytes.isEmpty && skippedBlank == 0 && !pendingCR }

    /// Consumes input up to the next event; nil when the input ran out first.
    /// - Throws: `HTTPParseError` with the status to answer; the connection must then close.
    public mutating func next(_ input: inout UnsafeMutableRawBufferPointer) throws(HTTPParseError) -> Event? {
        switch state {
        case .head:
            while let byte = input.first {
                input = UnsafeMutableRawBufferPointer(rebasing: input[1...])
                if try scanHead(byte) {
                    let (head, framing) = try HTTPHeadParser.parse(headBytes)
                    headBytes = []
                    skippedBlank = 0
                    bodyBytes = 0
                    maxBodyBytes = HTTPLimits.defaultMaxBodyBytes
                    switch framing {
                    case .none: state = .finishing
                    case .length(let n): state = n == 0 ? .finishing : .length(remaining: n)
                    case .chunked:
                        state = .chunked
                        chunks = ChunkedDecoder()
                    }
                    return .head(head, framing)
                }
            }
            return nil
        case .length(let remaining):
            guard !input.isEmpty else { return nil }
            let taken = min(remaining, input.count)
            let slice = UnsafeMutableRawBufferPointer(rebasing: input[0..<taken])
            input = UnsafeMutableRawBufferPointer(rebasing: input[taken...])
            state = remaining == taken ? .finishing : .length(remaining: remaining - taken)
            return .body(slice)
        case .chunked:
            switch try chunks.next(&input) {
            case nil:
                return nil
            case .data(let slice):
                bodyBytes += slice.count
                guard bodyBytes <= maxBodyBytes else { throw HTTPParseError(413, "body over \(maxBodyBytes) bytes") }
                return .body(slice)
            case .end:
                state = .finishing
                return try next(&input)
            }
        case .finishing:
            state = .head
            return .end
        }
    }

    /// Takes one head byte; true when the blank line ending the head arrived. Enforces CRLF
    /// line endings and the head's size; skips blank lines before a request (RFC 9112 §2.2).
    private mutating func scanHead(_ byte: UInt8) throws(HTTPParseError) -> Bool {
        let cr: UInt8 = 13, lf: UInt8 = 10
        if pendingCR {
            guard byte == lf else { throw .bad("bare CR in the request head") }
            pendingCR = false
            if headBytes.isEmpty {
                skippedBlank += 1
                guard skippedBlank <= 4 else { throw .bad("blank lines instead of a request") }
                return false
            }
            headBytes.append(lf)
            let n = headBytes.count
            return n >= 4 && headBytes[n - 4] == cr && headBytes[n - 3] == lf
        }
        if byte == cr {
            pendingCR = true
            if !headBytes.isEmpty { headBytes.append(cr) }
            return false
        }
        guard byte != lf else { throw .bad("bare LF in the request head (lines end with CRLF)") }
        headBytes.append(byte)
        guard headBytes.count <= HTTPLimits.maxHeadBytes else {
            throw HTTPParseError(431, "request head over \(HTTPLimits.maxHeadBytes) bytes")
        }
        return false
    }
}
