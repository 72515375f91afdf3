import CSwitchboardShims
import Glibc

/// One listening socket on one loop (`SO_REUSEPORT`: every loop has its own socket on the same
/// address and the kernel spreads connections over them). Accepts in bursts; survives running
/// out of descriptors without spinning and without dropping the listener.
public final class Listener: Selectable {
    public unowned let loop: EventLoop
    public let address: SocketAddress
    private var fd: Int32
    private let makeHandler: (EventLoop) -> ConnectionHandler
    private var paused = false
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
    ///   - makeHandler: the handler for each accepted connection.
    /// - Throws: `SystemError` naming the failed call (`bind` for an address in use, ...).
    public init(
        address: SocketAddress, on loop: EventLoop, backlog: Int32 = 4096,
        makeHandler: @escaping (EventLoop) -> ConnectionHandler
    ) throws(SystemError) {
        loop.assertInEventLoop()
        self.loop = loop
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
        if spareFD >= 0 {
            closeDescriptor(spareFD)
            spareFD = -1
        }
    }

    public func handleEvent(_ mask: UInt32) {
        guard fd >= 0, !paused else { return }
        for _ in 0..<Listener.acceptBurst {
            // A handler may close the listener during the burst.
            guard fd >= 0, !paused else { return }
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
            _ = try Connection.adopt(fd: client, on: loop, handler: makeHandler(loop), holdsLimitSlot: loop.group != nil)
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
            _ = try? self.loop.modify(self.fd, events: SB_EPOLLIN)
            if self.spareFD < 0 { self.spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC) }
        }
    }
}
