/// A token bucket on loop time: `perSecond` tokens a second, bursts up to `perSecond`.
/// Loop thread only (a value inside a session).
struct RateLimit {
    // 16 bytes: a value inside every session.
    private var last: UInt64 = 0
    private var tokens: Float
    let perSecond: Int32

    init(perSecond: Int32) {
        self.perSecond = perSecond
        tokens = Float(perSecond)
    }

    /// Takes a token if one is left at `now` (milliseconds).
    mutating func allow(now: UInt64) -> Bool {
        if now > last {
            tokens = min(Float(perSecond), tokens + Float(min(now - last, 60_000)) * Float(perSecond) / 1000)
            last = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
