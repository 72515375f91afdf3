internal import COpenSSL
import Reactor

/// TLS over one stream, done by OpenSSL on memory BIOs so OpenSSL never touches the socket:
/// ciphertext read from the stream beneath goes into the read BIO, whatever OpenSSL writes to
/// the write BIO is queued on the stream beneath. Above, it is itself a `ByteStream` for the
/// protocol it carries (HTTP), which hears `connectionDidOpen` once the handshake is done.
/// Loop thread only.
public final class TLSStream: ConnectionHandler, ByteStream {
    private enum Phase { case handshaking, open, closing, closed }

    private let context: TLSContext
    private let inner: ConnectionHandler
    private let serverName: String?
    private let handshakeMilliseconds: Int
    private var lower: (any ByteStream)?
    /// The loop, kept after close so the protocol above can still ask for it.
    private var openedLoop: EventLoop?
    private var ssl: OpaquePointer?
    private var readBIO: OpaquePointer?
    private var writeBIO: OpaquePointer?
    private var phase = Phase.handshaking
    /// Plaintext written during this iteration, encrypted at flush time so a burst of small
    /// writes becomes one record, not one each.
    private var pending: [UInt8] = []
    private var sentCloseNotify = false
    /// True once `inner` heard `connectionDidOpen` (and so must hear `connectionDidClose`).
    private var announced = false
    /// Why the handshake failed, for the caller's log (nil while it has not).
    public private(set) var failure: String?
    /// Counts TLS handshakes done and failed (shared per loop by whoever makes the streams).
    public var onHandshake: ((Bool) -> Void)?

    static let retainedPlaintextCapacity = 64 * 1024
    /// Plaintext gathered beyond this is encrypted and queued at once, so the connection's
    /// watermarks and hard limit see it (a peer pipelining requests cannot grow `pending`).
    static let eagerEncryptBytes = 16 * 1024

    /// - Parameters:
    ///   - context: a server or client context.
    ///   - inner: the protocol carried inside TLS.
    ///   - serverName: the name a client sends (SNI) and checks the certificate against.
    ///   - handshakeMilliseconds: the handshake must finish by then or the connection closes.
    public init(context: TLSContext, inner: ConnectionHandler, serverName: String? = nil, handshakeMilliseconds: Int = 10_000) {
        self.context = context
        self.inner = inner
        self.serverName = serverName
        self.handshakeMilliseconds = handshakeMilliseconds
    }

    // MARK: The stream beneath

    public func connectionDidOpen(_ connection: any ByteStream) {
        lower = connection
        openedLoop = connection.loop
        ERR_clear_error()
        guard let ssl = context.makeSession() else {
            failure = TLSError.drainQueue()
            connection.close(.local)
            return
        }
        guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            failure = TLSError.drainQueue()
            SSL_free(ssl)
            connection.close(.local)
            return
        }
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        SSL_set_bio(ssl, readBIO, writeBIO)  // the SSL object owns both BIOs from here
        connection.setDeadline(milliseconds: handshakeMilliseconds)
        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                guard sb_tls_set_server_name(ssl, serverName) == 1, SSL_set1_host(ssl, serverName) == 1 else {
                    failure = "cannot use server name '\(serverName)': \(TLSError.drainQueue())"
                    connection.close(.local)
                    return
                }
            }
            continueHandshake()
        }
    }

    public func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        guard let ssl, phase == .handshaking || phase == .open else { return }
        var offset = 0
        while offset < bytes.count {
            let n = BIO_write(readBIO, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
            guard n > 0 else {
                failure = TLSError.drainQueue()
                connection.close(.local)
                return
            }
            offset += Int(n)
        }
        if phase == .handshaking {
            continueHandshake()
            guard phase == .open else { return }
        }
        // The ciphertext now lives in the read BIO, so the loop's read buffer is free again:
        // plaintext lands there and is handed up in place.
        let buffer = connection.loop.readBuffer
        while phase == .open {
            // SSL_get_error reads this thread's error queue, which every connection of the loop
            // shares: it must hold nothing from before the call.
            ERR_clear_error()
            let n = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
            if n > 0 {
                inner.connection(self, didRead: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(n)]))
                continue
            }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                flushRecords()
                return
            case SSL_ERROR_ZERO_RETURN:
                // close_notify: the peer finished sending, as a TCP half-close would say.
                closeWhenFlushed(.peerClosed)
                return
            default:
                failure = TLSError.drainQueue()
                closeLower(.local)
                return
            }
        }
    }

    private func continueHandshake() {
        guard let ssl, let lower else { return }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            phase = .open
            flushRecords()
            guard phase == .open else { return }  // writing the last flight closed the connection
            lower.clearDeadline()
            onHandshake?(true)
            announced = true
            inner.connectionDidOpen(self)
            return
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            flushRecords()
        default:
            // Send OpenSSL's alert if it wrote one, then close.
            failure = TLSError.drainQueue()
            onHandshake?(false)
            flushRecords()
            phase = .closing
            lower.closeWhenFlushed(.local)
        }
    }

    /// Moves whatever OpenSSL wrote (records, alerts) to the stream beneath, without a copy.
    private func flushRecords() {
        guard let writeBIO, let lower else { return }
        var data: UnsafeMutablePointer<CChar>?
        let count = sb_tls_bio_pending_data(writeBIO, &data)
        guard count > 0, let data else { return }
        lower.write(UnsafeRawBufferPointer(start: data, count: count))
        // The write may have closed the connection (hard limit), and the close frees the BIOs.
        if let writeBIO = self.writeBIO { _ = sb_tls_bio_reset(writeBIO) }
    }

    public func connectionWillFlush(_ connection: any ByteStream) {
        if announced && (phase == .open || phase == .closing) { inner.connectionWillFlush(self) }
        encryptPending()
        // Closing, whoever started it (the protocol above, or the peer's FIN beneath): say so.
        let closing = phase == .closing || (phase == .open && !connection.isOpen)
        if closing, !sentCloseNotify, let ssl, SSL_is_init_finished(ssl) == 1 {
            sentCloseNotify = true
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            _ = TLSError.drainQueue()
        }
        flushRecords()
    }

    private func encryptPending() {
        guard !pending.isEmpty, let ssl else { return }
        ERR_clear_error()
        let ok = pending.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = SSL_write(ssl, raw.baseAddress! + offset, Int32(min(raw.count - offset, 1 << 30)))
                guard n > 0 else { return false }  // memory BIOs never refuse: this is a real failure
                offset += Int(n)
            }
            return true
        }
        if pending.capacity > TLSStream.retainedPlaintextCapacity {
            pending = []
        } else {
            pending.removeAll(keepingCapacity: true)
        }
        if !ok {
            failure = TLSError.drainQueue()
            closeLower(.local)
        }
    }

    public func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        if phase == .handshaking && failure == nil {
            // The peer went away or stalled past the deadline before the handshake finished.
            failure = "TLS handshake not finished (\(reason))"
            onHandshake?(false)
        }
        phase = .closed
        if let ssl { SSL_free(ssl) }
        ssl = nil
        readBIO = nil
        writeBIO = nil
        pending = []
        if announced { inner.connectionDidClose(self, reason: reason) }
        lower = nil
    }

    public func connectionShouldDrain(_ connection: any ByteStream) {
        if phase == .open { inner.connectionShouldDrain(self) } else { connection.close(.draining) }
    }

    public func connectionIdleTimedOut(_ connection: any ByteStream) {
        if phase == .open { inner.connectionIdleTimedOut(self) } else { connection.close(.idleTimeout) }
    }

    private func closeLower(_ reason: CloseReason) {
        lower?.close(reason)
    }

    // MARK: The stream above

    public var loop: EventLoop { openedLoop! }
    public var outboundBytes: Int { (lower?.outboundBytes ?? 0) + pending.count }
    public var isOpen: Bool { phase == .open && lower?.isOpen == true }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard phase == .open || phase == .closing, bytes.count > 0 else { return }
        pending.append(contentsOf: bytes)
        if pending.count >= TLSStream.eagerEncryptBytes {
            encryptPending()
            flushRecords()
        } else {
            lower?.requestFlush()
        }
    }

    public func requestFlush() { lower?.requestFlush() }

    public func closeWhenFlushed(_ reason: CloseReason) {
        guard phase == .open || phase == .handshaking else { return }
        phase = .closing
        lower?.closeWhenFlushed(reason)
    }

    public func close(_ reason: CloseReason) { closeLower(reason) }
    public func setDeadline(milliseconds: Int) { lower?.setDeadline(milliseconds: milliseconds) }
    public func clearDeadline() { lower?.clearDeadline() }
    public func finishedOpening() { lower?.finishedOpening() }
    public func openingWaitsOnPeer(_ waits: Bool) { lower?.openingWaitsOnPeer(waits) }
}
