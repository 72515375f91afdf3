extension Array where Element == UInt8 {
    /// Appends `count` zero bytes as one copy from a zeroed page. Appending a `repeatElement`
    /// goes element by element: 3% of the node's instructions when relaying, as the room made for
    /// each encoded stanza and each frame's tag.
    public mutating func appendZeros(_ count: Int) {
        var left = count
        while left > 0 {
            let chunk = Swift.min(left, zeroPage.count)
            zeroPage.withUnsafeBytes { append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[..<chunk])) }
            left -= chunk
        }
    }
}

private let zeroPage = [UInt8](repeating: 0, count: 4_096)
