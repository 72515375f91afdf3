import Reactor

/// The stream a `/v1/stream`-style route carries: what the protocol above writes goes out as
/// one chunk per `write` call; what the client uploads arrives de-chunked. Closing it ends the
/// response with the last chunk and closes the connection beneath. Loop thread only.
final class ChunkedBodyStream: ByteStream {
    private unowned let owner: HTTPServerConnection
    private let lower: any ByteStream
    /// Set once the protocol above asked to close: its last words still go out, then the last chunk.
    private(set) var ending = false
    private(set) var finished = false

    init(owner: HTTPServerConnection, lower: any ByteStream) {
        self.owner = owner
        self.lower = lower
    }

    var loop: EventLoop { lower.loop }
    var outboundBytes: Int { lower.outboundBytes }
    var isOpen: Bool { lower.isOpen && !ending }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard !finished, bytes.count > 0 else { return }
        writeChunk(bytes, to: lower)
    }

    /// The last chunk, once, after the last words.
    func finish() {
        guard !finished else { return }
        finished = true
        lower.write(ChunkedEncoder.last)
    }

    func requestFlush() { lower.requestFlush() }

    func closeWhenFlushed(_ reason: CloseReason) {
        guard !ending else { return }
        ending = true
        lower.closeWhenFlushed(reason)
    }

    func close(_ reason: CloseReason) { lower.close(reason) }
    func setDeadline(milliseconds: Int) { lower.setDeadline(milliseconds: milliseconds) }
    func clearDeadline() { lower.clearDeadline() }
}

/// Writes `bytes` as one chunk: size line, data, CRLF (three writes into the stream's queue,
/// no allocation).
func writeChunk(_ bytes: UnsafeRawBufferPointer, to stream: any ByteStream) {
    withUnsafeTemporaryAllocation(byteCount: 24, alignment: 1) { line in
        let n = ChunkedEncoder.sizeLine(bytes.count, into: line)
        stream.write(UnsafeRawBufferPointer(rebasing: line[0..<n]))
    }
    stream.write(bytes)
    ChunkedEncoder.crlf.withUnsafeBytes { stream.write($0) }
}
