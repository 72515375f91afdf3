/// A log-linear latency histogram in the manner of HdrHistogram: values are bucketed by their
/// leading bit and the next 7 bits, so every recorded value is kept within 1/128 (0.8%) of its
/// true value, in fixed memory, with O(1) recording and no allocation.
struct Histogram {
    private static let subBits = 7
    private static let subCount = 1 << subBits  // 128
    private var counts = [UInt64](repeating: 0, count: (64 - Histogram.subBits + 1) * Histogram.subCount)
    private(set) var total: UInt64 = 0
    private(set) var maxValue: UInt64 = 0

    /// Values below 128 have a bucket each; above, the leading bit and the 7 bits after it pick
    /// the bucket: group `shift + 1`, offset `top - 128`.
    @inline(__always)
    static func index(_ value: UInt64) -> Int {
        if value < UInt64(subCount) { return Int(value) }
        let shift = (63 - value.leadingZeroBitCount) - subBits
        let top = Int(value >> UInt64(shift))  // 128...255
        return (shift + 1) * subCount + (top - subCount)
    }

    static func lowerBound(_ index: Int) -> UInt64 {
        if index < subCount { return UInt64(index) }
        let shift = index / subCount - 1
        return UInt64(subCount + index % subCount) << UInt64(shift)
    }

    mutating func record(_ value: UInt64) {
        counts[Histogram.index(value)] += 1
        total += 1
        if value > maxValue { maxValue = value }
    }

    /// One histogram holding every recording of `parts` (one per loop).
    static func merged(_ parts: some Sequence<Histogram>) -> Histogram {
        var all = Histogram()
        for part in parts { all.merge(part) }
        return all
    }

    mutating func merge(_ other: Histogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        total += other.total
        maxValue = max(maxValue, other.maxValue)
    }

    /// The value at quantile `q` (0...1), within the bucket precision.
    func value(atQuantile q: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = max(1, UInt64((q * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= rank { return min(Histogram.lowerBound(index), maxValue) }
        }
        return maxValue
    }
}
