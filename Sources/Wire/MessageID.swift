/// A message id (PROTOCOL.md section 20.2): chosen by the sending client, 16 bytes in a `Send`
/// (up to 16 where the wire carries one back). Kept inline as two words and a length, so a
/// message's id costs no allocation and copying it retains nothing — it travels with every copy
/// through the router, the delivery window and the answers.
public struct MessageID: Hashable, Sendable, RandomAccessCollection, ExpressibleByArrayLiteral, CustomStringConvertible {
    public static let maxLength = 16
    private var words: (UInt64, UInt64) = (0, 0)
    /// Bytes in use (0…16).
    private var length: UInt8 = 0

    /// The empty id.
    public init() {}

    /// An id of these bytes. A longer sequence is cut to 16 bytes (decoders refuse longer ids
    /// before they get here).
    public init(_ bytes: some Sequence<UInt8>) {
        withUnsafeMutableBytes(of: &words) { raw in
            for byte in bytes where Int(length) < MessageID.maxLength {
                raw[Int(length)] = byte
                length += 1
            }
        }
    }

    /// An id of up to 16 bytes copied from `raw`.
    public init(copying raw: UnsafeRawBufferPointer) {
        let count = Swift.min(raw.count, MessageID.maxLength)
        guard count > 0, let source = raw.baseAddress else { return }
        withUnsafeMutableBytes(of: &words) { $0.baseAddress!.copyMemory(from: source, byteCount: count) }
        length = UInt8(count)
    }

    /// `count` bytes of `value` (tests and tools).
    public init(repeating value: UInt8, count: Int = MessageID.maxLength) {
        self.init(repeatElement(value, count: count))
    }

    public init(arrayLiteral elements: UInt8...) { self.init(elements) }

    /// A fresh random 16-byte id, as a sending client makes one.
    public static func random() -> MessageID {
        var id = MessageID()
        id.words = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
        id.length = UInt8(maxLength)
        return id
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { Int(length) }
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < Int(length), "message id index out of range")
        return Swift.withUnsafeBytes(of: words) { $0[position] }
    }

    /// The bytes as an array.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Calls `body` with the id's bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words) { try body(UnsafeRawBufferPointer(rebasing: $0[..<Int(length)])) }
    }

    /// The id folded to one word (ids are random; a client that makes two fold alike only
    /// confuses itself where this is used).
    public var folded: UInt64 { words.0 ^ (words.1 &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(length) }

    public static func == (a: MessageID, b: MessageID) -> Bool {
        a.length == b.length && a.words.0 == b.words.0 && a.words.1 == b.words.1
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(folded)
    }

    public var description: String {
        withUnsafeBytes { $0.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }
    }
}
