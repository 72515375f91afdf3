/// The stanzas every relayed message produces — a `Deliver` for the recipient, a `SendResult`
/// and a delivery receipt (another `Deliver`) for the sender — are encoded in two passes over
/// one description of their fields: the first counts the body's bytes, the second writes the
/// header and the body through a pointer into room made once. Byte for byte the same encoding
/// as `FieldWriter`'s (minimal varints, fields in number order), without a capacity and
/// uniqueness check per byte or a move of the body to fit its length in front.
protocol FieldSink {
    mutating func varint(_ field: UInt64, _ value: UInt64)
    mutating func bytes(_ field: UInt64, _ value: UnsafeRawBufferPointer)
    /// The key and length of a record whose `length` bytes of fields follow.
    mutating func recordHeader(_ field: UInt64, length: Int)
}

/// A stanza body described once for both passes.
protocol SizedStanzaBody {
    func writeFields<Sink: FieldSink>(to sink: inout Sink)
}

/// First pass: counts bytes.
struct FieldSizer: FieldSink {
    private(set) var count = 0

    static func varintSize(_ field: UInt64, _ value: UInt64) -> Int { Varint.length(field << 1) + Varint.length(value) }

    mutating func varint(_ field: UInt64, _ value: UInt64) { count += FieldSizer.varintSize(field, value) }

    mutating func bytes(_ field: UInt64, _ value: UnsafeRawBufferPointer) {
        recordHeader(field, length: value.count)
        count += value.count
    }

    mutating func recordHeader(_ field: UInt64, length: Int) {
        count += Varint.length(field << 1 | 1) + Varint.length(UInt64(length))
    }
}

/// Second pass: writes at `base + offset`; the room was counted by a `FieldSizer` first.
struct FieldPointerWriter: FieldSink {
    let base: UnsafeMutableRawPointer
    private(set) var offset = 0

    init(base: UnsafeMutableRawPointer) { self.base = base }

    @inline(__always)
    mutating func raw(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: offset, as: UInt8.self)
            offset += 1
            v >>= 7
        }
        base.storeBytes(of: UInt8(v), toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    mutating func varint(_ field: UInt64, _ value: UInt64) {
        raw(field << 1)
        raw(value)
    }

    mutating func bytes(_ field: UInt64, _ value: UnsafeRawBufferPointer) {
        recordHeader(field, length: value.count)
        if let source = value.baseAddress { (base + offset).copyMemory(from: source, byteCount: value.count) }
        offset += value.count
    }

    mutating func recordHeader(_ field: UInt64, length: Int) {
        raw(field << 1 | 1)
        raw(UInt64(length))
    }
}

extension StanzaCodec {
    /// Appends `type | length | body` to `out`, the body counted first and then written in place.
    static func encodeSized(_ body: some SizedStanzaBody, type: UInt64, into out: inout [UInt8]) {
        encodeSized(type: type, into: &out, counting: { body.writeFields(to: &$0) }, writing: { body.writeFields(to: &$0) })
    }

    /// A `Deliver` stanza for `delivery` numbered `seq` (whatever its own `seq`): the delivery
    /// path numbers a copy as it writes it, without copying it (and retaining its ciphertext)
    /// to change one field.
    public static func encodeDeliver(_ delivery: Delivery, seq: UInt64, into out: inout [UInt8]) {
        encodeSized(type: StanzaType.deliver, into: &out, counting: { delivery.writeFields(seq: seq, to: &$0) },
                    writing: { delivery.writeFields(seq: seq, to: &$0) })
    }

    /// The two passes: `counting` describes the body to a `FieldSizer`, `writing` the same body
    /// to a `FieldPointerWriter`.
    @inline(__always)
    private static func encodeSized(
        type: UInt64, into out: inout [UInt8], counting: (inout FieldSizer) -> Void, writing: (inout FieldPointerWriter) -> Void
    ) {
        var sizer = FieldSizer()
        counting(&sizer)
        let length = UInt64(sizer.count)
        let total = Varint.length(type) + Varint.length(length) + sizer.count
        let start = out.count
        out.appendZeros(total)
        out.withUnsafeMutableBytes { raw in
            var writer = FieldPointerWriter(base: raw.baseAddress! + start)
            writer.raw(type)
            writer.raw(length)
            writing(&writer)
            precondition(writer.offset == total, "a stanza body wrote other than it counted")
        }
    }
}

extension Delivery: SizedStanzaBody {
    func writeFields<Sink: FieldSink>(to sink: inout Sink) { writeFields(seq: seq, to: &sink) }

    func writeFields<Sink: FieldSink>(seq: UInt64, to sink: inout Sink) {
        sink.varint(1, seq)
        messageID.withUnsafeBytes { sink.bytes(2, $0) }
        sink.varint(3, fromAccount)
        sink.varint(4, fromDevice)
        sink.varint(5, sentAtMilliseconds)
        if kind == .message {
            ciphertext.withUnsafeBytes { sink.bytes(6, $0) }
        } else {
            sink.varint(7, kind.rawValue)
        }
        if groupID != 0 { sink.varint(8, groupID) }
        if muted { sink.varint(9, 1) }
        if deliveredTotal != 0 {
            sink.varint(10, deliveredCount)
            sink.varint(11, deliveredTotal)
        }
    }
}

extension SendResult: SizedStanzaBody {
    func writeFields<Sink: FieldSink>(to sink: inout Sink) {
        messageID.withUnsafeBytes { sink.bytes(1, $0) }
        sink.varint(2, code.rawValue)
        if !message.isEmpty {
            var text = message
            text.withUTF8 { sink.bytes(3, UnsafeRawBufferPointer($0)) }
        }
        for device in devices {
            sink.recordHeader(4, length: FieldSizer.varintSize(1, device.accountID) + FieldSizer.varintSize(2, device.deviceID))
            sink.varint(1, device.accountID)
            sink.varint(2, device.deviceID)
        }
        if duplicate { sink.varint(5, 1) }
    }
}
