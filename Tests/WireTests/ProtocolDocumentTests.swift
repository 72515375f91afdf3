import Foundation
import Testing

@testable import Wire

/// The hex examples in docs/PROTOCOL.md section 9 decode to the stanzas the text describes, and
/// encoding those stanzas gives the same bytes: the document and the codec cannot drift apart.
@Suite struct ProtocolDocumentTests {
    static let expected: [String: Stanza] = [
        "hello-register": .hello(Hello(mode: .register, accountName: "alice", deviceName: "phone", clientAgent: "example/1.0")),
        "hello-resume": .hello(Hello(mode: .resume, resumptionToken: [0xde, 0xad, 0xbe, 0xef])),
        "server-hello": .serverHello(ServerHello(nodeID: "node-1a2b3c4d", registration: 1)),
        "welcome": .welcome(Welcome(
            accountID: 1, deviceID: 1, accountName: "alice", resumptionToken: [0xde, 0xad, 0xbe, 0xef],
            tokenExpiresAt: 1_767_225_600, serverTimeMilliseconds: 1_764_400_000_000, newAccount: true, idleTimeoutSeconds: 300)),
        "error": .error(ErrorStanza(code: .unsupportedStanza, message: "stanza type 99 is not supported", reference: 99)),
        "ping": .ping(1),
        "pong": .pong(1),
        "goodbye": .goodbye(Goodbye(code: .draining, message: "node shutting down", retryAfterMilliseconds: 1000)),
    ]

    /// `<!-- example: NAME -->` followed by a fenced block of hex bytes.
    static func examples() throws -> [String: [UInt8]] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/PROTOCOL.md")
        let lines = try String(contentsOf: url, encoding: .utf8).components(separatedBy: "\n")
        var result: [String: [UInt8]] = [:]
        var index = 0
        while index < lines.count {
            let line = lines[index]
            if line.hasPrefix("<!-- example: "), let end = line.range(of: " -->") {
                let name = String(line[line.index(line.startIndex, offsetBy: 14)..<end.lowerBound])
                var bytes: [UInt8] = []
                index += 2  // skip the opening fence
                while index < lines.count, !lines[index].hasPrefix("```") {
                    for token in lines[index].split(separator: " ") { bytes.append(UInt8(token, radix: 16)!) }
                    index += 1
                }
                result[name] = bytes
            }
            index += 1
        }
        return result
    }

    @Test func everyExampleMatchesTheCodec() throws {
        let examples = try ProtocolDocumentTests.examples()
        #expect(Set(examples.keys) == Set(ProtocolDocumentTests.expected.keys))
        for (name, bytes) in examples {
            let stanza = try #require(ProtocolDocumentTests.expected[name])
            #expect(try StanzaCodec.decodeAll(bytes) == [stanza], "\(name) decodes")
            #expect(StanzaCodec.encode(stanza) == bytes, "\(name) encodes")
        }
    }

    @Test func everyErrorCodeIsDocumented() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/PROTOCOL.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        for (number, name) in ErrorCode.names {
            #expect(text.contains("| \(number) | \(name) |"), "code \(number) \(name)")
        }
    }
}
