/// Stanza bodies are sequences of fields (PROTOCOL.md "Encoding"): a key varint
/// `field_number << 1 | kind`, then a varint value (kind 0) or a varint length and that many
/// bytes (kind 1). Unknown field numbers are skipped, so fields can be added without breaking
/// older peers.
public enum FieldWriter {
    public static func varint(_ field: UInt64, _ value: UInt64, into out: inout [UInt8]) {
        Varint.append(field << 1, to: &out)
        Varint.append(value, to: &out)
    }

    public static func bytes(_ field: UInt64, _ value: some Collection<UInt8>, into out: inout [UInt8]) {
        Varint.append(field << 1 | 1, to: &out)
        Varint.append(UInt64(value.count), to: &out)
        out.append(contentsOf: value)
    }

    public static func messageID(_ field: UInt64, _ value: MessageID, into out: inout [UInt8]) {
        value.withUnsafeBytes { bytes(field, $0, into: &out) }  // copied at once, not byte by byte
    }

    public static func string(_ field: UInt64, _ value: String, into out: inout [UInt8]) {
        bytes(field, value.utf8, into: &out)
    }

    /// A record: a kind-1 field whose bytes are fields written by `body`, its length inserted in
    /// front afterwards (no temporary buffer).
    public static func record(_ field: UInt64, into out: inout [UInt8], _ body: (inout [UInt8]) -> Void) {
        Varint.append(field << 1 | 1, to: &out)
        let start = reserveLength(in: &out)
        body(&out)
        patchLength(at: start, in: &out)
    }

    /// Appends a one-byte placeholder for the varint length of what follows; returns its position.
    static func reserveLength(in out: inout [UInt8]) -> Int {
        out.append(0)
        return out.count - 1
    }

    /// Writes the length of everything after the placeholder at `position` into it. Lengths under
    /// 128 fit the placeholder (nothing moves); longer ones move the body up by the extra bytes.
    static func patchLength(at position: Int, in out: inout [UInt8]) {
        var remaining = UInt64(out.count - position - 1)
        guard remaining >= 0x80 else {
            out[position] = UInt8(truncatingIfNeeded: remaining)
            return
        }
        let extra = Varint.length(remaining) - 1
        out.insert(contentsOf: repeatElement(0, count: extra), at: position + 1)  // one move of the body
        for at in position...(position + extra) {
            let more = remaining >= 0x80
            out[at] = UInt8(truncatingIfNeeded: remaining) | (more ? 0x80 : 0)
            remaining >>= 7
        }
    }
}

/// One decoded field; `bytes` views the stanza body and is valid while the body is.
public enum FieldValue {
    case varint(UInt64)
    case bytes(UnsafeRawBufferPointer)
}

/// Iterates the fields of a stanza body, checking every length against the body.
public struct FieldReader {
    private let body: UnsafeRawBufferPointer
    private var offset = 0

    public init(_ body: UnsafeRawBufferPointer) { self.body = body }

    public mutating func next() throws(WireError) -> (field: UInt64, value: FieldValue)? {
        guard offset < body.count else { return nil }
        guard let key = try Varint.read(body, at: &offset) else { throw .malformed("truncated field key") }
        let field = key >> 1
        guard field > 0 else { throw .malformed("field number 0") }
        if key & 1 == 0 {
            guard let value = try Varint.read(body, at: &offset) else { throw .malformed("truncated varint field") }
            return (field, .varint(value))
        }
        guard let length = try Varint.read(body, at: &offset), length <= UInt64(body.count - offset) else {
            throw .malformed("field \(field) runs past its stanza")
        }
        let start = offset
        offset += Int(length)
        return (field, .bytes(UnsafeRawBufferPointer(rebasing: body[start..<offset])))
    }
}

extension FieldValue {
    func varint(_ field: UInt64) throws(WireError) -> UInt64 {
        guard case .varint(let value) = self else { throw .malformed("field \(field) must be a varint") }
        return value
    }

    /// A message id (at most 16 bytes), read without an allocation.
    func messageID(_ field: UInt64) throws(WireError) -> MessageID {
        guard case .bytes(let value) = self else { throw .malformed("field \(field) must be bytes") }
        guard value.count <= MessageID.maxLength else { throw .tooLarge("field \(field) is \(value.count) bytes, limit \(MessageID.maxLength)") }
        return MessageID(copying: value)
    }

    /// Bytes copied into an array from `pool` when there is one (a ciphertext on the relay path).
    func bytes(_ field: UInt64, max: Int, reusing pool: ByteArrayPool? = nil) throws(WireError) -> [UInt8] {
        guard case .bytes(let value) = self else { throw .malformed("field \(field) must be bytes") }
        guard value.count <= max else { throw .tooLarge("field \(field) is \(value.count) bytes, limit \(max)") }
        return pool?.copy(value) ?? Array(value)
    }

    /// An account, device or request id: a varint below 2^63 (stores use signed 64-bit keys).
    func id(_ field: UInt64) throws(WireError) -> UInt64 {
        let value = try varint(field)
        guard value <= UInt64(Int64.max) else { throw .malformed("field \(field) is an id over 2^63-1") }
        return value
    }

    func record(_ field: UInt64) throws(WireError) -> FieldReader {
        guard case .bytes(let value) = self else { throw .malformed("field \(field) must be a record") }
        return FieldReader(value)
    }

    func string(_ field: UInt64, max: Int) throws(WireError) -> String {
        let raw = try bytes(field, max: max)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw .malformed("field \(field) is not UTF-8")
        }
        return text
    }
}
