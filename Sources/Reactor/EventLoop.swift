import CSwitchboardShims
import Glibc
import Synchronization

/// Something registered with an event loop's epoll instance.
public protocol Selectable: AnyObject {
    /// Runs on the loop with the epoll event mask (`SB_EPOLLIN`, ...).
    func handleEvent(_ mask: UInt32)
}

/// How connections are registered with epoll (listeners and wake-ups are always level-triggered).
/// See docs/decisions/0001-epoll-trigger-mode.md.
public enum TriggerMode: String, Sendable {
    case edge, level
}

/// Tunables of a loop and the connections it owns.
public struct LoopConfiguration: Sendable {
    public var trigger: TriggerMode = .edge
    /// Milliseconds per timer-wheel tick.
    public var timerTickMilliseconds: Int = 10
    /// Size of the loop's one read buffer, shared by every connection on the loop.
    public var readBufferBytes: Int = 64 * 1024
    /// Reads one connection may do per wake-up before others get their turn.
    public var maxReadsPerWakeup: Int = 4
    /// `writev` calls one connection may do per wake-up before others get their turn.
    public var maxWritesPerWakeup: Int = 8
    /// Stop reading a peer whose outbound queue is above this many bytes...
    public var outboundHighWatermark: Int = 256 * 1024
    /// ...and resume once it is below this.
    public var outboundLowWatermark: Int = 64 * 1024
    /// Close a connection whose outbound queue grows past this (a consumer too slow to keep).
    public var outboundHardLimit: Int = 4 * 1024 * 1024
    /// Close a connection that has read nothing for this long (0: never).
    public var idleTimeoutMilliseconds: Int = 300_000
    /// Messages a loop takes from its mailboxes per iteration.
    public var mailboxBatch: Int = 4096
    /// Outbound chunks a loop keeps for reuse.
    public var cachedChunks: Int = 1024
    /// Connections accepted by an admitting listener (`Listener(admitting: true)`) that have not
    /// finished opening (`ByteStream.finishedOpening()`: the protocol's handshake and login) a
    /// loop holds at once; its admitting listeners stop accepting at this many, and the kernel's
    /// backlog holds the rest. Bounds the memory a burst of handshakes takes (0: no limit).
    public var maxOpeningConnections: Int = 256
    /// While admitting listeners wait for a slot, connections opening for longer than this are
    /// closed, so stalled peers cannot hold the slots until the handshake deadline.
    public var openingGraceUnderPressureMilliseconds: Int = 3_000

    public init() {}
}

/// Per-loop counters. Written only by the loop; read by others as relaxed snapshots.
public final class LoopCounters: Sendable {
    public let accepted = Atomic<Int>(0)
    public let closed = Atomic<Int>(0)
    public let rejectedOverLimit = Atomic<Int>(0)
    public let acceptDescriptorExhausted = Atomic<Int>(0)
    /// Times an admitting listener stopped accepting because `maxOpeningConnections` were opening.
    public let admissionPauses = Atomic<Int>(0)
    /// Opening connections closed because they took longer than the grace while others waited.
    public let openingEvictions = Atomic<Int>(0)
    public let bytesRead = Atomic<Int>(0)
    public let bytesWritten = Atomic<Int>(0)
    public let readPauses = Atomic<Int>(0)
    public let iterations = Atomic<Int>(0)
    /// How long each loop iteration worked (from epoll_wait's return to the next wait): how
    /// long an event may wait behind others.
    public let iterationLatency = AtomicHistogram(boundsMicroseconds: AtomicHistogram.latencyBounds)

    @inline(__always) func bump(_ counter: borrowing Atomic<Int>, by value: Int = 1) {
        counter.add(value, ordering: .relaxed)
    }
}

/// One thread, one epoll instance. Owns its connections, a timer wheel, deferred tasks and its
/// mailboxes; woken from other threads through an eventfd.
///
/// Everything here except `execute(_:)`, `wakeUp()`, `stop()` and the counters is touched only on
/// the loop's own thread (`assertInEventLoop()`), which is why the class can be
/// `@unchecked Sendable`: the cross-thread entry points use a `Mutex` and atomics only.
public final class EventLoop: @unchecked Sendable {
    public let id: Int
    public let configuration: LoopConfiguration
    public let counters = LoopCounters()
    /// Weak: the group owns its loops. Read only when a connection is accepted or closed; the hot
    /// path compares `groupToken` instead, because loading a weak reference costs atomic side-table
    /// operations on every call.
    weak var group: EventLoopGroup? {
        didSet {
            groupToken = group.map { Int(bitPattern: UInt(bitPattern: ObjectIdentifier($0))) } ?? 0
            groupSize = group?.loops.count ?? 1
        }
    }
    /// Identifies the group (its object's address; 0 without one) and counts its loops.
    private(set) var groupToken = 0
    private(set) var groupSize = 1

    private let epfd: Int32
    private let wakeFD: Int32
    private let events: OpaquePointer
    private let eventCapacity = 1024
    private var registrations: [Registration] = []
    private let wheel: TimerWheel
    private let startNanos: UInt64
    /// Milliseconds since the loop started, refreshed once per iteration.
    public private(set) var now: UInt64 = 0
    /// `wallMilliseconds` as read in this iteration (0: not read yet).
    private var wallRead: UInt64 = 0

    /// Unix time in milliseconds, read from the clock at most once per iteration (at the first
    /// ask) — the time stamp of a message or receipt costs no clock read of its own. On the loop.
    public var wallMilliseconds: UInt64 {
        assertInEventLoop()
        if wallRead == 0 { wallRead = EventLoop.unixMilliseconds() }
        return wallRead
    }

    /// Unix time in milliseconds, read from the clock now (any thread).
    public static func unixMilliseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) * 1_000 + UInt64(time.tv_nsec / 1_000_000)
    }

    private var deferred: [() -> Void] = []
    private let foreignTasks = Mutex<[@Sendable () -> Void]>([])
    private let foreignTaskCount = Atomic<Int>(0)
    private var inboxSources: [any InboxSource] = []
    private let inboxLock = Mutex<[any InboxSource]>([])
    private let inboxVersion = Atomic<Int>(0)
    private var seenInboxVersion = 0

    private let sleeping = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private var wakesOwed: [EventLoop] = []
    private var overflowing: [(EventLoop) -> Bool] = []

    var flushList: [Connection] = []
    private var flushSpare: [Connection] = []
    var readyList: [Connection] = []
    private var readySpare: [Connection] = []
    private var deferredSpare: [() -> Void] = []
    /// The buffer every read on this loop lands in; a layer that transforms what it read (TLS)
    /// may reuse it once it has consumed its input. Loop thread only.
    public let readBuffer: UnsafeMutableRawBufferPointer
    static let iovecCapacity = 64
    let iovecs: UnsafeMutablePointer<IOSlice>
    let chunks: ChunkPool
    /// Live connections owned by this loop (the registrations table holds them).
    public private(set) var connectionCount = 0
    /// The bound on connections still in their handshake (`Admission.swift`).
    private(set) lazy var admission = Admission(loop: self)
    /// Connections accepted by admitting listeners that have not finished opening.
    public var openingConnections: Int { admission.opening }

    private struct Registration {
        var generation: UInt32 = 0
        var handler: Selectable?
    }

    /// Creates a loop; it runs when `run()` is called on its thread.
    public init(id: Int = 0, configuration: LoopConfiguration = LoopConfiguration()) throws(SystemError) {
        self.id = id
        self.configuration = configuration
        sb_ignore_sigpipe()  // writes to a reset peer must fail with EPIPE, not kill the process
        epfd = try blockingCall("epoll_create1") { sb_epoll_create() }
        do {
            wakeFD = try blockingCall("eventfd") { sb_eventfd() }
        } catch {
            closeDescriptor(epfd)
            throw error
        }
        events = sb_epoll_events_create(Int32(eventCapacity))!
        startNanos = sb_monotonic_ns()
        wheel = TimerWheel(slots: 4096)
        readBuffer = .allocate(byteCount: configuration.readBufferBytes, alignment: 16)
        chunks = ChunkPool(maxCached: configuration.cachedChunks)
        iovecs = .allocate(capacity: EventLoop.iovecCapacity)
        let epfd = self.epfd, wakeFD = self.wakeFD
        if sb_epoll_ctl(epfd, 1, wakeFD, SB_EPOLLIN, UInt64(UInt32(bitPattern: wakeFD))) != 0 {
            // Without its wake-up the loop could sleep through `execute` and `stop` forever.
            throw SystemError(call: "epoll_ctl(ADD eventfd)", errno: sb_errno())
        }
    }

    deinit {
        closeDescriptor(wakeFD)
        closeDescriptor(epfd)
        sb_epoll_events_destroy(events)
        readBuffer.deallocate()
        iovecs.deallocate()
    }

    /// The loop running on the calling thread, if any.
    public static var currentLoop: EventLoop? {
        guard let raw = sb_current_loop() else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    }

    public var inEventLoop: Bool { EventLoop.currentLoop === self }

    /// Set by the thread that starts the loop; before that, its owner may set it up from any
    /// one thread (register listeners, schedule timers).
    private let started = Atomic<Bool>(false)

    func markStarted() { started.store(true, ordering: .sequentiallyConsistent) }

    @inline(__always)
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop || !started.load(ordering: .relaxed), "must run on event loop \(id)", file: file, line: line)
    }

    // MARK: Registration

    /// Registers a descriptor. Its events are delivered to `handler` until `deregister`.
    public func register(_ fd: Int32, events mask: UInt32, handler: Selectable) throws(SystemError) {
        assertInEventLoop()
        let index = Int(fd)
        if index >= registrations.count {
            registrations.append(contentsOf: repeatElement(Registration(), count: index + 1 - registrations.count))
        }
        registrations[index].generation &+= 1
        registrations[index].handler = handler
        let data = userData(fd)
        do {
            try blockingCall("epoll_ctl(ADD)") { sb_epoll_ctl(epfd, 1, fd, mask, data) }
        } catch {
            registrations[index].handler = nil
            throw error
        }
    }

    /// Changes the interest set of a registered descriptor.
    public func modify(_ fd: Int32, events mask: UInt32) throws(SystemError) {
        assertInEventLoop()
        let data = userData(fd)
        try blockingCall("epoll_ctl(MOD)") { sb_epoll_ctl(epfd, 3, fd, mask, data) }
    }

    /// Forgets a descriptor. When the caller closes it right after, `removeFromEpoll` can be
    /// false: close removes it from epoll, and the generation drops any event already queued.
    public func deregister(_ fd: Int32, removeFromEpoll: Bool = false) {
        assertInEventLoop()
        let index = Int(fd)
        guard index < registrations.count else { return }
        registrations[index].handler = nil
        registrations[index].generation &+= 1
        if removeFromEpoll { _ = sb_epoll_ctl(epfd, 2, fd, 0, 0) }
    }

    private func userData(_ fd: Int32) -> UInt64 {
        UInt64(registrations[Int(fd)].generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    // MARK: Timers

    private var tickMs: UInt64 { UInt64(configuration.timerTickMilliseconds) }

    /// Schedules `target.timerFired(tag:)` after at least `milliseconds`. `tag` must fit in 32
    /// bits (the wheel keeps its nodes small: one per connection).
    public func scheduleTimer(in milliseconds: Int, target: TimerTarget, tag: Int) -> TimerHandle {
        assertInEventLoop()
        precondition(Int32(exactly: tag) != nil, "timer tags are 32-bit")
        let ms = UInt64(max(0, milliseconds))
        let tick = (currentMillis() + ms + tickMs - 1) / tickMs
        return wheel.schedule(atTick: tick, target: target, tag: tag)
    }

    /// Schedules a closure after at least `milliseconds` (allocates; for control-plane work).
    @discardableResult
    public func scheduleTimer(in milliseconds: Int, _ body: @escaping () -> Void) -> TimerHandle {
        scheduleTimer(in: milliseconds, target: ClosureTimer(body), tag: 0)
    }

    /// Cancels a timer; harmless if it already fired.
    public func cancelTimer(_ handle: TimerHandle) {
        assertInEventLoop()
        wheel.cancel(handle)
    }

    public var scheduledTimerCount: Int { wheel.count }

    private func currentMillis() -> UInt64 { (sb_monotonic_ns() - startNanos) / 1_000_000 }

    // MARK: Tasks

    /// Runs `body` on this loop after the current event has been handled. Loop thread only.
    public func deferTask(_ body: @escaping () -> Void) {
        assertInEventLoop()
        deferred.append(body)
    }

    /// Runs `body` on this loop. May be called from any thread (allocates; not for the hot path,
    /// which uses a typed `Mailbox`).
    public func execute(_ body: @escaping @Sendable () -> Void) {
        foreignTasks.withLock { $0.append(body) }
        foreignTaskCount.add(1, ordering: .sequentiallyConsistent)
        wakeUp()
    }

    /// Wakes the loop if it is sleeping in epoll_wait. Any thread.
    public func wakeUp() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            _ = sb_eventfd_write(wakeFD)
        }
    }

    /// Asks the loop to leave `run()` after its current iteration. Any thread.
    public func stop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        wakeUp()
    }

    func addInboxSource(_ source: any InboxSource) {
        inboxLock.withLock { $0.append(source) }
        inboxVersion.add(1, ordering: .sequentiallyConsistent)
        wakeUp()
    }

    /// Producer loop side of a mailbox push: wake `consumer` once, at the end of this iteration.
    func wakeLater(_ consumer: EventLoop) {
        if consumer === self { return }
        for owed in wakesOwed where owed === consumer { return }
        wakesOwed.append(consumer)
    }

    /// Producer loop side of a full mailbox ring: retry moving the overflow every iteration.
    func flushLater<M>(_ mailbox: Mailbox<M>) {
        overflowing.append { [unowned mailbox] producer in mailbox.flushOverflow(from: producer) }
    }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()`.
    public func run() {
        markStarted()
        sb_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        defer { sb_set_current_loop(nil) }
        now = currentMillis()
        while !stopRequested.load(ordering: .relaxed) {
            var timeout = Int32(-1)
            if hasImmediateWork() {
                timeout = 0
            } else {
                if let ticks = wheel.ticksUntilNextSlot() {
                    let deadline = (wheel.currentTick + ticks) * tickMs
                    let current = currentMillis()
                    timeout = deadline > current ? Int32(clamping: deadline - current) : 0
                }
                // A full mailbox ring: retry soon, but sleep so the consumer gets the CPU.
                if !overflowing.isEmpty && (timeout < 0 || timeout > 1) { timeout = 1 }
                if timeout != 0 {
                    sleeping.store(true, ordering: .sequentiallyConsistent)
                    atomicMemoryFence(ordering: .sequentiallyConsistent)
                    if hasInboundWork() || stopRequested.load(ordering: .sequentiallyConsistent) {
                        timeout = 0
                    }
                }
            }
            let count = sb_epoll_wait(epfd, events, Int32(eventCapacity), timeout)
            sleeping.store(false, ordering: .relaxed)
            let woke = sb_monotonic_ns()
            now = (woke - startNanos) / 1_000_000
            wallRead = 0
            counters.bump(counters.iterations)
            if count < 0 {
                let code = sb_errno()
                precondition(code == EINTR, "epoll_wait failed with errno \(code)")
            }
            for index in 0..<max(0, Int(count)) {
                dispatch(sb_epoll_events_data(events, Int32(index)),
                         sb_epoll_events_mask(events, Int32(index)))
            }
            wheel.advance(to: now / tickMs)
            runInbound()
            runDeferred()
            runReadyList()
            runFlushList()
            runOverflow()
            payWakes()
            counters.iterationLatency.observe(microseconds: Int((sb_monotonic_ns() - woke) / 1_000))
        }
    }

    private func dispatch(_ data: UInt64, _ mask: UInt32) {
        let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
        if fd == wakeFD {
            _ = sb_eventfd_read(wakeFD)
            return
        }
        let index = Int(fd)
        guard index < registrations.count,
            registrations[index].generation == UInt32(truncatingIfNeeded: data >> 32),
            let handler = registrations[index].handler
        else { return }  // a stale event for a descriptor closed earlier in this batch
        handler.handleEvent(mask)
    }

    private func hasImmediateWork() -> Bool {
        !deferred.isEmpty || !readyList.isEmpty || !flushList.isEmpty
    }

    private func hasInboundWork() -> Bool {
        if foreignTaskCount.load(ordering: .sequentiallyConsistent) > 0 { return true }
        if inboxVersion.load(ordering: .sequentiallyConsistent) != seenInboxVersion { return true }
        for source in inboxSources where source.hasPending { return true }
        return false
    }

    private func runInbound() {
        let version = inboxVersion.load(ordering: .sequentiallyConsistent)
        if version != seenInboxVersion {
            inboxSources = inboxLock.withLock { $0 }
            seenInboxVersion = version
        }
        if foreignTaskCount.load(ordering: .sequentiallyConsistent) > 0 {
            let tasks = foreignTasks.withLock { list -> [@Sendable () -> Void] in
                let taken = list
                list.removeAll()
                return taken
            }
            foreignTaskCount.subtract(tasks.count, ordering: .sequentiallyConsistent)
            for task in tasks { task() }
        }
        var budget = configuration.mailboxBatch
        for source in inboxSources where budget > 0 {
            budget -= source.drain(limit: budget)
        }
        if budget <= 0 { deferred.append {} }  // more may wait: do not sleep
    }

    // The lists below are swapped with a spare rather than copied, so running them allocates
    // nothing once both arrays have grown to their working size.

    private func runDeferred() {
        guard !deferred.isEmpty else { return }
        swap(&deferred, &deferredSpare)
        for task in deferredSpare { task() }
        deferredSpare.removeAll(keepingCapacity: true)
    }

    private func runReadyList() {
        guard !readyList.isEmpty else { return }
        swap(&readyList, &readySpare)
        for connection in readySpare {
            connection.inReadyList = false
            connection.readAvailable()
        }
        readySpare.removeAll(keepingCapacity: true)
    }

    private func runFlushList() {
        guard !flushList.isEmpty else { return }
        // A connection that hits its per-wake-up cap re-adds itself to the fresh list.
        swap(&flushList, &flushSpare)
        for connection in flushSpare {
            connection.inFlushList = false
            connection.flush()
        }
        flushSpare.removeAll(keepingCapacity: true)
    }

    private func runOverflow() {
        guard !overflowing.isEmpty else { return }
        var kept = 0
        for index in overflowing.indices where overflowing[index](self) {
            overflowing.swapAt(index, kept)
            kept += 1
        }
        overflowing.removeLast(overflowing.count - kept)
    }

    private func payWakes() {
        guard !wakesOwed.isEmpty else { return }
        for loop in wakesOwed { loop.wakeUp() }
        wakesOwed.removeAll(keepingCapacity: true)
    }

    // MARK: Connection bookkeeping

    func adopt(_ connection: Connection) { connectionCount += 1 }

    func forget(_ connection: Connection) { connectionCount -= 1 }

    /// Every live connection of this loop (a snapshot; for draining and tests).
    /// Walks the registrations table: no per-connection index is kept for this.
    public var liveConnections: [Connection] {
        assertInEventLoop()
        return registrations.compactMap { $0.handler as? Connection }
    }
}

private final class ClosureTimer: TimerTarget {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
    func timerFired(tag: Int) { body() }
}

