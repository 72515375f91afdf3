/// Why a Noise operation failed. Deliberately coarse: what reaches a peer must not tell an
/// attacker which check failed.
public enum NoiseError: Error, Equatable, Sendable {
    /// AEAD authentication failed (wrong key, forged or corrupted message).
    case decryptFailed
    /// A DH produced the all-zero output (a low-order public key).
    case invalidPublicKey
    /// The nonce reached 2^64-1 (section 5.1): the session must end.
    case nonceExhausted
    /// A handshake message or payload over 65,535 bytes, or one too short for its tokens.
    case badMessageLength
    /// A call out of turn (writing when it is the peer's turn, using a finished handshake).
    case outOfTurn
    /// A key the pattern needs was not supplied.
    case missingKey
    /// The cipher library failed part-way through sealing (it could not allocate): the message
    /// was spoilt and must not be sent; the session must end.
    case cipherFailed
}
