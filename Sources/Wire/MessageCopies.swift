/// The copies of a Send (one ciphertext per recipient device), keeping the first inline: a
/// one-to-one message to a single device — the common case — decodes without allocating a list.
/// Further copies (more devices, groups) go to an ordinary array.
public struct MessageCopies: RandomAccessCollection, Equatable, Sendable, ExpressibleByArrayLiteral {
    private var first: MessageCopy?
    private var rest: [MessageCopy] = []

    public init() {}

    public init(_ copies: some Sequence<MessageCopy>) {
        for copy in copies { append(copy) }
    }

    public init(arrayLiteral copies: MessageCopy...) { self.init(copies) }

    /// Room for `count` copies in all, so a group's list is allocated once.
    public mutating func reserveCapacity(_ count: Int) {
        if count > 1 { rest.reserveCapacity(count - 1) }
    }

    public mutating func append(_ copy: MessageCopy) {
        if first == nil { first = copy } else { rest.append(copy) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { first == nil ? 0 : 1 + rest.count }

    public subscript(position: Int) -> MessageCopy {
        precondition(position >= 0 && position < endIndex, "copy index out of range")
        return position == 0 ? first! : rest[position - 1]
    }
}
