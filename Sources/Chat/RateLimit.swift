/// A token bucket on loop time: `perSecond` tokens a second, bursts up to `perSecond`.
/// Loop thread only (a value inside a session).
struct RateLimit {
    let perSecond: Int
    private var tokens: Double
    private var last: UInt64 = 0

    init(perSecond: Int) {
        self.perSecond = perSecond
        tokens = Double(perSecond)
    }

    /// Takes a token if one is left at `now` (milliseconds).
    mutating func allow(now: UInt64) -> Bool {
        if now > last {
            tokens = min(Double(perSecond), tokens + Double(now - last) * Double(perSecond) / 1000)
            last = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
