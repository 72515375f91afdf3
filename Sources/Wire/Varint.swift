/// Unsigned LEB128 varints (PROTOCOL.md "Encoding"): 7 bits per byte, least significant group
/// first, high bit set on every byte but the last; at most 10 bytes for 64 bits.
public enum Varint {
    public static let maxLength = 10

    /// Appends the minimal encoding of `value`.
    @inline(__always)
    public static func append(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    public static func length(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// Decodes at `offset`, advancing it. Nil when the bytes end first (incomplete); throws for
    /// more than 10 bytes or a value over 64 bits.
    @inline(__always)
    public static func read(_ bytes: UnsafeRawBufferPointer, at offset: inout Int) throws(WireError) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = offset
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 { throw .malformed("varint exceeds 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                offset = index
                return result
            }
            shift += 7
            if shift > 63 { throw .malformed("varint longer than 10 bytes") }
        }
        return nil
    }
}
