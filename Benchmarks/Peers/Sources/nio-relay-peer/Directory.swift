import Handshake
import NIOConcurrencyHelpers
import NIOCore
import Noise
import Wire

/// What every connection shares: the server identity, id counters and the routing table from
/// device ids to the session that holds the device (and its event loop), behind a lock.
final class Directory: Sendable {
    let configuration: ServerHandshake.Configuration
    let tokens: TokenSealer
    private let state = NIOLockedValueBox(State())

    struct State {
        var nextAccount: UInt64 = 1
        var sessions: [UInt64: Route] = [:]
    }

    struct Route: @unchecked Sendable {
        // `@unchecked Sendable`: the handler is only touched on `eventLoop`.
        let eventLoop: any EventLoop
        let session: SessionHandler

        /// Runs `body` with the session on its loop: at once when already there, else hopped.
        func run(_ body: @escaping @Sendable (SessionHandler) -> Void) {
            if eventLoop.inEventLoop {
                body(session)
            } else {
                let session = self.session
                eventLoop.execute { body(session) }
            }
        }
    }

    init() {
        let key = KeyPair.generate()
        let root = SecretBytes.random(count: 32)
        let certificate = ServerCertificate.issue(serverKey: key.publicKey, rootSeed: root, issuedAt: UInt64(time(nil)))
        configuration = ServerHandshake.Configuration(
            staticKey: key, serverHello: ServerHello(nodeID: "nio-relay-peer", registration: 1, certificate: certificate.encoded))
        tokens = TokenSealer(keyID: 1, key: SecretBytes.random(count: 32))
    }

    /// A new account with one device (the peer keeps no store: ids live as long as the process).
    func register() -> UInt64 {
        state.withLockedValue { state in
            defer { state.nextAccount += 1 }
            return state.nextAccount
        }
    }

    func attach(device: UInt64, _ route: Route) { state.withLockedValue { $0.sessions[device] = route } }

    func detach(device: UInt64, session: SessionHandler) {
        state.withLockedValue { state in
            if state.sessions[device]?.session === session { state.sessions[device] = nil }
        }
    }

    func route(to device: UInt64) -> Route? { state.withLockedValue { $0.sessions[device] } }
}

import Glibc
