import CSwitchboardShims
import Noise

/// The cost of the two X25519 operations a handshake does, measured on the calling thread:
/// DH with a peer's key (variable base) and key-pair generation (fixed base, which libsodium
/// computes faster). Best of three runs, to keep a passing disturbance out of the bound.
enum X25519Probe {
    struct Costs {
        var dhMicroseconds: Double
        var keygenMicroseconds: Double

        /// Handshakes per core-second if the X25519 work were all a handshake cost.
        func bound(dh: Int, keygen: Int) -> Double {
            1e6 / (Double(dh) * dhMicroseconds + Double(keygen) * keygenMicroseconds)
        }
    }

    static func measure(seconds: Double = 1.5) -> Costs {
        let slice = seconds / 6
        var dh = Double.infinity, keygen = Double.infinity
        let mine = KeyPair.generate()
        let peer = KeyPair.generate().publicKey
        for _ in 0..<3 {
            dh = min(dh, time(slice) { _ = try? mine.agree(with: peer) })
            keygen = min(keygen, time(slice) { _ = KeyPair.generate() })
        }
        return Costs(dhMicroseconds: dh, keygenMicroseconds: keygen)
    }

    /// Microseconds per call of `body`, over about `seconds`.
    private static func time(_ seconds: Double, _ body: () -> Void) -> Double {
        var count = 0
        let start = sb_monotonic_ns()
        let end = start + UInt64(seconds * 1e9)
        while sb_monotonic_ns() < end {
            for _ in 0..<50 { body() }
            count += 50
        }
        return Double(sb_monotonic_ns() - start) / 1e3 / Double(count)
    }
}
