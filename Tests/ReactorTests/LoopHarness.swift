import Glibc
import Reactor
import TestSupport

/// Runs an event loop group on its own threads for a test and stops it at the end.
final class LoopHarness {
    let group: EventLoopGroup

    init(threads: Int = 1, configuration: LoopConfiguration = LoopConfiguration(), maxConnections: Int = 100_000) throws {
        group = try EventLoopGroup(threads: threads, configuration: configuration, maxConnections: maxConnections)
        group.start()
    }

    deinit {
        group.stop()
        group.join()
    }

    /// Runs `body` on `loop` and waits for its result.
    func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        loop.execute { box.set(Result { try body() }) }
        return try box.wait().get()
    }
}

/// A one-shot result handed from a loop to the test thread.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    // `@unchecked Sendable`: guarded by `mutex` and `condition`.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var value: Result<T, Error>?

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    func set(_ result: Result<T, Error>) {
        pthread_mutex_lock(&mutex)
        value = result
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    func wait() -> Result<T, Error> {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while value == nil { pthread_cond_wait(&condition, &mutex) }
        return value!
    }
}

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
