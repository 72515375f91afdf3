/// An `Ack`'s sequence numbers (PROTOCOL.md section 20.4), read in place from its stanza body
/// instead of collected into `Stanza.ack`'s array: acknowledging costs no allocation. Valid only
/// inside the call that hands it out (`StanzaCodec.forEach(_:acks:_:)`), like `FieldValue.bytes`.
public struct AckSeqs: Sequence {
    private let body: UnsafeRawBufferPointer
    /// How many sequence numbers the Ack names.
    public let count: Int

    /// Checks the whole body first (every field well formed, every seq an id below 2^63), so
    /// that iterating cannot fail.
    init(validating body: UnsafeRawBufferPointer) throws(WireError) {
        var reader = FieldReader(body)
        var count = 0
        while let (field, value) = try reader.next() {
            if field == 1 {
                _ = try value.id(field)
                count += 1
            }
        }
        self.body = body
        self.count = count
    }

    public func makeIterator() -> Iterator { Iterator(reader: FieldReader(body)) }

    public struct Iterator: IteratorProtocol {
        var reader: FieldReader

        public mutating func next() -> UInt64? {
            while let (field, value) = try? reader.next() {
                if field == 1, case .varint(let seq) = value { return seq }
            }
            return nil
        }
    }
}
