/// Protocol limits (PROTOCOL.md "Limits"). Peers that exceed them get an error and a close.
public enum WireLimits {
    /// The preface: "SWBD" and the protocol version.
    public static let preface: [UInt8] = [0x53, 0x57, 0x42, 0x44, 0x01]
    public static let magic: [UInt8] = [0x53, 0x57, 0x42, 0x44]
    public static let protocolVersion: UInt8 = 1
    /// A Noise message, and so a handshake frame body or a transport frame's ciphertext.
    public static let maxNoiseMessage = 65_535
    /// The AEAD tag on every transport frame.
    public static let tagLength = 16
    /// Plaintext bytes one transport frame can carry.
    public static let maxFramePlaintext = maxNoiseMessage - tagLength
    /// Length-delimited fields inside a stanza (strings, keys, tokens).
    public static let maxStringField = 256
    public static let maxAccountName = 32
    public static let maxDeviceName = 64
    public static let maxClientAgent = 64
    public static let maxErrorMessage = 256
}
