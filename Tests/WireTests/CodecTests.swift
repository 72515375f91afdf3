import Testing

@testable import Wire

@Suite struct VarintTests {
    @Test(arguments: [UInt64(0), 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), UInt64.max])
    func roundTripsAndIsMinimal(value: UInt64) throws {
        var bytes: [UInt8] = []
        Varint.append(value, to: &bytes)
        #expect(bytes.count == Varint.length(value))
        var offset = 0
        let decoded = try bytes.withUnsafeBytes { raw in try Varint.read(raw, at: &offset) }
        #expect(decoded == value)
        #expect(offset == bytes.count)
    }

    @Test func knownEncodings() {
        var bytes: [UInt8] = []
        Varint.append(300, to: &bytes)
        #expect(bytes == [0xAC, 0x02])
        bytes = []
        Varint.append(UInt64.max, to: &bytes)
        #expect(bytes == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    @Test func rejectsOverlongAndOverflowingAndReportsTruncation() throws {
        var offset = 0
        let eleven = [UInt8](repeating: 0x80, count: 10) + [0x01]
        #expect(throws: WireError.self) { try eleven.withUnsafeBytes { raw in try Varint.read(raw, at: &offset) } }
        let overflow: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]
        offset = 0
        #expect(throws: WireError.self) { try overflow.withUnsafeBytes { raw in try Varint.read(raw, at: &offset) } }
        offset = 0
        let truncated: [UInt8] = [0x80, 0x80]
        #expect(try truncated.withUnsafeBytes { raw in try Varint.read(raw, at: &offset) } == nil)
        #expect(offset == 0)
    }
}

@Suite struct StanzaCodecTests {
    static let samples: [Stanza] = [
        .hello(Hello(mode: .register, accountName: "alice", deviceName: "phone", inviteCode: "k3y", clientAgent: "t/1")),
        .hello(Hello(mode: .resume, resumptionToken: [UInt8](repeating: 7, count: 125))),
        .serverHello(ServerHello(nodeID: "node-1a2b3c4d", registration: 1)),
        .welcome(Welcome(accountID: 1, deviceID: 2, accountName: "alice", resumptionToken: [1, 2, 3], tokenExpiresAt: 1_800_000_000,
                         serverTimeMilliseconds: 1_764_000_000_000, newAccount: true, idleTimeoutSeconds: 300)),
        .error(ErrorStanza(code: .unsupportedStanza, message: "stanza type 99 is not supported", reference: 99)),
        .error(ErrorStanza(code: .decryptFailed, message: "")),
        .ping(0), .ping(UInt64.max), .pong(42),
        .goodbye(Goodbye(code: .draining, message: "node shutting down", retryAfterMilliseconds: 1000)),
        .listDevices(requestID: 1, accountID: 0),
        .listDevices(requestID: 2, accountID: 9),
        .deviceList(requestID: 2, accountID: 9, devices: [DeviceInfo(deviceID: 1, name: "phone", createdAt: 5),
                                                            DeviceInfo(deviceID: 3, name: "desk", createdAt: 6)]),
        .addDevice(requestID: 3, staticKey: [UInt8](repeating: 4, count: 32), name: "laptop"),
        .removeDevice(requestID: 4, deviceID: 3),
        .result(RequestResult(requestID: 4, code: .ok, value: 12)),
        .result(RequestResult(requestID: 5, code: .notPermitted, message: "no")),
        .publishKeys(requestID: 6, identityKey: [1, 2], signedPrekey: SignedPrekey(keyID: 7, publicKey: [3], signature: [4, 5]),
                     oneTimePrekeys: [OneTimePrekey(keyID: 1, publicKey: [9]), OneTimePrekey(keyID: 2, publicKey: [8])]),
        .publishKeys(requestID: 7, identityKey: nil, signedPrekey: nil, oneTimePrekeys: []),
        .getKeys(requestID: 8, accountID: 9, deviceID: nil),
        .getKeys(requestID: 8, accountID: 9, deviceID: 2),
        .keyBundles(requestID: 8, accountID: 9, bundles: [
            KeyBundle(deviceID: 1, identityKey: [1], signedPrekey: SignedPrekey(keyID: 1, publicKey: [2], signature: [3]),
                      oneTimePrekey: OneTimePrekey(keyID: 4, publicKey: [5])),
            KeyBundle(deviceID: 2, identityKey: [6], signedPrekey: nil, oneTimePrekey: nil),
        ]),
        .prekeysLow(remaining: 3),
        .send(SendMessage(messageID: MessageID(repeating: 0xAB), toAccount: 9,
                          copies: [MessageCopy(deviceID: 1, ciphertext: [1, 2, 3]), MessageCopy(deviceID: 2, ciphertext: [])])),
        .sendResult(SendResult(messageID: MessageID(repeating: 1), code: .ok, duplicate: true)),
        .sendResult(SendResult(messageID: MessageID(repeating: 1), code: .deviceListMismatch, message: "m",
                               devices: [DeviceAddress(accountID: 9, deviceID: 1), DeviceAddress(accountID: 5, deviceID: 2)])),
        .deliver(Delivery(seq: 300, messageID: MessageID(repeating: 2), fromAccount: 5, fromDevice: 2,
                          sentAtMilliseconds: 1_764_400_000_000, ciphertext: [UInt8](repeating: 7, count: 200))),
        .ack(seqs: [1, 2, 300]),
        .deliver(Delivery(seq: 301, messageID: MessageID(repeating: 3), fromAccount: 9, fromDevice: 1,
                          sentAtMilliseconds: 5, ciphertext: [], kind: .read)),
        .receipt(requestID: 3, toAccount: 5, messageIDs: [MessageID(repeating: 4), MessageID(repeating: 5)]),
        .registerPush(requestID: 4, token: "tok-\u{e9}"),
        .presenceAllow(requestID: 5, accountID: 6, allowed: false),
        .presenceSubscribe(requestID: 6, accountID: 7),
        .presence(accountID: 7, online: false, lastSeenMilliseconds: 1_764_400_000_000),
        .presence(accountID: 7, online: true, lastSeenMilliseconds: 0),
        .typing(accountID: 8, deviceID: 0, active: true),
        .typing(accountID: 8, deviceID: 2, active: false),
        .createGroup(requestID: 1, name: "trio", members: [2, 3]),
        .updateGroup(requestID: 2, groupID: 4, operation: .rename, accountID: 0, name: "quartet"),
        .updateGroup(requestID: 3, groupID: 4, operation: .add, accountID: 9, name: ""),
        .getGroup(requestID: 4, groupID: 4),
        .groupInfo(requestID: 4, groupID: 4, name: "quartet", members: [GroupMember(accountID: 1, admin: true), GroupMember(accountID: 9, admin: false)]),
        .send(SendMessage(messageID: MessageID(repeating: 6), toAccount: 0, copies: [MessageCopy(deviceID: 3, ciphertext: [1])], groupID: 4)),
        .deliver(Delivery(seq: 5, messageID: MessageID(repeating: 6), fromAccount: 1, fromDevice: 0, sentAtMilliseconds: 9,
                          ciphertext: [], kind: .groupChanged, groupID: 4)),
        .deliver(Delivery(seq: 6, messageID: MessageID(repeating: 7), fromAccount: 1, fromDevice: 2, sentAtMilliseconds: 9,
                          ciphertext: [1], groupID: 4, muted: true)),
        .mute(MuteRequest(requestID: 1, chatAccount: 5, untilMilliseconds: 1_764_400_000_000, silent: true)),
        .mute(MuteRequest(requestID: 2, groupID: 4, automatic: true)),
        .mute(MuteRequest(requestID: 3, groupID: 4)),
        .deliver(Delivery(seq: 7, messageID: MessageID(repeating: 8), fromAccount: 2, fromDevice: 3, sentAtMilliseconds: 9,
                          ciphertext: [], kind: .delivered, groupID: 4, deliveredCount: 1, deliveredTotal: 1_023)),
    ]

    /// Stanza and record lengths are minimal varints written after the body: check the bytes at
    /// the one-, two- and three-byte boundaries, and that every size decodes back.
    @Test func lengthPrefixesAreMinimalAtEverySize() throws {
        for size in [0, 1, 100, 107, 108, 109, 127, 128, 200, 16_300, 16_400, 40_000] {
            let stanza = Stanza.deliver(Delivery(seq: 1, messageID: MessageID(repeating: 2), fromAccount: 3, fromDevice: 4,
                                                 sentAtMilliseconds: 5, ciphertext: [UInt8](repeating: 9, count: size)))
            let bytes = StanzaCodec.encode(stanza)
            var offset = 1  // after the one-byte type
            let length = try #require(try bytes.withUnsafeBytes { try Varint.read($0, at: &offset) })
            #expect(Int(length) == bytes.count - offset, "size \(size)")
            #expect(offset - 1 == Varint.length(length), "size \(size): minimal length prefix")
            #expect(try StanzaCodec.decodeAll(bytes) == [stanza], "size \(size)")
        }
        // A record (a key bundle inside KeyBundles) past 127 bytes.
        let big = Stanza.keyBundles(requestID: 1, accountID: 2, bundles: [
            KeyBundle(deviceID: 1, identityKey: [UInt8](repeating: 1, count: 32),
                      signedPrekey: SignedPrekey(keyID: 1, publicKey: [UInt8](repeating: 2, count: 32), signature: [UInt8](repeating: 3, count: 64)),
                      oneTimePrekey: OneTimePrekey(keyID: 4, publicKey: [UInt8](repeating: 5, count: 32)))])
        #expect(StanzaCodec.encode(big).count > 160)
        #expect(try StanzaCodec.decodeAll(StanzaCodec.encode(big)) == [big])
    }

    @Test func everyStanzaRoundTrips() throws {
        for stanza in StanzaCodecTests.samples {
            let bytes = StanzaCodec.encode(stanza)
            #expect(try StanzaCodec.decodeAll(bytes) == [stanza])
        }
        // Many stanzas back to back, as in one frame.
        var all: [UInt8] = []
        for stanza in StanzaCodecTests.samples { StanzaCodec.encode(stanza, into: &all) }
        #expect(try StanzaCodec.decodeAll(all) == StanzaCodecTests.samples)
    }

    @Test func lengthPrefixOverOneByteIsInsertedCorrectly() throws {
        let long = Stanza.error(ErrorStanza(code: .internalError, message: String(repeating: "x", count: 200)))
        let bytes = StanzaCodec.encode(long)
        #expect(bytes[0] == 4)
        #expect(bytes[1] & 0x80 != 0, "a body over 127 bytes needs a two-byte length")
        #expect(try StanzaCodec.decodeAll(bytes) == [long])
    }

    @Test func unknownFieldsAreSkippedAndUnknownTypesReported() throws {
        // A ping with an extra bytes field 9 and an extra varint field 10 before field 1.
        var body: [UInt8] = []
        FieldWriter.bytes(9, [1, 2, 3], into: &body)
        FieldWriter.varint(10, 5, into: &body)
        FieldWriter.varint(1, 77, into: &body)
        let bytes: [UInt8] = [0x05, UInt8(body.count)] + body + [0xE7, 0x07, 0x00]  // + stanza type 999, empty
        #expect(try StanzaCodec.decodeAll(bytes) == [.ping(77), .unknown(type: 999)])
    }

    @Test func malformedBodiesAreRejected() {
        let cases: [[UInt8]] = [
            [0x05, 0x05, 0x02],  // length past the frame
            [0x05],  // truncated header
            [0x05, 0x02, 0x03, 0x05],  // field 1 as bytes with length 5 past the stanza
            [0x04, 0x02, 0x04, 0x00],  // error without a code (only field 2, empty)
            [0x01, 0x02, 0x02, 0x01],  // hello without a version
            [0x01, 0x04, 0x02, 0x01, 0x04, 0x09],  // hello mode 9
            [0x05, 0x02, 0x00, 0x01],  // field number 0
        ]
        for bytes in cases {
            #expect(throws: WireError.self, "\(bytes)") { try StanzaCodec.decodeAll(bytes) }
        }
        let longName = Stanza.hello(Hello(mode: .register, accountName: String(repeating: "a", count: 33)))
        #expect(throws: WireError.tooLarge("field 3 is 33 bytes, limit 32")) { try StanzaCodec.decodeAll(StanzaCodec.encode(longName)) }
        let badUTF8: [UInt8] = [0x04, 0x05, 0x02, 0x01, 0x05, 0x01, 0xFF]
        #expect(throws: WireError.self) { try StanzaCodec.decodeAll(badUTF8) }
    }
}

@Suite struct FrameAssemblerTests {
    /// A stream: preface, two handshake frames, then transport frames.
    static func stream() -> [UInt8] {
        var bytes = WireLimits.preface
        bytes += [0x01, 0x00, 0x20] + [UInt8](repeating: 0xE1, count: 32)
        bytes += [0x01, 0x00, 0x00]
        for size in [16, 17, 300, 16, 65_535] {
            bytes += [UInt8(size >> 8), UInt8(size & 0xff)] + (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ size) }
        }
        return bytes
    }

    enum Seen: Equatable { case preface, handshake(UInt8, [UInt8]), transport([UInt8]) }

    static func run(_ stream: [UInt8], splits: [Int]) throws -> [Seen] {
        var assembler = FrameAssembler()
        var seen: [Seen] = []
        var handshakes = 0
        var offset = 0
        for size in splits + [stream.count] {
            let end = min(stream.count, offset + size)
            var chunk = Array(stream[offset..<end])
            offset = end
            try chunk.withUnsafeMutableBytes { raw in
                try assembler.feed(raw) { unit in
                    switch unit {
                    case .preface:
                        seen.append(.preface)
                        return .handshake
                    case .handshake(let type, let body):
                        seen.append(.handshake(type, Array(body)))
                        handshakes += 1
                        return handshakes == 2 ? .transport : .handshake
                    case .transport(let ciphertext):
                        seen.append(.transport(Array(ciphertext)))
                        return .transport
                    }
                }
            }
            if offset == stream.count { break }
        }
        #expect(assembler.bufferedBytes == 0)
        return seen
    }

    @Test func oneByteAtATimeAndRandomSplitsParseIdentically() throws {
        let stream = FrameAssemblerTests.stream()
        let whole = try FrameAssemblerTests.run(stream, splits: [])
        #expect(whole.count == 1 + 2 + 5)
        #expect(try FrameAssemblerTests.run(stream, splits: Array(repeating: 1, count: stream.count)) == whole)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var splits: [Int] = []
            var total = 0
            while total < stream.count {
                let size = Int.random(in: 1...(Bool.random(using: &generator) ? 7 : 9000), using: &generator)
                splits.append(size)
                total += size
            }
            #expect(try FrameAssemblerTests.run(stream, splits: splits) == whole)
        }
    }

    /// An empty handshake frame whose header arrives in two reads, followed at once by more bytes:
    /// the assembler once took a byte past the header to learn the length and then spun forever
    /// (found by the random splits above). Every split point, deterministically.
    @Test func anEmptyFrameSplitAnywhereIsDelivered() throws {
        let stream = FrameAssemblerTests.stream()
        let whole = try FrameAssemblerTests.run(stream, splits: [])
        let emptyFrame = WireLimits.preface.count + 35  // the second handshake frame: 01 00 00
        for first in 1...(emptyFrame + 6) {
            for second in 1...4 {
                #expect(try FrameAssemblerTests.run(stream, splits: [first, second]) == whole, "splits \(first), \(second)")
            }
        }
    }

    @Test func wrongMagicFailsOnTheFirstWrongByte() {
        var assembler = FrameAssembler()
        var bytes: [UInt8] = [0x53, 0x57, 0x58]  // "SWX"
        #expect(throws: FrameError.badPreface) {
            try bytes.withUnsafeMutableBytes { raw in try assembler.feed(raw) { _ in .handshake } }
        }
    }

    @Test func unsupportedVersionAndShortFrames() {
        var assembler = FrameAssembler()
        var version2: [UInt8] = [0x53, 0x57, 0x42, 0x44, 0x02]
        #expect(throws: FrameError.unsupportedVersion(2)) {
            try version2.withUnsafeMutableBytes { raw in try assembler.feed(raw) { _ in .handshake } }
        }
        var transport = FrameAssembler(mode: .transport)
        var short: [UInt8] = [0x00, 0x0F]
        #expect(throws: FrameError.frameTooShort(15)) {
            try short.withUnsafeMutableBytes { raw in try transport.feed(raw) { _ in .transport } }
        }
    }
}

/// Message ids kept inline: every length up to 16 compares, hashes and encodes by its bytes.
@Suite struct MessageIDTests {
    @Test func idsOfEveryLengthKeepTheirBytes() throws {
        var seen: Set<MessageID> = []
        for length in 0...16 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }
            let id = MessageID(bytes)
            #expect(id.bytes == bytes && id.count == length && Array(id) == bytes)
            #expect(id == MessageID(bytes))
            if length < 16 { #expect(id != MessageID(bytes + [0])) }
            seen.insert(id)
            let result = Stanza.sendResult(SendResult(messageID: id, code: .ok))
            #expect(try StanzaCodec.decodeAll(StanzaCodec.encode(result)) == [result])
        }
        #expect(seen.count == 17, "a shorter id is not equal to a longer one with the same prefix")
        #expect(MessageID([1, 2, 0]) != MessageID([1, 2]), "trailing zero bytes count")
        #expect(MessageID.random() != MessageID.random())
        #expect(MessageID([0xAB, 0x01]).description == "ab01")
    }

    @Test func aLongerIdOnTheWireIsRefused() {
        var body: [UInt8] = []
        FieldWriter.bytes(1, [UInt8](repeating: 1, count: 17), into: &body)
        var frame: [UInt8] = []
        Varint.append(Stanza.sendResult(SendResult(messageID: [], code: .ok)).type, to: &frame)
        Varint.append(UInt64(body.count), to: &frame)
        frame += body
        #expect(throws: WireError.self) { try StanzaCodec.decodeAll(frame) }
    }
}

/// The delivery path's Ack reading: sequence numbers in place, other stanzas decoded as usual,
/// in frame order; a malformed Ack fails the frame as a decoded one would.
@Suite struct AckSeqsTests {
    @Test func acksAreReadInPlaceAndInOrder() throws {
        let frame = StanzaCodec.encode(.ping(1), .ack(seqs: [3, 1, 300, 1 << 40]), .ack(seqs: []), .ping(2))
        var seen: [String] = []
        try frame.withUnsafeBytes { raw in
            try StanzaCodec.forEach(raw, acks: { seqs in seen.append("ack \(seqs.count) \(Array(seqs))") }) { stanza in
                seen.append("\(stanza)")
            }
        }
        #expect(seen == ["ping(1)", "ack 4 [3, 1, 300, 1099511627776]", "ack 0 []", "ping(2)"])
    }

    @Test func aMalformedAckFailsTheFrame() {
        var body: [UInt8] = []
        FieldWriter.varint(1, UInt64.max, into: &body)  // not an id below 2^63
        var frame: [UInt8] = []
        Varint.append(Stanza.ack(seqs: []).type, to: &frame)
        Varint.append(UInt64(body.count), to: &frame)
        frame += body
        #expect(throws: WireError.self) {
            try frame.withUnsafeBytes { raw in try StanzaCodec.forEach(raw, acks: { _ in }) { _ in } }
        }
        #expect(throws: WireError.self) { try StanzaCodec.decodeAll(frame) }
    }
}

@Suite struct MessageCopiesTests {
    @Test func copiesKeepTheirOrderAcrossTheInlineFirstAndTheRest() throws {
        let copies = (1...4).map { MessageCopy(deviceID: UInt64($0), ciphertext: [UInt8(truncatingIfNeeded: $0)]) }
        for count in 0...4 {
            var built = MessageCopies()
            for copy in copies.prefix(count) { built.append(copy) }
            #expect(Array(built) == Array(copies.prefix(count)))
            #expect(built.count == count)
            #expect(built == MessageCopies(copies.prefix(count)))
            let send = Stanza.send(SendMessage(messageID: MessageID(repeating: 7), toAccount: 3, copies: built))
            var encoded: [UInt8] = []
            StanzaCodec.encode(send, into: &encoded)
            #expect(try StanzaCodec.decodeAll(encoded.withUnsafeBytes { $0 }) == [send], "\(count) copies")
        }
        #expect(MessageCopies([copies[0], copies[1]]) != MessageCopies([copies[1], copies[0]]))
    }
}

/// A Send's copies decode the same whatever sits between them (the decoder counts a group's
/// copies only once a second one appears), and a body that breaks after one or two copies is
/// still refused.
@Suite struct SendDecodingTests {
    typealias F = FieldWriter

    private func copy(_ device: UInt64, _ ciphertext: [UInt8], into body: inout [UInt8]) {
        F.record(3, into: &body) { record in
            F.varint(1, device, into: &record)
            F.bytes(2, ciphertext, into: &record)
        }
    }

    private func stanza(_ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        Varint.append(StanzaType.send, to: &out)
        Varint.append(UInt64(body.count), to: &out)
        return out + body
    }

    @Test func copiesInterleavedWithOtherAndUnknownFields() throws {
        let id = MessageID(repeating: 9)
        var body: [UInt8] = []
        copy(1, [1], into: &body)
        F.varint(9, 77, into: &body)  // unknown: skipped
        F.messageID(1, id, into: &body)
        copy(2, [2, 2], into: &body)
        F.varint(4, 5, into: &body)  // the group, between copies
        F.bytes(11, [0xFF], into: &body)  // unknown bytes
        copy(3, [3, 3, 3], into: &body)
        let expected = Stanza.send(SendMessage(messageID: id, toAccount: 0, copies: MessageCopies([
            MessageCopy(deviceID: 1, ciphertext: [1]), MessageCopy(deviceID: 2, ciphertext: [2, 2]),
            MessageCopy(deviceID: 3, ciphertext: [3, 3, 3]),
        ]), groupID: 5))
        #expect(try StanzaCodec.decodeAll(stanza(body)) == [expected])
    }

    @Test func aBodyThatBreaksAfterOneOrTwoCopiesIsRefused() {
        for copies in 1...2 {
            var body: [UInt8] = []
            F.messageID(1, MessageID(repeating: 1), into: &body)
            F.varint(4, 5, into: &body)
            for device in 1...copies { copy(UInt64(device), [7], into: &body) }
            body += [3 << 1 | 1, 40, 1]  // a copy record claiming 40 bytes, then the body ends
            #expect(throws: WireError.self, "\(copies) copies") { try StanzaCodec.decodeAll(stanza(body)) }
        }
    }
}
