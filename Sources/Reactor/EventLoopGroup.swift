import CSwitchboardShims
import Glibc
import Synchronization

/// One event loop per core, each on its own thread, and the limits they share.
///
/// `@unchecked Sendable`: `loops` is fixed at init; the thread handles are touched only by
/// `start()` and `join()`, which the owner calls from one thread; the connection count is atomic.
public final class EventLoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private var threads: [pthread_t] = []
    private let maxConnections: Int
    private let liveConnections = Atomic<Int>(0)
    private let nextLoop = Atomic<Int>(0)

    /// - Parameters:
    ///   - threads: number of loops (default: one per online CPU).
    ///   - maxConnections: accepted connections the whole group may hold at once.
    public init(
        threads: Int = EventLoopGroup.onlineCPUs, configuration: LoopConfiguration = LoopConfiguration(),
        maxConnections: Int = 1_000_000
    ) throws(SystemError) {
        var loops: [EventLoop] = []
        for index in 0..<max(1, threads) {
            loops.append(try EventLoop(id: index, configuration: configuration))
        }
        self.loops = loops
        self.maxConnections = maxConnections
        for loop in loops { loop.group = self }
    }

    public static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Starts one thread per loop. With `pinToCPUs`, loop i runs on CPU i modulo the CPU count.
    public func start(pinToCPUs: Bool = false) {
        let cpus = EventLoopGroup.onlineCPUs
        for loop in loops { loop.markStarted() }
        for loop in loops {
            let box = Unmanaged.passRetained(ThreadStart(loop: loop, cpu: pinToCPUs ? loop.id % cpus : nil))
            var thread = pthread_t()
            let result = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
                if let cpu = start.cpu { _ = sb_pin_current_thread(Int32(cpu)) }
                start.loop.run()
                return nil
            }, box.toOpaque())
            precondition(result == 0, "pthread_create failed with \(result)")
            threads.append(thread)
        }
    }

    /// A loop chosen round-robin.
    public func next() -> EventLoop {
        loops[nextLoop.add(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// Asks every loop to stop.
    public func stop() {
        for loop in loops { loop.stop() }
    }

    /// Waits for every loop thread to finish.
    public func join() {
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    /// Accepted connections currently open across all loops.
    public var connectionCount: Int { liveConnections.load(ordering: .relaxed) }

    func acquireConnectionSlot() -> Bool {
        if liveConnections.add(1, ordering: .relaxed).newValue > maxConnections {
            liveConnections.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseConnectionSlot() {
        liveConnections.subtract(1, ordering: .relaxed)
    }
}

private final class ThreadStart {
    let loop: EventLoop
    let cpu: Int?
    init(loop: EventLoop, cpu: Int?) {
        self.loop = loop
        self.cpu = cpu
    }
}
