import Synchronization

/// Node-wide memory of resumption tokens already used and of revoked devices, so a token is
/// accepted once and a revoked device's token is refused without a store lookup.
///
/// Used tokens are remembered until they expire (a token is never accepted after its expiry
/// anyway), up to `capacity`; past it the entries closest to expiry are dropped first. The set
/// lives in memory: after a restart a token used before it could be presented once more — by the
/// holder of the device's private key only, since a token is bound to that key (PROTOCOL.md).
/// It is touched once per resumption handshake, never per message.
public final class TokenLedger: Sendable {
    private struct State {
        var used: [[UInt8]: UInt64] = [:]  // token id -> expiry (unix seconds)
        /// The same ids in the order they were used. Tokens are issued with one lifetime, so this
        /// is (nearly) expiry order too: evicting from the front drops the soonest to expire.
        var order: [(id: [UInt8], expiresAt: UInt64)] = []
        var head = 0
        var revoked: Set<UInt64> = []
    }

    private let state: Mutex<State>
    private let capacity: Int

    public init(revokedDevices: Set<UInt64> = [], capacity: Int = 1_000_000) {
        state = Mutex(State(revoked: revokedDevices))
        self.capacity = capacity
    }

    /// Marks a token id used; false if it was used before (a replay). O(1) amortized.
    public func consume(tokenID: [UInt8], expiresAt: UInt64, now: UInt64) -> Bool {
        state.withLock { state in
            if state.used[tokenID] != nil { return false }
            // Forget what expired, and the oldest entries past capacity.
            while state.head < state.order.count,
                state.order[state.head].expiresAt <= now || state.used.count >= capacity
            {
                state.used.removeValue(forKey: state.order[state.head].id)
                state.head += 1
            }
            if state.head > 1024 && state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            state.used[tokenID] = expiresAt
            state.order.append((tokenID, expiresAt))
            return true
        }
    }

    public func isRevoked(deviceID: UInt64) -> Bool {
        state.withLock { $0.revoked.contains(deviceID) }
    }

    /// Records a device's removal so its tokens stop working at once. The device-removal path
    /// (issue: messaging core, "a device can be ... removed") must call this as well as set
    /// `devices.revoked_at`.
    public func revoke(deviceID: UInt64) {
        state.withLock { _ = $0.revoked.insert(deviceID) }
    }

    public var usedCount: Int { state.withLock { $0.used.count } }
}
