import Noise
import Wire

internal import CSodium

/// The two transport `CipherState`s of an established connection (the sending and receiving key
/// and nonce of Noise section 5.1), and in-place frame opening and sealing.
///
/// Both keys and both nonces live in one object, wiped when it is freed: every connection holds
/// one for its whole life, and idle connections are what a node holds most of (one allocation
/// of 96 bytes, where two cipher states with a key object each took four). Copies of a
/// `SecureTransport` refer to the same state, as the one transport of one connection; it belongs
/// to its connection's thread.
public struct SecureTransport {
    private let storage: Storage

    /// Header: the next nonces, and which directions have a key; elements: the sending key, then
    /// the receiving key (32 bytes each).
    private final class Storage: ManagedBuffer<(send: UInt64, receive: UInt64, keyed: UInt8), UInt8> {
        deinit {
            withUnsafeMutablePointerToElements { keys in sodium_memzero(keys, 2 * SecureTransport.keyLength) }
        }
    }

    static let keyLength = 32

    /// Takes over the keys and nonces of the split's two cipher states (which may then be freed).
    public init(sender: CipherState, receiver: CipherState) {
        let keyed: UInt8 = (sender.keyBytes == nil ? 0 : 1) | (receiver.keyBytes == nil ? 0 : 2)
        storage = unsafeDowncast(
            Storage.create(minimumCapacity: 2 * SecureTransport.keyLength) { _ in (sender.nonce, receiver.nonce, keyed) },
            to: Storage.self)
        storage.withUnsafeMutablePointerToElements { keys in
            keys.initialize(repeating: 0, count: 2 * SecureTransport.keyLength)
            if let key = sender.keyBytes { UnsafeMutableRawPointer(keys).copyMemory(from: key.baseAddress!, byteCount: SecureTransport.keyLength) }
            if let key = receiver.keyBytes {
                UnsafeMutableRawPointer(keys + SecureTransport.keyLength).copyMemory(from: key.baseAddress!, byteCount: SecureTransport.keyLength)
            }
        }
    }

    /// Decrypts a transport frame's ciphertext in place; returns the plaintext (a prefix of it).
    /// - Throws: `NoiseError.decryptFailed` for a forged, corrupted, replayed or reordered frame.
    public func open(_ ciphertext: UnsafeMutableRawBufferPointer) throws(NoiseError) -> UnsafeMutableRawBufferPointer {
        let count = try storage.withUnsafeMutablePointers { (state, keys) throws(NoiseError) -> Int in
            guard state.pointee.keyed & 2 != 0 else { return ciphertext.count }
            return try CipherState.decrypt(
                key: keys + SecureTransport.keyLength, nonce: &state.pointee.receive, inPlace: ciphertext.baseAddress!,
                count: ciphertext.count, ad: UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return UnsafeMutableRawBufferPointer(rebasing: ciphertext[0..<count])
    }

    /// Encrypts `count` plaintext bytes at `buffer` in place (room for 16 more must follow).
    func seal(_ buffer: UnsafeMutableRawPointer, count: Int) throws(NoiseError) -> Int {
        try storage.withUnsafeMutablePointers { (state, keys) throws(NoiseError) -> Int in
            guard state.pointee.keyed & 1 != 0 else { return count }
            return try CipherState.encrypt(
                key: keys, nonce: &state.pointee.send, inPlace: buffer, count: count, ad: UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// The next nonces (for tests and diagnostics).
    public var nonces: (send: UInt64, receive: UInt64) { (storage.header.send, storage.header.receive) }
}

/// Stanzas waiting to be sent on one connection, gathered into as few transport frames as fit
/// and sealed together when the connection flushes: a burst of small stanzas costs one AEAD
/// operation and one write.
///
/// The buffer holds frames back to back as they will go on the wire: a 2-byte length, the
/// plaintext, and room for the tag, which `seal` fills in place. With a `FrameBufferPool` (the
/// node: one per loop) the storage is borrowed for one flush and returned, so an idle connection
/// holds none and a steady stream allocates nothing; without one (a client) the storage is kept
/// between flushes unless it grew past `retainedCapacity`.
public struct OutboundFrames {
    private var buffer: [UInt8] = []
    /// Offsets of the pending frames' headers; the last is the frame being filled.
    private var frameStarts: [Int] = []
    private var frameStart: Int { frameStarts.last ?? 0 }
    private let pool: FrameBufferPool?
    public static let retainedCapacity = 16 * 1024

    public init(pool: FrameBufferPool? = nil) {
        self.pool = pool
    }

    public var isEmpty: Bool { buffer.isEmpty }

    /// Appends an encoded stanza.
    /// - Throws: `WireError.tooLarge` if the stanza alone cannot fit in one frame.
    public mutating func append(encoded stanza: UnsafeRawBufferPointer) throws(WireError) {
        guard stanza.count <= WireLimits.maxFramePlaintext else {
            throw .tooLarge("stanza of \(stanza.count) bytes exceeds one frame")
        }
        if buffer.isEmpty || buffer.count - frameStart - 2 + stanza.count > WireLimits.maxFramePlaintext {
            startFrame()
        }
        buffer.append(contentsOf: stanza)
    }

    /// Encodes a stanza straight into the pending frame (no allocation once the buffer has
    /// grown to its working size).
    public mutating func append(_ stanza: Stanza) throws(WireError) {
        try appendEncoding { StanzaCodec.encode(stanza, into: &$0) }
    }

    /// Runs `encode` (which appends one stanza) at the end of the pending frame, then moves
    /// the stanza into a frame of its own if it did not fit.
    @inline(__always)
    private mutating func appendEncoding(_ encode: (inout [UInt8]) -> Void) throws(WireError) {
        if buffer.isEmpty { startFrame() }
        let before = buffer.count
        encode(&buffer)
        let size = buffer.count - before
        guard size <= WireLimits.maxFramePlaintext else {
            buffer.removeLast(size)
            throw .tooLarge("stanza of \(size) bytes exceeds one frame")
        }
        if before - frameStart - 2 + size > WireLimits.maxFramePlaintext {
            // It does not fit the current frame: move it into a new one.
            let encoded = Array(buffer[before...])
            buffer.removeLast(size)
            startFrame()
            buffer.append(contentsOf: encoded)
        }
    }

    /// Encodes a `Deliver` for `delivery` numbered `seq` straight into the pending frame
    /// (`StanzaCodec.encodeDeliver`: the delivery is not copied to number it).
    public mutating func append(deliver delivery: Delivery, seq: UInt64) throws(WireError) {
        try appendEncoding { StanzaCodec.encodeDeliver(delivery, seq: seq, into: &$0) }
    }

    /// Makes sure a frame goes out at the next seal: an empty one (its 16-byte tag, 18 bytes on
    /// the wire) when no stanza is pending. It says nothing, and proves the sender holds the
    /// transport keys (PROTOCOL.md 6.2, the IK confirmation) without asking the peer for an answer.
    public mutating func ensureFrame() {
        if buffer.isEmpty { startFrame() }
    }

    private mutating func startFrame() {
        if buffer.capacity == 0, let pool { (buffer, frameStarts) = pool.take() }
        if !buffer.isEmpty { buffer.appendZeros(WireLimits.tagLength) }
        frameStarts.append(buffer.count)
        buffer.append(0)
        buffer.append(0)
    }

    /// Seals every pending frame in place and hands each frame's wire bytes to `write`, then empties.
    public mutating func seal(with transport: SecureTransport, _ write: (UnsafeRawBufferPointer) -> Void) throws(NoiseError) {
        guard !buffer.isEmpty else { return }
        buffer.appendZeros(WireLimits.tagLength)
        let starts = frameStarts
        let total = buffer.count
        let outcome = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(NoiseError) in
                for (index, start) in starts.enumerated() {
                    let end = index + 1 < starts.count ? starts[index + 1] : total
                    let plaintext = end - start - 2 - WireLimits.tagLength
                    let sealed = try transport.seal(raw.baseAddress! + start + 2, count: plaintext)
                    raw[start] = UInt8(sealed >> 8)
                    raw[start + 1] = UInt8(sealed & 0xff)
                    // One call per frame: a carrier that frames its payload (the HTTP
                    // fallback's chunks) keeps each frame in a unit of its own.
                    write(UnsafeRawBufferPointer(rebasing: raw[start..<start + 2 + sealed]))
                }
            }
        }
        if let pool {
            pool.give(&buffer, &frameStarts)
        } else if buffer.capacity > OutboundFrames.retainedCapacity {
            buffer = []
            frameStarts = []
        } else {
            buffer.removeAll(keepingCapacity: true)
            frameStarts.removeAll(keepingCapacity: true)
        }
        try outcome.get()
    }
}

/// Frame buffers lent to the sessions of one loop for the length of a flush (sealing is
/// synchronous), so idle connections hold no buffer. Loop thread only.
public final class FrameBufferPool {
    private var buffers: [[UInt8]] = []
    private var starts: [[Int]] = []
    static let maxPooled = 1_024
    static let maxCapacity = 4 * WireLimits.maxNoiseMessage

    public init() {}

    func take() -> ([UInt8], [Int]) {
        guard let buffer = buffers.popLast(), let start = starts.popLast() else {
            var fresh: [UInt8] = []
            fresh.reserveCapacity(512)
            return (fresh, [])
        }
        return (buffer, start)
    }

    /// Takes the storage back (emptied) and leaves the caller with none.
    func give(_ buffer: inout [UInt8], _ start: inout [Int]) {
        if buffers.count < FrameBufferPool.maxPooled && buffer.capacity <= FrameBufferPool.maxCapacity {
            buffer.removeAll(keepingCapacity: true)
            start.removeAll(keepingCapacity: true)
            buffers.append(buffer)
            starts.append(start)
        }
        buffer = []
        start = []
    }
}
