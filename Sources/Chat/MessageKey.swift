/// A message id as a dictionary key. `Send` ids are 16 bytes (PROTOCOL.md section 20.2): as two
/// words they hash in one step, where an array of bytes is fed to the hasher byte by byte — 7% of
/// the node's instructions in group fan-out, where every settled copy looks its message up.
struct MessageKey: Hashable {
    private let low: UInt64
    private let high: UInt64
    /// Ids of another length (never a `Send`'s) keep their bytes, so keys stay exact.
    private let other: [UInt8]?

    init(_ id: [UInt8]) {
        if id.count == 16 {
            (low, high) = id.withUnsafeBytes { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
            other = nil
        } else {
            (low, high, other) = (0, UInt64(id.count), id)
        }
    }

    /// One word into the hasher (ids are random: their two halves mixed are as good as both).
    func hash(into hasher: inout Hasher) {
        if let other { hasher.combine(other) } else { hasher.combine(low ^ (high &* 0x9E37_79B9_7F4A_7C15)) }
    }

    /// The id's bytes.
    var bytes: [UInt8] {
        if let other { return other }
        return withUnsafeBytes(of: (low, high)) { Array($0) }
    }
}
