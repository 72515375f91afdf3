/// Cuts an inbound byte stream into the units of PROTOCOL.md "Framing": the preface, handshake
/// frames (`type u8 | length u16be | body`) and transport frames (`length u16be | ciphertext`).
///
/// Complete frames are handed out straight from the caller's buffer (mutable, so the caller can
/// decrypt in place); only the bytes of a frame that is still incomplete are copied, into a
/// buffer that is released as soon as it empties. The caller decides after each unit what the
/// next one is (`Mode`), because a peer may send its last handshake message and its first
/// transport frames in one write: `deliver` returns the mode of the next unit.
public struct FrameAssembler {
    public enum Mode: Sendable { case preface, handshake, transport }

    public enum Unit {
        /// The preface was valid.
        case preface
        case handshake(type: UInt8, body: UnsafeMutableRawBufferPointer)
        case transport(ciphertext: UnsafeMutableRawBufferPointer)
    }

    public var mode: Mode
    private var partial: [UInt8] = []

    public init(mode: Mode = .preface) { self.mode = mode }

    /// Bytes held for an incomplete unit (bounded by the largest frame, 65,538 bytes).
    public var bufferedBytes: Int { partial.count }

    /// Feeds received bytes. `deliver` gets each complete unit in order and returns the mode for
    /// the next unit, or nil to stop (the connection is closing); the rest of the input is then
    /// dropped.
    /// - Throws: `FrameError` for a bad preface or a frame too short to be valid.
    public mutating func feed(
        _ input: UnsafeMutableRawBufferPointer, _ deliver: (Unit) throws(FrameError) -> Mode?
    ) throws(FrameError) {
        var offset = 0
        if !partial.isEmpty {
            // Complete the held unit from the new bytes first.
            while true {
                let need = try unitLength(partial.withUnsafeBytes { $0 })
                // Until the length is known take only the bytes that tell it: more could run past
                // a unit shorter than that (an empty handshake frame is its 3-byte header alone).
                let wanted = (need ?? lengthKnownAt) - partial.count
                let take = min(wanted, input.count - offset)
                if take > 0 {
                    partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<offset + take]))
                    offset += take
                }
                if let need, partial.count == need { break }
                if offset == input.count { return }
            }
            var held = partial
            partial = []
            let outcome = held.withUnsafeMutableBytes { raw in
                Result { () throws(FrameError) -> Bool in try deliverUnit(raw, deliver) }
            }
            if !(try outcome.get()) { return }
        }
        while offset < input.count {
            let rest = UnsafeMutableRawBufferPointer(rebasing: input[offset...])
            guard let need = try unitLength(UnsafeRawBufferPointer(rest)), need <= rest.count else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rest))
                return
            }
            offset += need
            if !(try deliverUnit(UnsafeMutableRawBufferPointer(rebasing: rest[0..<need]), deliver)) { return }
        }
    }

    /// How many bytes of the current unit tell its full length (its header; the whole preface).
    private var lengthKnownAt: Int {
        switch mode {
        case .preface: return WireLimits.preface.count
        case .handshake: return 3
        case .transport: return 2
        }
    }

    /// The full length of the unit starting at `bytes`, nil if its header is incomplete.
    private func unitLength(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Int? {
        switch mode {
        case .preface:
            // Reject a wrong magic as soon as its first wrong byte arrives.
            for index in 0..<min(bytes.count, WireLimits.magic.count) where bytes[index] != WireLimits.magic[index] {
                throw .badPreface
            }
            return bytes.count >= WireLimits.preface.count ? WireLimits.preface.count : nil
        case .handshake:
            guard bytes.count >= 3 else { return nil }
            return 3 + (Int(bytes[1]) << 8 | Int(bytes[2]))
        case .transport:
            guard bytes.count >= 2 else { return nil }
            let length = Int(bytes[0]) << 8 | Int(bytes[1])
            guard length >= WireLimits.tagLength else { throw .frameTooShort(length) }
            return 2 + length
        }
    }

    private mutating func deliverUnit(
        _ unit: UnsafeMutableRawBufferPointer, _ deliver: (Unit) throws(FrameError) -> Mode?
    ) throws(FrameError) -> Bool {
        let next: Mode?
        switch mode {
        case .preface:
            let version = unit[WireLimits.magic.count]
            guard version == WireLimits.protocolVersion else { throw .unsupportedVersion(version) }
            next = try deliver(.preface)
        case .handshake:
            next = try deliver(.handshake(type: unit[0], body: UnsafeMutableRawBufferPointer(rebasing: unit[3...])))
        case .transport:
            next = try deliver(.transport(ciphertext: UnsafeMutableRawBufferPointer(rebasing: unit[2...])))
        }
        guard let next else { return false }
        mode = next
        return true
    }
}

/// A framing violation; each maps to the error code the peer is told.
public enum FrameError: Error, Equatable, Sendable {
    case badPreface
    case unsupportedVersion(UInt8)
    case frameTooShort(Int)
    /// Raised by a `deliver` callback to abort with a specific code.
    case rejected(ErrorCode, String)

    public var code: ErrorCode {
        switch self {
        case .badPreface: return .badPreface
        case .unsupportedVersion: return .unsupportedVersion
        case .frameTooShort: return .decryptFailed
        case .rejected(let code, _): return code
        }
    }
}
