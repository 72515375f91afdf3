import Reactor

/// Sends every byte back. The node's stand-in protocol until the wire protocol lands; also the
/// reference workload for measuring the Reactor alone. Stateless, so all connections share it.
final class EchoHandler: ConnectionHandler, @unchecked Sendable {
    // `@unchecked Sendable`: no stored state.
    static let shared = EchoHandler()

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
    }
}
