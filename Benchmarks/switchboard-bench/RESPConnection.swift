import Reactor

/// A minimal Redis client connection on our Reactor, for the reference workloads: it sends
/// commands in RESP2 and hands each reply up as it is parsed. Only what PUBLISH and SUBSCRIBE
/// answer is understood: integers, simple strings, errors, bulk strings and arrays of them.
final class RESPConnection: ConnectionHandler {
    enum Value {
        case integer(Int)
        case text(String)
        case error(String)
        case bulk([UInt8])
        case array([Value])
    }

    var onOpen: (() -> Void)?
    var onReply: ((Value) -> Void)?
    var onClose: (() -> Void)?
    private(set) var connection: (any ByteStream)?
    private var buffer: [UInt8] = []

    func connectionDidOpen(_ connection: any ByteStream) {
        self.connection = connection
        onOpen?()
    }

    /// Appends one command (an array of bulk strings) to the outbound queue.
    func send(_ parts: [[UInt8]]) {
        guard let connection else { return }
        var command = Array("*\(parts.count)\r\n".utf8)
        for part in parts {
            command += Array("$\(part.count)\r\n".utf8)
            command += part
            command += [13, 10]
        }
        connection.write(command)
    }

    func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        var offset = 0
        while let (value, next) = RESPConnection.parse(buffer, at: offset) {
            offset = next
            onReply?(value)
        }
        if offset > 0 { buffer.removeFirst(offset) }
    }

    func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        self.connection = nil
        onClose?()
    }

    /// One complete value starting at `offset` and the offset after it, or nil if incomplete.
    static func parse(_ bytes: [UInt8], at offset: Int) -> (Value, Int)? {
        guard offset < bytes.count, let lineEnd = lineEnd(bytes, from: offset + 1) else { return nil }
        let line = String(decoding: bytes[(offset + 1)..<lineEnd], as: UTF8.self)
        let after = lineEnd + 2
        switch bytes[offset] {
        case UInt8(ascii: ":"): return (.integer(Int(line) ?? 0), after)
        case UInt8(ascii: "+"): return (.text(line), after)
        case UInt8(ascii: "-"): return (.error(line), after)
        case UInt8(ascii: "$"):
            guard let length = Int(line) else { return nil }
            if length < 0 { return (.bulk([]), after) }
            guard bytes.count >= after + length + 2 else { return nil }
            return (.bulk(Array(bytes[after..<(after + length)])), after + length + 2)
        case UInt8(ascii: "*"):
            guard let count = Int(line) else { return nil }
            var items: [Value] = []
            var position = after
            for _ in 0..<max(count, 0) {
                guard let (item, next) = parse(bytes, at: position) else { return nil }
                items.append(item)
                position = next
            }
            return (.array(items), position)
        default:
            return nil
        }
    }

    private static func lineEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }
}
