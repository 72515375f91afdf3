import CSwitchboardShims
import Glibc

/// One listening socket on one loop (`SO_REUSEPORT`: every loop has its own socket on the same
/// address and the kernel spreads connections over them). Accepts in bursts; survives running
/// out of descriptors without spinning and without dropping the listener. An admitting listener
/// also stops accepting while its loop holds `maxOpeningConnections` connections that have not
/// finished opening, so a burst of connections waits in the kernel's backlog rather than in
/// half-done handshakes in the node's memory.
public final class Listener: Selectable {
    public unowned let loop: EventLoop
    public let address: SocketAddress
    private var fd: Int32
    private let makeHandler: (EventLoop) -> ConnectionHandler
    private let admitting: Bool
    /// Not accepting for a moment: out of descriptors...
    private var paused = false
    /// ...or waiting for opening connections to finish (admitting listeners).
    private var waitingForAdmission = false
    /// Runs on the loop each time accepting stops for lack of descriptors (for logging).
    public var onDescriptorsExhausted: ((Int32) -> Void)?
    /// A descriptor held in reserve: closed to accept-and-close a connection when the process
    /// is out of descriptors, so the peer gets an answer and the backlog does not fill.
    private var spareFD: Int32 = -1
    static let acceptBurst = 64
    static let exhaustedPauseMilliseconds = 100

    /// Opens, binds and registers a listening socket on `loop`. Loop thread only.
    /// - Parameters:
    ///   - address: where to listen; port 0 picks a free port (read `address.port` after).
    ///   - admitting: count accepted connections as opening until their protocol calls
    ///     `finishedOpening()`, and accept only while the loop admits more (see
    ///     `LoopConfiguration.maxOpeningConnections`).
    ///   - makeHandler: the handler for each accepted connection.
    /// - Throws: `SystemError` naming the failed call (`bind` for an address in use, ...).
    public init(
        address: SocketAddress, on loop: EventLoop, backlog: Int32 = 4096, admitting: Bool = false,
        makeHandler: @escaping (EventLoop) -> ConnectionHandler
    ) throws(SystemError) {
        loop.assertInEventLoop()
        self.loop = loop
        self.admitting = admitting
        self.makeHandler = makeHandler
        let fd = try blockingCall("socket") { sb_socket_stream(address.posixFamily) }
        var bound = address
        do {
            try blockingCall("setsockopt(SO_REUSEPORT)") { sb_set_reuse(fd) }
            try blockingCall("bind") { sb_bind(fd, address.posixFamily, address.bytes, address.port) }
            try blockingCall("listen") { Glibc.listen(fd, backlog) }
            bound.port = UInt16(try blockingCall("getsockname") { sb_local_port(fd) })
        } catch {
            closeDescriptor(fd)
            throw error
        }
        self.fd = fd
        self.address = bound
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        do {
            try loop.register(fd, events: SB_EPOLLIN, handler: self)
        } catch {
            closeDescriptor(fd)
            if spareFD >= 0 { closeDescriptor(spareFD) }
            throw error
        }
    }

    public var isOpen: Bool { fd >= 0 }

    /// Stops listening and closes the socket. Loop thread only.
    public func close() {
        loop.assertInEventLoop()
        guard fd >= 0 else { return }
        loop.deregister(fd)
        closeDescriptor(fd)
        fd = -1
        if waitingForAdmission { loop.admission.stopWaiting(self) }
        if spareFD >= 0 {
            closeDescriptor(spareFD)
            spareFD = -1
        }
    }

    public func handleEvent(_ mask: UInt32) {
        guard fd >= 0, !paused, !waitingForAdmission else { return }
        for _ in 0..<Listener.acceptBurst {
            // A handler may close the listener during the burst.
            guard fd >= 0, !paused else { return }
            if admitting && !loop.admission.admits {
                waitForAdmission()
                return
            }
            let client = sb_accept4(fd)
            if client >= 0 {
                accepted(client)
                continue
            }
            let code = sb_errno()
            switch code {
            case EAGAIN: return
            case EINTR, ECONNABORTED, EPROTO, EPERM: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                descriptorsExhausted()
                onDescriptorsExhausted?(code)
                return
            case EBADF, EFAULT, EINVAL, ENOTSOCK: preconditionFailure("accept4: errno \(code)")
            default:
                return
            }
        }
    }

    private func accepted(_ client: Int32) {
        let counters = loop.counters
        guard loop.group?.acquireConnectionSlot() ?? true else {
            counters.bump(counters.rejectedOverLimit)
            closeDescriptor(client)
            return
        }
        _ = sb_set_nodelay(client)
        do {
            _ = try Connection.adopt(
                fd: client, on: loop, handler: makeHandler(loop), holdsLimitSlot: loop.group != nil, opening: admitting)
            counters.bump(counters.accepted)
        } catch {
            loop.group?.releaseConnectionSlot()
            closeDescriptor(client)
        }
    }

    /// Out of descriptors: answer the oldest waiting peer with a close using the spare, then
    /// stop accepting for a moment so a level-triggered listener does not spin.
    private func descriptorsExhausted() {
        loop.counters.bump(loop.counters.acceptDescriptorExhausted)
        if spareFD >= 0 {
            closeDescriptor(spareFD)
            spareFD = -1
            let client = sb_accept4(fd)
            if client >= 0 { closeDescriptor(client) }
            spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        }
        guard fd >= 0 else { return }
        do {
            try loop.modify(fd, events: 0)
        } catch {
            return  // still registered: the next wake-up tries again
        }
        paused = true
        loop.scheduleTimer(in: Listener.exhaustedPauseMilliseconds) { [weak self] in
            guard let self, self.fd >= 0 else { return }
            self.paused = false
            self.listenAgain()
            if self.spareFD < 0 { self.spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC) }
        }
    }

    /// Stops listening until the loop has room for another opening connection.
    private func waitForAdmission() {
        do {
            try loop.modify(fd, events: 0)
        } catch {
            return  // still registered: the next wake-up tries again
        }
        waitingForAdmission = true
        loop.admission.wait(self)
    }

    /// The loop admits connections again (called by the loop).
    func admissionReopened() {
        waitingForAdmission = false
        listenAgain()
    }

    private func listenAgain() {
        guard fd >= 0, !paused, !waitingForAdmission else { return }
        // Level-triggered: a backlog that filled meanwhile reports at the next wait.
        do {
            try loop.modify(fd, events: SB_EPOLLIN)
        } catch {
            // Nothing else would re-arm the listener: try again shortly.
            paused = true
            loop.scheduleTimer(in: Listener.exhaustedPauseMilliseconds) { [weak self] in
                guard let self else { return }
                self.paused = false
                self.listenAgain()
            }
        }
    }
}
