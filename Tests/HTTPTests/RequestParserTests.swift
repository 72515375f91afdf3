import HTTP
import Testing

/// Feeds `text` to a parser in pieces of the given sizes (cycled) and collects what it says.
private struct Parsed: Equatable {
    var heads: [String] = []  // "METHOD target minor framing"
    var bodies: [[UInt8]] = []
    var error: HTTPParseError?
}

private func parse(_ text: String, pieces: [Int] = [Int.max], maxBody: Int? = nil) -> Parsed {
    var parser = HTTPRequestParser()
    var parsed = Parsed()
    var bytes = Array(text.utf8)
    var current: [UInt8] = []
    bytes.withUnsafeMutableBytes { all in
        var offset = 0
        var piece = 0
        while offset < all.count {
            let size = min(pieces[piece % pieces.count], all.count - offset)
            piece += 1
            var input = UnsafeMutableRawBufferPointer(rebasing: all[offset..<offset + size])
            offset += size
            do {
                while let event = try parser.next(&input) {
                    switch event {
                    case .head(let head, let framing):
                        parsed.heads.append("\(head.method) \(head.target) \(head.minorVersion) \(framing)")
                        if let maxBody { parser.maxBodyBytes = maxBody }
                    case .body(let slice):
                        current += slice
                    case .end:
                        parsed.bodies.append(current)
                        current = []
                    }
                }
            } catch {
                parsed.error = error as? HTTPParseError
                return
            }
        }
    }
    return parsed
}

@Suite struct RequestParserTests {
    static let pipelined = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
        + "POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        + "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "3;name=value\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n"
        + "\r\nGET / HTTP/1.0\r\n\r\n"

    @Test func pipelinedRequestsInEveryFraming() {
        let parsed = parse(RequestParserTests.pipelined)
        #expect(parsed.error == nil)
        #expect(parsed.heads == ["GET /healthz 1 none", "POST /echo?x=1 1 length(5)", "POST /echo 1 chunked", "GET / 0 none"])
        #expect(parsed.bodies == [[], Array("hello".utf8), Array("abc0123456789abcdef".utf8), []])
    }

    @Test func oneByteAtATimeAndRandomSplitsAgree() {
        let whole = parse(RequestParserTests.pipelined)
        #expect(parse(RequestParserTests.pipelined, pieces: [1]) == whole)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let pieces = (0..<7).map { _ in Int.random(in: 1...40, using: &generator) }
            #expect(parse(RequestParserTests.pipelined, pieces: pieces) == whole, "pieces \(pieces)")
        }
    }

    /// Every shape PROTOCOL.md section 24.4 refuses, with its status.
    static let refused: [(String, String, Int)] = [
        ("both lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("length twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
        ("length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
        ("length sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
        ("length huge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", 400),
        ("gzip coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        ("coding on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("folding", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n", 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
        ("bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
        ("control in value", "GET / HTTP/1.1\r\nHost: a\u{01}b\r\n\r\n", 400),
        ("no host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
        ("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("bad name", "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400),
        ("no colon", "GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", 400),
        ("chunk size not hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("chunk size empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400),
        ("chunk size 16 digits", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 400),
        ("chunk size with space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n", 400),
        ("chunk overruns", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 400),
        ("chunk without CRLF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n", 400),
        ("long extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;" + String(repeating: "x", count: 300) + "\r\n", 400),
        ("version 2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
        ("not http", "GET / FTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("absolute target", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("method not token", "G\"T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "y", count: 17_000) + "\r\n\r\n", 431),
        ("too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: 1\r\n", count: 64) + "\r\n", 431),
        ("blank lines only", "\r\n\r\n\r\n\r\n\r\n\r\n", 400),
    ]

    @Test(arguments: RequestParserTests.refused.indices)
    func refusesAmbiguousOrMalformedRequests(_ index: Int) {
        let (name, text, status) = RequestParserTests.refused[index]
        for pieces in [[Int.max], [1], [3, 7]] {
            let parsed = parse(text, pieces: pieces)
            #expect(parsed.error?.status == status, "\(name) split \(pieces): \(String(describing: parsed.error))")
        }
    }

    @Test func chunkedBodyOverTheRouteLimitIs413() {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        #expect(parse(text, maxBody: 10).error?.status == 413)
        #expect(parse(text, maxBody: 16).error == nil)
    }

    @Test func keepAliveFollowsTheVersionAndConnectionHeader() throws {
        func head(_ text: String) throws -> HTTPRequestHead {
            var parser = HTTPRequestParser()
            var bytes = Array(text.utf8)
            return try bytes.withUnsafeMutableBytes { raw in
                var input = raw
                guard case .head(let head, _)? = try parser.next(&input) else { throw HTTPParseError(0, "no head") }
                return head
            }
        }
        #expect(try head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.0\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n").expectsContinue)
    }

    @Test func chunkSizeLines() {
        var buffer = [UInt8](repeating: 0, count: 24)
        for (size, text) in [(1, "1\r\n"), (15, "f\r\n"), (16, "10\r\n"), (65_537, "10001\r\n"), (0x7fff_ffff, "7fffffff\r\n")] {
            let n = buffer.withUnsafeMutableBytes { ChunkedEncoder.sizeLine(size, into: $0) }
            #expect(String(decoding: buffer[0..<n], as: UTF8.self) == text)
        }
    }
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

@Suite struct RequestParserMutationTests {
    /// Valid requests with bytes flipped, inserted and deleted, fed in random splits: the parser
    /// either refuses with a status or produces events, never traps or loops, and a refusal is
    /// final (the connection closes).
    @Test func mutatedRequestsNeverTrapOrHang() {
        var random = SeededGenerator(state: 0x5EED_1234_ABCD_0001)
        let base = Array(RequestParserTests.pipelined.utf8)
        let alphabet: [UInt8] = Array("\r\n :;0123456789abcdefxzGETPOSTHTTP/1.\t\u{7f}".utf8) + [0, 0x80, 0xff]
        var refused = 0, accepted = 0
        for _ in 0..<3_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                default: if bytes.count > 1 { bytes.remove(at: position) }
                }
            }
            var parser = HTTPRequestParser()
            var failed = false
            var events = 0
            bytes.withUnsafeMutableBytes { all in
                var offset = 0
                while offset < all.count && !failed {
                    let size = min(Int.random(in: 1...64, using: &random), all.count - offset)
                    var input = UnsafeMutableRawBufferPointer(rebasing: all[offset..<offset + size])
                    offset += size
                    do {
                        while let _ = try parser.next(&input) {
                            events += 1
                            #expect(events < 10_000, "the parser must not loop")
                            if events >= 10_000 { return }
                        }
                        #expect(input.isEmpty, "the parser consumes what it is given")
                    } catch {
                        #expect([400, 413, 431, 501, 505].contains((error as? HTTPParseError)?.status ?? 0), "\(error)")
                        failed = true
                    }
                }
            }
            if failed { refused += 1 } else { accepted += 1 }
        }
        #expect(refused > 0 && accepted > 0, "the mutations exercise both outcomes: \(refused) refused, \(accepted) parsed")
    }
}
