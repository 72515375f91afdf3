import Reactor

/// The client side of a chunked stream (PROTOCOL.md section 24): sends the `POST` head, then
/// carries the protocol above as one chunk per `write`, checks the response head and hands the
/// de-chunked response body up. A `ByteStream` for the protocol above, a handler for the stream
/// beneath (a TCP connection or a `TLSStream`). Loop thread only.
public final class HTTPStreamClient: ConnectionHandler, ByteStream {
    private enum Phase { case connecting, awaitingHead, streaming, ending, closed }

    private let inner: ConnectionHandler
    private let requestHead: [UInt8]
    private var lower: (any ByteStream)?
    /// The loop, kept after close so the protocol above can still ask for it.
    private var openedLoop: EventLoop?
    private var phase = Phase.connecting
    private var head: [UInt8] = []
    private var chunks = ChunkedDecoder()
    private var sentLastChunk = false
    /// Why the node refused the stream or answered something else than a stream.
    public private(set) var failure: String?

    /// - Parameters:
    ///   - host: the `Host` header (the name or address the client dialled).
    ///   - path: the stream route.
    ///   - contentType: the stream's media type.
    public init(host: String, path: String = "/v1/stream", contentType: String = "application/x-switchboard", inner: ConnectionHandler) {
        self.inner = inner
        requestHead = Array("POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
    }

    public func connectionDidOpen(_ connection: any ByteStream) {
        lower = connection
        openedLoop = connection.loop
        connection.write(requestHead)
        phase = .awaitingHead
        // The upload may start at once; the response head is checked when it comes.
        inner.connectionDidOpen(self)
    }

    public func connection(_ connection: any ByteStream, didRead bytes: UnsafeMutableRawBufferPointer) {
        var input = bytes
        if phase == .awaitingHead {
            guard readHead(&input) else { return }
        }
        while phase == .streaming || phase == .ending {
            do {
                switch try chunks.next(&input) {
                case nil:
                    return
                case .data(let slice):
                    inner.connection(self, didRead: slice)
                case .end:
                    closeWhenFlushed(.peerClosed)
                    return
                }
            } catch {
                fail("malformed chunk from the node: \(error.reason)")
                return
            }
        }
    }

    /// Reads the response head (skipping interim 1xx heads); true once streaming.
    private func readHead(_ input: inout UnsafeMutableRawBufferPointer) -> Bool {
        while phase == .awaitingHead, let byte = input.first {
            input = UnsafeMutableRawBufferPointer(rebasing: input[1...])
            head.append(byte)
            guard head.count <= HTTPLimits.maxHeadBytes else {
                fail("response head over \(HTTPLimits.maxHeadBytes) bytes")
                return false
            }
            guard head.count >= 4, head.suffix(4).elementsEqual([13, 10, 13, 10]) else { continue }
            let text = String(decoding: head, as: UTF8.self)
            head = []
            let lines = text.split(separator: "\r\n")
            let status = lines.first.flatMap { line -> Int? in
                let parts = line.split(separator: " ", maxSplits: 2)
                guard parts.count >= 2, parts[0].hasPrefix("HTTP/1.") else { return nil }
                return Int(parts[1])
            }
            guard let status else {
                fail("not an HTTP response")
                return false
            }
            if status >= 100 && status < 200 { continue }
            let chunked = lines.dropFirst().contains { line in
                let pair = line.split(separator: ":", maxSplits: 1)
                return pair.count == 2 && pair[0].lowercased() == "transfer-encoding"
                    && pair[1].trimmingSpaces().lowercased() == "chunked"
            }
            guard status == 200, chunked else {
                fail("the node answered \(lines.first.map(String.init) ?? "?") instead of a stream")
                return false
            }
            phase = .streaming
        }
        return phase == .streaming
    }

    private func fail(_ why: String) {
        failure = why
        phase = .closed
        lower?.close(.local)
    }

    public func connectionWillFlush(_ connection: any ByteStream) {
        guard phase != .connecting else { return }
        inner.connectionWillFlush(self)
        if (phase == .ending || !connection.isOpen) && !sentLastChunk {
            sentLastChunk = true
            connection.write(ChunkedEncoder.last)
        }
    }

    public func connectionDidClose(_ connection: any ByteStream, reason: CloseReason) {
        let announced = phase != .connecting
        phase = .closed
        if announced { inner.connectionDidClose(self, reason: reason) }
        lower = nil
    }

    public func connectionShouldDrain(_ connection: any ByteStream) { inner.connectionShouldDrain(self) }
    public func connectionIdleTimedOut(_ connection: any ByteStream) { inner.connectionIdleTimedOut(self) }

    // MARK: The stream above

    public var loop: EventLoop { openedLoop! }
    public var outboundBytes: Int { lower?.outboundBytes ?? 0 }
    public var isOpen: Bool { phase == .awaitingHead || phase == .streaming }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard let lower, phase == .awaitingHead || phase == .streaming || phase == .ending, !sentLastChunk, bytes.count > 0 else { return }
        writeChunk(bytes, to: lower)
    }

    public func requestFlush() { lower?.requestFlush() }

    public func closeWhenFlushed(_ reason: CloseReason) {
        guard phase == .awaitingHead || phase == .streaming else { return }
        phase = .ending
        lower?.closeWhenFlushed(reason)
    }

    public func close(_ reason: CloseReason) { lower?.close(reason) }
    public func setDeadline(milliseconds: Int) { lower?.setDeadline(milliseconds: milliseconds) }
    public func clearDeadline() { lower?.clearDeadline() }
}
