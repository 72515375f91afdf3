/// Incremental decoder of a chunked body (RFC 9112 §7.1): hands out the chunk data where it
/// lies in the input, ignores chunk extensions, reads and drops trailers. Every length is
/// bounded (`HTTPLimits`); anything off-grammar is a 400, since a lenient reading here is how
/// request smuggling starts.
public struct ChunkedDecoder: Sendable {
    public enum Event {
        /// Chunk data, in place in the caller's input (valid as long as the input is).
        case data(UnsafeMutableRawBufferPointer)
        /// The last chunk and its trailers were read.
        case end
    }

    private enum State: Equatable {
        case size, extensions, sizeLF
        case data(Int)
        case dataCR, dataLF
        case trailer, trailerLF
        case done
    }

    private var state = State.size
    private var size = 0
    private var digits = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    private var trailerLineEmpty = true

    public init() {}

    /// Consumes input up to the next event; nil when the input ran out first.
    /// - Throws: `HTTPParseError` (400) for a malformed chunk.
    public mutating func next(_ input: inout UnsafeMutableRawBufferPointer) throws(HTTPParseError) -> Event? {
        while true {
            if case .done = state { return .end }
            if case .data(let remaining) = state {
                guard !input.isEmpty else { return nil }
                let taken = min(remaining, input.count)
                let slice = UnsafeMutableRawBufferPointer(rebasing: input[0..<taken])
                input = UnsafeMutableRawBufferPointer(rebasing: input[taken...])
                state = remaining == taken ? .dataCR : .data(remaining - taken)
                return .data(slice)
            }
            guard let byte = input.first else { return nil }
            input = UnsafeMutableRawBufferPointer(rebasing: input[1...])
            try step(byte)
        }
    }

    private mutating func step(_ byte: UInt8) throws(HTTPParseError) {
        switch state {
        case .size:
            try countLineByte()
            if let value = hexValue(byte) {
                digits += 1
                guard digits <= HTTPLimits.maxChunkSizeDigits else { throw .bad("chunk size has more than \(HTTPLimits.maxChunkSizeDigits) hex digits") }
                size = size << 4 | value
            } else if byte == UInt8(ascii: ";") || byte == UInt8(ascii: "\r") {
                guard digits > 0 else { throw .bad("chunk size missing") }
                state = byte == UInt8(ascii: ";") ? .extensions : .sizeLF
            } else {
                throw .bad("chunk size is not hexadecimal")
            }
        case .extensions:
            try countLineByte()
            if byte == UInt8(ascii: "\r") {
                state = .sizeLF
            } else if byte < 0x20 && byte != UInt8(ascii: "\t") || byte == 0x7f {
                throw .bad("control character in a chunk extension")
            }
        case .sizeLF:
            guard byte == UInt8(ascii: "\n") else { throw .bad("chunk-size line not ended by CRLF") }
            state = size == 0 ? .trailer : .data(size)
            trailerLineEmpty = true
            size = 0
            digits = 0
            lineBytes = 0
        case .dataCR:
            guard byte == UInt8(ascii: "\r") else { throw .bad("chunk data longer than its size, or not followed by CRLF") }
            state = .dataLF
        case .dataLF:
            guard byte == UInt8(ascii: "\n") else { throw .bad("chunk data not followed by CRLF") }
            state = .size
        case .trailer:
            if byte == UInt8(ascii: "\r") {
                state = .trailerLF
            } else {
                guard byte != UInt8(ascii: "\n") else { throw .bad("bare LF in trailers") }
                trailerLineEmpty = false
                trailerBytes += 1
                guard trailerBytes <= HTTPLimits.maxTrailerBytes else { throw .bad("trailers over \(HTTPLimits.maxTrailerBytes) bytes") }
            }
        case .trailerLF:
            guard byte == UInt8(ascii: "\n") else { throw .bad("bare CR in trailers") }
            if trailerLineEmpty {
                state = .done
            } else {
                trailerLineEmpty = true
                state = .trailer
            }
        case .data, .done:
            preconditionFailure("handled in next(_:)")
        }
    }

    private mutating func countLineByte() throws(HTTPParseError) {
        lineBytes += 1
        guard lineBytes <= HTTPLimits.maxChunkLineBytes else { throw .bad("chunk-size line over \(HTTPLimits.maxChunkLineBytes) bytes") }
    }

    private func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

/// Writes chunk framing: the size line before a chunk's data and the CRLF after it.
public enum ChunkedEncoder {
    /// The last chunk with no trailers.
    public static let last: [UInt8] = Array("0\r\n\r\n".utf8)
    public static let crlf: [UInt8] = [13, 10]

    /// Writes "<hex size>\r\n" into `buffer` (at least 18 bytes) and returns its length.
    public static func sizeLine(_ size: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(size > 0 && buffer.count >= 18)
        var digits = 0
        var value = size
        while value > 0 {
            digits += 1
            value >>= 4
        }
        value = size
        for index in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = value & 0xf
            buffer[index] = nibble < 10 ? UInt8(ascii: "0") + UInt8(nibble) : UInt8(ascii: "a") + UInt8(nibble - 10)
            value >>= 4
        }
        buffer[digits] = 13
        buffer[digits + 1] = 10
        return digits + 2
    }
}
