import Testing

@testable import Wire

/// `Deliver` and `SendResult` are counted and then written through a pointer; these tests hold
/// that encoding to the field-by-field one of PROTOCOL.md, built here with `FieldWriter`.
@Suite struct SizedEncodingTests {
    private func reference(type: UInt64, _ body: (inout [UInt8]) -> Void) -> [UInt8] {
        var fields: [UInt8] = []
        body(&fields)
        var out: [UInt8] = []
        Varint.append(type, to: &out)
        Varint.append(UInt64(fields.count), to: &out)
        return out + fields
    }

    private func deliveries() -> [Delivery] {
        var cases: [Delivery] = []
        for size in [0, 1, 100, 127, 128, 300, 20_000] {
            cases.append(Delivery(seq: UInt64(size) * 977, messageID: MessageID(repeating: UInt8(size % 251)),
                                  fromAccount: UInt64.random(in: 1...UInt64(Int64.max)), fromDevice: UInt64(size + 1),
                                  sentAtMilliseconds: 1_764_000_000_000 + UInt64(size), ciphertext: (0..<size).map { UInt8($0 % 256) }))
        }
        cases.append(Delivery(seq: 1, messageID: MessageID(repeating: 7), fromAccount: 2, fromDevice: 3, sentAtMilliseconds: 4,
                              ciphertext: [], kind: .delivered, groupID: 1 << 40, muted: true, deliveredCount: 129, deliveredTotal: 1_024))
        cases.append(Delivery(seq: 200, messageID: MessageID(repeating: 9, count: 5), fromAccount: 0, fromDevice: 0, sentAtMilliseconds: 0,
                              ciphertext: [1, 2, 3], kind: .message, groupID: 12))
        return cases
    }

    @Test func deliverMatchesTheFieldByFieldEncoding() throws {
        for delivery in deliveries() {
            var encoded: [UInt8] = [0xEE]  // appended after what is there
            StanzaCodec.encode(.deliver(delivery), into: &encoded)
            let expected = reference(type: StanzaType.deliver) { out in
                FieldWriter.varint(1, delivery.seq, into: &out)
                FieldWriter.messageID(2, delivery.messageID, into: &out)
                FieldWriter.varint(3, delivery.fromAccount, into: &out)
                FieldWriter.varint(4, delivery.fromDevice, into: &out)
                FieldWriter.varint(5, delivery.sentAtMilliseconds, into: &out)
                if delivery.kind == .message { FieldWriter.bytes(6, delivery.ciphertext, into: &out) }
                if delivery.kind != .message { FieldWriter.varint(7, delivery.kind.rawValue, into: &out) }
                if delivery.groupID != 0 { FieldWriter.varint(8, delivery.groupID, into: &out) }
                if delivery.muted { FieldWriter.varint(9, 1, into: &out) }
                if delivery.deliveredTotal != 0 {
                    FieldWriter.varint(10, delivery.deliveredCount, into: &out)
                    FieldWriter.varint(11, delivery.deliveredTotal, into: &out)
                }
            }
            #expect(encoded == [0xEE] + expected)
            #expect(try StanzaCodec.decodeAll(Array(encoded.dropFirst())) == [.deliver(delivery)])
        }
    }

    /// The delivery path numbers a copy as it encodes it: the bytes are those of the copy with
    /// its `seq` set, whatever `seq` the copy holds.
    @Test func deliverNumberedAsEncodedMatchesTheNumberedCopy() throws {
        for delivery in deliveries() {
            for seq in [0, 1, 127, 128, 1 << 35] as [UInt64] {
                var numbered = delivery
                numbered.seq = seq
                var expected: [UInt8] = [0xEE]
                StanzaCodec.encode(.deliver(numbered), into: &expected)
                var encoded: [UInt8] = [0xEE]
                StanzaCodec.encodeDeliver(delivery, seq: seq, into: &encoded)
                #expect(encoded == expected)
            }
        }
    }

    @Test func sendResultMatchesTheFieldByFieldEncoding() throws {
        let results = [
            SendResult(messageID: MessageID(repeating: 1), code: .ok),
            SendResult(messageID: MessageID(repeating: 2), code: .ok, duplicate: true),
            SendResult(messageID: MessageID(repeating: 3), code: .deviceListMismatch, message: "stale: é ✓",
                       devices: (0..<40).map { DeviceAddress(accountID: UInt64($0) << 20, deviceID: UInt64($0) * 300) }),
            SendResult(messageID: MessageID(repeating: 4), code: .internalError, message: String(repeating: "x", count: 200)),
        ]
        for result in results {
            var encoded: [UInt8] = []
            StanzaCodec.encode(.sendResult(result), into: &encoded)
            let expected = reference(type: StanzaType.sendResult) { out in
                FieldWriter.messageID(1, result.messageID, into: &out)
                FieldWriter.varint(2, result.code.rawValue, into: &out)
                if !result.message.isEmpty { FieldWriter.string(3, result.message, into: &out) }
                for device in result.devices {
                    FieldWriter.record(4, into: &out) { inner in
                        FieldWriter.varint(1, device.accountID, into: &inner)
                        FieldWriter.varint(2, device.deviceID, into: &inner)
                    }
                }
                if result.duplicate { FieldWriter.varint(5, 1, into: &out) }
            }
            #expect(encoded == expected)
            #expect(try StanzaCodec.decodeAll(encoded) == [.sendResult(result)])
        }
    }
}
