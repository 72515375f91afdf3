import CSwitchboardShims
import Glibc

/// Delivers SIGTERM, SIGINT and SIGHUP to a loop through a signalfd. Call
/// `SignalSource.blockSignals()` on the main thread before any other thread starts, so no thread
/// takes them the old way.
public final class SignalSource: Selectable {
    public unowned let loop: EventLoop
    private var fd: Int32
    private let onSignal: (Int32) -> Void

    public static func blockSignals() {
        precondition(sb_block_signals() == 0, "pthread_sigmask failed")
    }

    /// Registers on `loop` (loop thread only); `onSignal` runs there with the signal number.
    public init(on loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws(SystemError) {
        self.loop = loop
        self.onSignal = onSignal
        fd = try blockingCall("signalfd") { sb_signalfd() }
        do {
            try loop.register(fd, events: SB_EPOLLIN, handler: self)
        } catch {
            closeDescriptor(fd)
            throw error
        }
    }

    /// Stops delivery; safe to call twice and from inside `onSignal`.
    public func close() {
        guard fd >= 0 else { return }
        loop.deregister(fd)
        closeDescriptor(fd)
        fd = -1
    }

    public func handleEvent(_ mask: UInt32) {
        while fd >= 0 {
            let signal = sb_signalfd_read(fd)
            if signal <= 0 { return }
            onSignal(Int32(signal))
        }
    }
}
