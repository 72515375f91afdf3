import CSwitchboardShims
import Glibc

/// Why a connection closed.
public enum CloseReason: Sendable, Equatable, CustomStringConvertible {
    /// The peer closed its side and everything queued for it was sent.
    case peerClosed
    /// The peer reset the connection or a socket error ended it (errno).
    case reset(Int32)
    /// Nothing was read for longer than the idle timeout.
    case idleTimeout
    /// A deadline set by the protocol layer (e.g. the handshake's) passed.
    case deadline
    /// Closed by this side.
    case local
    /// Closed because the node is draining.
    case draining
    /// The peer did not read fast enough and its outbound queue passed the hard limit.
    case outboundOverflow
    /// An outgoing connect failed (errno).
    case connectFailed(Int32)

    public var description: String {
        switch self {
        case .peerClosed: return "peer_closed"
        case .reset(let code): return "reset(errno \(code))"
        case .idleTimeout: return "idle_timeout"
        case .deadline: return "deadline"
        case .local: return "local"
        case .draining: return "draining"
        case .outboundOverflow: return "outbound_overflow"
        case .connectFailed(let code): return "connect_failed(errno \(code))"
        }
    }
}

/// A two-way byte stream on one loop, as a protocol layer sees it: a TCP `Connection`, or a
/// stream carried inside another protocol (TLS records, the HTTP fallback's chunked body). Loop
/// thread only.
///
/// Carriers that frame what they carry (the HTTP fallback puts each write in one chunk) keep the
/// bytes of one `write` call together, so a protocol layer writes one unit of its own per call.
public protocol ByteStream: AnyObject {
    var loop: EventLoop { get }
    /// `loop.now` and `loop.id` without handing out a reference to the loop (a retain and a
    /// release through the protocol each time: several per relayed message).
    var loopNow: UInt64 { get }
    var loopID: Int { get }
    /// `loop.wallMilliseconds`, the same way.
    var loopWallMilliseconds: UInt64 { get }
    /// Bytes queued and not yet written to the socket beneath.
    var outboundBytes: Int { get }
    var isOpen: Bool { get }
    /// Queues bytes for the peer; see `Connection.write`.
    func write(_ bytes: UnsafeRawBufferPointer)
    /// Asks for `connectionWillFlush` and a write at the end of this loop iteration.
    func requestFlush()
    /// Stops reading and closes once everything queued has been written.
    func closeWhenFlushed(_ reason: CloseReason)
    /// Closes now, dropping anything unsent.
    func close(_ reason: CloseReason)
    /// Closes with `.deadline` unless `clearDeadline()` comes first.
    func setDeadline(milliseconds: Int)
    func clearDeadline()
    /// The protocol has finished opening the stream (handshake, login): it no longer counts
    /// against its loop's `maxOpeningConnections`. Idempotent; closing has the same effect.
    func finishedOpening()
    /// While opening: whether the stream waits on its peer (the default) or on this node's own
    /// work (a store lookup). Under admission pressure only a stream that waits on its peer and
    /// has sent nothing for the grace is closed; waiting on the peer again restarts that clock.
    func openingWaitsOnPeer(_ waits: Bool)
}

extension ByteStream {
    public var loopNow: UInt64 { loop.now }
    public var loopID: Int { loop.id }
    public var loopWallMilliseconds: UInt64 { loop.wallMilliseconds }
    /// Streams carried inside another protocol are admitted by their carrier.
    public func finishedOpening() {}
    public func openingWaitsOnPeer(_ waits: Bool) {}
    public func write(_ bytes: UnsafeMutableRawBufferPointer) { write(UnsafeRawBufferPointer(bytes)) }
    public func write(_ bytes: [UInt8]) { bytes.withUnsafeBytes { write($0) } }
    public func closeWhenFlushed() { closeWhenFlushed(.local) }
    public func close() { close(.local) }
}

/// What a protocol layer implements to use a stream. Runs on the stream's loop.
public protocol ConnectionHandler: AnyObject {
    /// The stream is established (accepted, an outgoing connect completed, a TLS handshake
    /// finished, an HTTP request became a stream).
    func connectionDidOpen(_ connection: any ByteStream)
    /// Bytes arrived. `bytes` points into a buffer valid only for the duration of the call:
    /// copy what must be kept. The handler may modify them in place (decrypt where they lie).
    func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer)
    /// The stream is closed; it will deliver no more callbacks.
    func connectionDidClose(_ connection: any ByteStream, reason: CloseReason)
    /// The node is draining: finish what is in flight and close. The default closes once the
    /// outbound queue is flushed.
    func connectionShouldDrain(_ connection: any ByteStream)
    /// Nothing was read for the idle timeout. The default closes at once with `.idleTimeout`;
    /// a protocol may say goodbye first (and then must close, e.g. `closeWhenFlushed`).
    func connectionIdleTimedOut(_ connection: any ByteStream)
    /// The stream is about to write its queue (once per loop iteration with pending output, or
    /// after `requestFlush()`): the last moment to add bytes to this write, e.g. to seal the
    /// stanzas gathered during the iteration into one encrypted frame.
    func connectionWillFlush(_ connection: any ByteStream)
}

extension ConnectionHandler {
    public func connectionDidOpen(_ connection: any ByteStream) {}
    public func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {}
    public func connectionShouldDrain(_ connection: any ByteStream) { connection.closeWhenFlushed(.draining) }
    public func connectionWillFlush(_ connection: any ByteStream) {}
    public func connectionIdleTimedOut(_ connection: any ByteStream) { connection.close(.idleTimeout) }
}

/// A non-blocking TCP connection owned by one loop: reads into the loop's shared buffer, queues
/// writes in pooled chunks flushed with `writev` once per loop iteration, applies back-pressure
/// between its outbound queue and its reads, and enforces idle and protocol deadlines.
public final class Connection: Selectable, TimerTarget, ByteStream {
    /// `closing`: writing out what is queued; `lingering`: our side is shut down (FIN sent) and
    /// we read and discard until the peer closes, so unread input cannot turn our close into a
    /// reset that would destroy the last bytes in flight.
    private enum State { case connecting, open, closing, lingering, closed }
    private enum TimerTag { static let idle = 0, deadline = 1, linger = 2 }
    /// How long a closing connection waits for the peer's FIN before closing anyway.
    static let lingerMilliseconds = 2_000
    /// How long `closeWhenFlushed` waits for the queue to drain to a peer that does not read.
    static let closingFlushMilliseconds = 5_000

    // Stored properties are declared widest first and the flags last, so that they pack without
    // padding (a class is laid out in declaration order): a node holds many idle connections.

    /// `unowned(unsafe)`: a loop outlives every connection it holds (loops live until the process
    /// ends), and a checked reference costs an atomic retain and release on every use.
    public unowned(unsafe) let loop: EventLoop
    public var loopNow: UInt64 { loop.now }
    public var loopID: Int { loop.id }
    /// Borrowed: calling the loop's getter through the unowned(unsafe) reference retained it.
    public var loopWallMilliseconds: UInt64 { Unmanaged.passUnretained(loop)._withUnsafeGuaranteedRef { $0.wallMilliseconds } }
    public var handler: ConnectionHandler
    private var outbound = OutboundQueue()
    private var idleTimer = TimerHandle.none
    private var deadlineTimer = TimerHandle.none
    private var lastActivity: UInt64
    private var closingReason = CloseReason.local
    public let fd: Int32
    private var registeredMask: UInt32 = 0
    private var state: State
    private var readPaused = false
    private var readShut = false
    private var wantWritable = false
    private let holdsLimitSlot: Bool
    /// Accepted by an admitting listener and not yet `finishedOpening()`.
    private var opening = false
    /// While opening, waiting on the peer rather than on the node (`openingWaitsOnPeer`).
    private var openingOnPeer = true
    var inFlushList = false
    private var flushing = false
    var inReadyList = false
    /// The peer shut its side (EPOLLRDHUP): only the rest of the stream and its end remain.
    private var peerHungUp = false
    /// Read until the socket is empty next time: edges were skipped (paused, or the per-wake-up
    /// cap was hit), so a short read cannot be trusted to mean "empty".
    var mustEmptySocket = false

    private var edgeTriggered: Bool { loop.configuration.trigger == .edge }

    init(loop: EventLoop, fd: Int32, handler: ConnectionHandler, connecting: Bool, holdsLimitSlot: Bool) {
        self.loop = loop
        self.fd = fd
        self.handler = handler
        self.state = connecting ? .connecting : .open
        self.lastActivity = loop.now
        self.holdsLimitSlot = holdsLimitSlot
    }

    /// Registers an accepted descriptor with its loop and tells the handler.
    static func adopt(
        fd: Int32, on loop: EventLoop, handler: ConnectionHandler, holdsLimitSlot: Bool, opening: Bool
    ) throws(SystemError) -> Connection {
        let connection = Connection(loop: loop, fd: fd, handler: handler, connecting: false, holdsLimitSlot: holdsLimitSlot)
        try connection.start()
        if opening {
            connection.opening = true
            loop.admission.started(connection)
        }
        handler.connectionDidOpen(connection)
        return connection
    }

    /// Opens an outgoing connection from `loop`; the handler hears `connectionDidOpen` or
    /// `connectionDidClose(.connectFailed)`. Loop thread only.
    /// - Parameter source: an address to bind before connecting (spreads load over loopback
    ///   addresses), or nil.
    public static func connect(
        to address: SocketAddress, from source: SocketAddress? = nil, on loop: EventLoop,
        handler: ConnectionHandler
    ) throws(SystemError) -> Connection {
        loop.assertInEventLoop()
        let fd = try blockingCall("socket") { sb_socket_stream(address.posixFamily) }
        do throws(SystemError) {
            if let source {
                _ = sb_set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)
                // Port 0: the port is chosen at connect, by the whole address pair, instead of
                // bind reserving one outright — a search over the source's ports that slows as
                // they fill (5 ms per bind at 7,000 connections from one address, measured).
                if source.port == 0 { _ = sb_set_int_option(fd, Int32(IPPROTO_IP), IP_BIND_ADDRESS_NO_PORT, 1) }
                try blockingCall("bind") { sb_bind(fd, source.posixFamily, source.bytes, source.port) }
            }
            _ = sb_set_nodelay(fd)
            let result = sb_connect(fd, address.posixFamily, address.bytes, address.port)
            if result != 0 && sb_errno() != EINPROGRESS {
                throw SystemError(call: "connect", errno: sb_errno())
            }
            let connection = Connection(loop: loop, fd: fd, handler: handler, connecting: result != 0, holdsLimitSlot: false)
            try connection.start()
            if result == 0 { handler.connectionDidOpen(connection) }
            return connection
        } catch {
            closeDescriptor(fd)
            throw error
        }
    }

    private func start() throws(SystemError) {
        let mask: UInt32
        if edgeTriggered {
            mask = SB_EPOLLIN | SB_EPOLLOUT | SB_EPOLLRDHUP | SB_EPOLLET
        } else {
            mask = state == .connecting ? SB_EPOLLOUT : SB_EPOLLIN | SB_EPOLLRDHUP
        }
        try loop.register(fd, events: mask, handler: self)
        registeredMask = mask
        loop.adopt(self)
        let idle = loop.configuration.idleTimeoutMilliseconds
        if idle > 0 { idleTimer = loop.scheduleTimer(in: idle, target: self, tag: TimerTag.idle) }
    }

    // MARK: State the protocol layer can read

    /// Bytes queued for the peer and not yet accepted by the kernel.
    public var outboundBytes: Int { outbound.count }
    /// True while reads are paused because the outbound queue is above the high watermark.
    public var isReadPaused: Bool { readPaused }
    public var isClosed: Bool { state == .closed }
    public var isOpen: Bool { state == .open }

    // MARK: Events

    public func handleEvent(_ mask: UInt32) {
        if state == .connecting {
            finishConnect()
            return
        }
        if mask & SB_EPOLLRDHUP != 0 { peerHungUp = true }
        if state == .lingering {
            if mask & (SB_EPOLLHUP | SB_EPOLLERR) != 0 { close(closingReason) } else { discardInput() }
            return
        }
        if mask & (SB_EPOLLHUP | SB_EPOLLERR) != 0 && (readPaused || readShut) {
            // Nothing more can be read or delivered; a level-triggered HUP would repeat forever.
            close(.reset(readSocketError()))
            return
        }
        if mask & (SB_EPOLLIN | SB_EPOLLHUP | SB_EPOLLERR | SB_EPOLLRDHUP) != 0 {
            // After a hang-up no new edge will come: read on to the end of the stream.
            readAvailable(toEndOfStream: mask & (SB_EPOLLHUP | SB_EPOLLERR) != 0)
        }
        if mask & SB_EPOLLOUT != 0 && state != .closed && !outbound.isEmpty {
            flush()
        }
    }

    private func finishConnect() {
        let error = sb_socket_error(fd)
        guard error == 0 else {
            close(.connectFailed(error))
            return
        }
        state = .open
        lastActivity = loop.now
        updateInterest()
        handler.connectionDidOpen(self)
        if edgeTriggered && state == .open { readAvailable() }
    }

    private func readSocketError() -> Int32 {
        let error = sb_socket_error(fd)
        return error > 0 ? error : ECONNRESET
    }

    /// Reads what is available, up to the per-wake-up cap. A short read ends the round (the
    /// socket is empty and new data brings a new edge) unless the peer has hung up.
    func readAvailable(toEndOfStream: Bool = false) {
        if state == .lingering {
            discardInput()
            return
        }
        guard state == .open, !readPaused, !readShut else { return }
        let untilEmpty = toEndOfStream || peerHungUp || mustEmptySocket
        mustEmptySocket = false
        let buffer = loop.readBuffer
        var reads = 0
        while reads < loop.configuration.maxReadsPerWakeup {
            let n = sb_read(fd, buffer.baseAddress, buffer.count)
            if n > 0 {
                reads += 1
                lastActivity = loop.now
                loop.counters.bump(loop.counters.bytesRead, by: n)
                handler.connection(self, didRead: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
                if state != .open || readPaused { return }
                if n < buffer.count && !untilEmpty { return }
                continue
            }
            if n == 0 {
                readShut = true
                updateInterest()
                closeWhenFlushed(.peerClosed)
                return
            }
            let code = sb_errno()
            switch code {
            case EINTR: continue
            case EAGAIN: return
            case EBADF, EFAULT: preconditionFailure("read: errno \(code)")
            default:
                close(.reset(code))
                return
            }
        }
        // Cap reached with data possibly left: come back next iteration, after the others.
        if edgeTriggered {
            mustEmptySocket = true
            markReady()
        }
    }

    /// Lingering: read and drop input until EOF (then close) or until the socket is empty.
    private func discardInput() {
        let buffer = loop.readBuffer
        for _ in 0..<loop.configuration.maxReadsPerWakeup {
            let n = sb_read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { continue }
            if n < 0 && sb_errno() == EINTR { continue }
            if n < 0 && sb_errno() == EAGAIN { return }
            close(closingReason)  // EOF or an error: either way we are done
            return
        }
        if edgeTriggered { markReady() }
    }

    private func markReady() {
        if !inReadyList {
            inReadyList = true
            loop.readyList.append(self)
        }
    }

    // MARK: Writing

    /// Queues bytes for the peer; they are sent at the end of the loop iteration, together with
    /// everything else queued meanwhile. Loop thread only.
    /// Also allowed while closing (`closeWhenFlushed`), so a protocol's last words — typically
    /// sealed in `connectionWillFlush` — still go out.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state == .open || state == .closing else { return }
        outbound.append(bytes, pool: loop.chunks)
        let configuration = loop.configuration
        if outbound.count > configuration.outboundHardLimit {
            close(.outboundOverflow)
            return
        }
        if outbound.count > configuration.outboundHighWatermark && !readPaused {
            readPaused = true
            loop.counters.bump(loop.counters.readPauses)
            updateInterest()
        }
        scheduleFlush()
    }

    /// Asks for `connectionWillFlush` and a write at the end of this loop iteration, for a
    /// protocol layer that gathers output itself.
    public func requestFlush() {
        guard state == .open else { return }
        scheduleFlush()
    }

    private func scheduleFlush() {
        if !inFlushList && !flushing {
            inFlushList = true
            loop.flushList.append(self)
        }
    }

    /// Writes queued bytes, up to the per-wake-up cap.
    func flush() {
        guard state == .open || state == .closing else { return }
        flushing = true
        handler.connectionWillFlush(self)
        flushing = false
        guard state == .open || state == .closing else { return }
        var writes = 0
        var blocked = false
        while !outbound.isEmpty && writes < loop.configuration.maxWritesPerWakeup {
            let count = outbound.gather(into: loop.iovecs, max: EventLoop.iovecCapacity)
            var offered = 0
            for index in 0..<count { offered += loop.iovecs[index].length }
            let n = sb_writev(fd, loop.iovecs, Int32(count))
            if n >= 0 {
                writes += 1
                outbound.consume(n, pool: loop.chunks)
                loop.counters.bump(loop.counters.bytesWritten, by: n)
                if n < offered {
                    blocked = true
                    break
                }
                continue
            }
            let code = sb_errno()
            switch code {
            case EINTR: continue
            case EAGAIN:
                blocked = true
            case EBADF, EFAULT: preconditionFailure("writev: errno \(code)")
            default:
                close(.reset(code))
                return
            }
            break
        }
        if outbound.isEmpty {
            if state == .closing {
                finishClosing()
                return
            }
            setWantWritable(false)
        } else if blocked {
            setWantWritable(true)
        } else {
            scheduleFlush()  // per-wake-up cap: continue next iteration
        }
        if readPaused && state == .open && outbound.count < loop.configuration.outboundLowWatermark {
            readPaused = false
            updateInterest()
            if edgeTriggered {  // edges that came while paused were ignored
                mustEmptySocket = true
                markReady()
            }
        }
    }

    private func setWantWritable(_ want: Bool) {
        guard wantWritable != want else { return }
        wantWritable = want
        updateInterest()
    }

    /// Everything queued was written: close at once if the peer already closed its side,
    /// otherwise send FIN and linger for the peer's.
    private func finishClosing() {
        if readShut || sb_shutdown_write(fd) != 0 {
            close(closingReason)
            return
        }
        state = .lingering
        wantWritable = false
        loop.cancelTimer(deadlineTimer)
        deadlineTimer = loop.scheduleTimer(in: Connection.lingerMilliseconds, target: self, tag: TimerTag.linger)
        updateInterest()
        if edgeTriggered { markReady() }
    }

    /// Level-triggered mode changes the epoll interest set with the state; edge-triggered mode
    /// registers everything once and ignores edges it does not need.
    private func updateInterest() {
        guard !edgeTriggered, state != .closed else { return }
        var mask: UInt32 = 0
        if (state == .open && !readPaused && !readShut) || state == .lingering { mask |= SB_EPOLLIN | SB_EPOLLRDHUP }
        if wantWritable || state == .connecting { mask |= SB_EPOLLOUT }
        guard mask != registeredMask else { return }
        do {
            try loop.modify(fd, events: mask)
            registeredMask = mask
        } catch {
            close(.reset(error.errno))
        }
    }

    // MARK: Closing

    /// Stops reading and closes once everything queued has been written (or at once if
    /// nothing is queued).
    public func closeWhenFlushed(_ reason: CloseReason = .local) {
        switch state {
        case .closed, .closing, .lingering: return
        case .connecting:
            close(reason)
        case .open:
            // Through the flush path even when nothing is queued, so the handler's
            // `connectionWillFlush` can add its last words. A peer that never reads cannot keep
            // us here: the linger timer closes after `closingFlushMilliseconds`.
            closingReason = reason
            state = .closing
            loop.cancelTimer(deadlineTimer)
            deadlineTimer = loop.scheduleTimer(in: Connection.closingFlushMilliseconds, target: self, tag: TimerTag.linger)
            updateInterest()
            scheduleFlush()
        }
    }

    /// Closes now, dropping anything unsent. The handler hears `connectionDidClose` once.
    public func close(_ reason: CloseReason = .local) {
        guard state != .closed else { return }
        state = .closed
        loop.deregister(fd)
        closeDescriptor(fd)
        loop.cancelTimer(idleTimer)
        loop.cancelTimer(deadlineTimer)
        outbound.release(pool: loop.chunks)
        loop.forget(self)
        loop.counters.bump(loop.counters.closed)
        if holdsLimitSlot { loop.group?.releaseConnectionSlot() }
        finishedOpening()
        handler.connectionDidClose(self, reason: reason)
    }

    // MARK: Deadlines

    /// Closes the connection with `.deadline` unless `clearDeadline()` comes first.
    public func setDeadline(milliseconds: Int) {
        guard state == .open || state == .connecting else { return }
        loop.cancelTimer(deadlineTimer)
        deadlineTimer = loop.scheduleTimer(in: milliseconds, target: self, tag: TimerTag.deadline)
    }

    public func clearDeadline() {
        guard state == .open || state == .connecting else { return }
        loop.cancelTimer(deadlineTimer)
        deadlineTimer = .none
    }

    /// Accepted by an admitting listener and still in its handshake.
    var isOpening: Bool { opening }

    /// Opening, waiting on its peer, and nothing read from it for `milliseconds`.
    func openingStalled(for milliseconds: UInt64) -> Bool {
        opening && openingOnPeer && loop.now &- lastActivity >= milliseconds
    }

    public func openingWaitsOnPeer(_ waits: Bool) {
        guard opening else { return }
        openingOnPeer = waits
        if waits { lastActivity = loop.now }  // the peer's turn starts now
    }

    public func finishedOpening() {
        guard opening else { return }
        opening = false
        loop.admission.finished()
    }

    public func timerFired(tag: Int) {
        switch tag {
        case TimerTag.deadline:
            deadlineTimer = .none
            close(.deadline)
        case TimerTag.linger:
            deadlineTimer = .none
            close(closingReason)
        default:
            // Reads do not touch the wheel; the timer checks the last activity when it fires.
            let idle = UInt64(loop.configuration.idleTimeoutMilliseconds)
            let elapsed = loop.now &- lastActivity
            if elapsed >= idle {
                idleTimer = .none
                if state == .open { handler.connectionIdleTimedOut(self) } else { close(.idleTimeout) }
            } else {
                idleTimer = loop.scheduleTimer(in: Int(idle - elapsed), target: self, tag: TimerTag.idle)
            }
        }
    }
}
