import Handshake
import Reactor
import Wire
import Store

/// Counters of the session layer, per loop (each loop has its own instance: nothing shared on
/// the hot path); a scrape sums them. Relaxed atomics so other threads may read them.
public final class SessionMetrics: Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        case connectionsOpened, connectionsClosed, handshakesXX, handshakesIK, handshakesFallback
        case handshakeFailures, handshakeTimeouts, loginsRefused, decryptFailures, protocolErrors
        case framesIn, framesOut
        /// Sends accepted (stored or sent directly); copies they fanned out to; deliveries
        /// written to devices.
        case messagesAccepted, copiesRouted, deliveries
        /// Copies sent directly (PROTOCOL.md section 20.8) that their device acknowledged, and
        /// that went to the store instead, as their sending sessions learn it.
        case directDelivered, directStored
        /// IK handshakes whose `ss` came from the loop's cache, and those that computed it.
        case ikStaticSecretHits, ikStaticSecretMisses
    }

    private let counts = AtomicCounters(count: Counter.allCases.count)
    /// Fatal protocol errors sent, by code (codes are below 128; others share the last slot).
    private let errors = AtomicCounters(count: 128)

    public init() {}

    func bump(_ counter: Counter, by value: Int = 1) { counts.add(counter.rawValue, value) }

    func countError(_ code: ErrorCode) { errors.add(Int(min(code.rawValue, 127))) }

    /// Errors sent with `code` (127: every code from 127 up).
    public func errors(code: UInt64) -> Int { errors.load(Int(min(code, 127))) }

    public func value(_ counter: Counter) -> Int { counts.load(counter.rawValue) }

    func countHandshake(_ pattern: ServerHandshake.Pattern) {
        switch pattern {
        case .xx: bump(.handshakesXX)
        case .ik: bump(.handshakesIK)
        case .xxFallback: bump(.handshakesFallback)
        }
    }
}

/// Session events worth a log line; the composition root decides how to write them.
public enum SessionEvent: Sendable {
    case handshakeFailed(code: ErrorCode, reason: String)
    case loginRefused(code: ErrorCode)
    case loggedIn(accountID: UInt64, deviceID: UInt64, pattern: String, mode: Hello.Mode)
}

