import Wire

/// Handshake frame types (PROTOCOL.md "Handshake frames"): the first byte of each handshake
/// frame names the Noise pattern the message belongs to, so a client that tried IK can tell an
/// IK answer from a switch to XXfallback.
public enum HandshakeFrameType {
    public static let xx: UInt8 = 0x01
    public static let ik: UInt8 = 0x02
    public static let xxFallback: UInt8 = 0x03
    /// A plaintext error from the server when the handshake cannot go on:
    /// `code (varint) | reason (UTF-8, the rest)`.
    public static let error: UInt8 = 0x7F

    /// `type | length u16be | body`.
    public static func frame(_ type: UInt8, _ body: [UInt8]) -> [UInt8] {
        precondition(body.count <= WireLimits.maxNoiseMessage)
        return [type, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    public static func errorFrame(_ code: ErrorCode, _ reason: String) -> [UInt8] {
        var body: [UInt8] = []
        Varint.append(code.rawValue, to: &body)
        var text = Substring(reason)
        while text.utf8.count > WireLimits.maxErrorMessage { text = text.dropLast() }  // whole characters only
        body += Array(text.utf8)
        return frame(error, body)
    }

    /// Parses an error frame's body.
    public static func parseError(_ body: [UInt8]) -> (ErrorCode, String) {
        var offset = 0
        let code = body.withUnsafeBytes { raw in (try? Varint.read(raw, at: &offset)) ?? nil } ?? ErrorCode.handshakeFailed.rawValue
        return (ErrorCode(rawValue: code), String(decoding: body[min(offset, body.count)...], as: UTF8.self))
    }
}
