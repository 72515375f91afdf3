/// Fixed-size byte chunks for outbound queues, recycled per loop so a steady stream of writes
/// allocates nothing, and an idle connection holds no chunk at all. Loop thread only.
final class ChunkPool {
    static let chunkSize = 16 * 1024

    private var free: [UnsafeMutableRawPointer] = []
    private let maxCached: Int
    /// Chunks handed out and not yet returned (for tests and metrics).
    private(set) var outstanding = 0

    init(maxCached: Int) {
        self.maxCached = maxCached
        free.reserveCapacity(min(maxCached, 1024))
    }

    deinit {
        for chunk in free { chunk.deallocate() }
    }

    func take() -> UnsafeMutableRawPointer {
        outstanding += 1
        if let chunk = free.popLast() { return chunk }
        return .allocate(byteCount: ChunkPool.chunkSize, alignment: 16)
    }

    func give(_ chunk: UnsafeMutableRawPointer) {
        outstanding -= 1
        if free.count < maxCached { free.append(chunk) } else { chunk.deallocate() }
    }
}

/// A connection's outbound bytes: a list of pool chunks, written out with `writev`.
struct OutboundQueue {
    private(set) var chunks: [UnsafeMutableRawPointer] = []
    /// Offset of the first unsent byte in `chunks[0]`.
    private var headOffset = 0
    /// Bytes used in the last chunk.
    private var tailUsed = 0
    /// Bytes waiting to be sent.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: ChunkPool) {
        guard var source = bytes.baseAddress, bytes.count > 0 else { return }
        var remaining = bytes.count
        count += remaining
        while remaining > 0 {
            if chunks.isEmpty || tailUsed == ChunkPool.chunkSize {
                chunks.append(pool.take())
                tailUsed = 0
            }
            let n = min(remaining, ChunkPool.chunkSize - tailUsed)
            (chunks[chunks.count - 1] + tailUsed).copyMemory(from: source, byteCount: n)
            tailUsed += n
            source += n
            remaining -= n
        }
    }

    /// Fills `iovecs` (up to `max`) with the unsent bytes; returns how many were filled.
    func gather(into iovecs: UnsafeMutablePointer<IOSlice>, max: Int) -> Int {
        var filled = 0
        for (index, chunk) in chunks.enumerated() where filled < max {
            let start = index == 0 ? headOffset : 0
            let end = index == chunks.count - 1 ? tailUsed : ChunkPool.chunkSize
            iovecs[filled] = IOSlice(base: UnsafeRawPointer(chunk + start), length: end - start)
            filled += 1
        }
        return filled
    }

    /// Drops `n` sent bytes from the front, returning emptied chunks to the pool.
    mutating func consume(_ n: Int, pool: ChunkPool) {
        var remaining = n
        count -= n
        while remaining > 0 {
            let end = chunks.count == 1 ? tailUsed : ChunkPool.chunkSize
            let available = end - headOffset
            if remaining < available {
                headOffset += remaining
                return
            }
            remaining -= available
            pool.give(chunks.removeFirst())
            headOffset = 0
        }
        if chunks.count == 1 && headOffset == tailUsed {
            pool.give(chunks.removeFirst())
            headOffset = 0
            tailUsed = 0
        }
    }

    /// Returns every chunk to the pool (on close).
    mutating func release(pool: ChunkPool) {
        for chunk in chunks { pool.give(chunk) }
        chunks = []
        headOffset = 0
        tailUsed = 0
        count = 0
    }
}

/// One `iovec`, laid out as the kernel expects (pointer, length).
struct IOSlice {
    var base: UnsafeRawPointer
    var length: Int
}
