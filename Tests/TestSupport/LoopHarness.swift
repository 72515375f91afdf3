import Glibc
import Reactor

/// Runs an event loop group on its own threads for a test and stops it at the end.
public final class LoopHarness {
    public let group: EventLoopGroup

    public init(threads: Int = 1, configuration: LoopConfiguration = LoopConfiguration(), maxConnections: Int = 100_000) throws {
        group = try EventLoopGroup(threads: threads, configuration: configuration, maxConnections: maxConnections)
        group.start()
    }

    deinit {
        group.stop()
        group.join()
    }

    /// Runs `body` on `loop` and waits for its result.
    public func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        loop.execute { box.set(Result { try body() }) }
        return try box.wait().get()
    }
}

/// A one-shot result handed from a loop to the test thread.
public final class ResultBox<T: Sendable>: @unchecked Sendable {
    // `@unchecked Sendable`: guarded by `mutex` and `condition`.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var value: Result<T, Error>?

    public init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    public func set(_ result: Result<T, Error>) {
        pthread_mutex_lock(&mutex)
        value = result
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    public func wait() -> Result<T, Error> {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while value == nil { pthread_cond_wait(&condition, &mutex) }
        return value!
    }
}

