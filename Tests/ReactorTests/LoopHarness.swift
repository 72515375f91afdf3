import Glibc
import Reactor
import TestSupport

/// Echoes what it reads; remembers how connections closed.
final class EchoForTests: ConnectionHandler, @unchecked Sendable {
    // `@unchecked Sendable`: `closeReasons` is touched only on the loop (read after joins).
    var closeReasons: [CloseReason] = []
    var connections: [Connection] = []
    func connectionDidOpen(_ connection: any ByteStream) { connections.append(connection as! Connection) }
    func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) { connection.write(bytes) }
    func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) { closeReasons.append(reason) }
}

/// A listener with an echo handler on loop 0 of a harness; returns its port.
func startEcho(_ harness: LoopHarness, handler: EchoForTests) throws -> Int {
    let loop = harness.group.loops[0]
    return try harness.onLoop(loop) {
        let address = try SocketAddress(parsing: "127.0.0.1:0")
        let listener = try Listener(address: address, on: loop) { _ in handler }
        return Int(listener.address.port)
    }
}
