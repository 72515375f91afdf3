/// The `SymmetricState` of section 5.2: a `CipherState` plus the chaining key `ck` and the
/// handshake hash `h`, generic over the hash function.
struct SymmetricState<Hash: NoiseHashFunction>: Sendable {
    private(set) var cipher = CipherState()
    private var chainingKey: [UInt8]
    private(set) var handshakeHash: [UInt8]

    /// `InitializeSymmetric(protocol_name)`.
    init(protocolName: String) {
        let name = Array(protocolName.utf8)
        if name.count <= Hash.hashLength {
            handshakeHash = name + [UInt8](repeating: 0, count: Hash.hashLength - name.count)
        } else {
            handshakeHash = Hash.hash(name)
        }
        chainingKey = handshakeHash
    }

    /// `MixKey(input_key_material)`.
    mutating func mixKey(_ inputKeyMaterial: [UInt8]) {
        var outputs = Hash.hkdf(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputs: 2)
        wipe(&chainingKey)
        chainingKey = outputs[0]
        cipher.initializeKey(Array(outputs[1].prefix(32)))
        wipe(&outputs[1])
    }

    /// `MixHash(data)`.
    mutating func mixHash(_ data: [UInt8]) {
        handshakeHash = handshakeHash.withUnsafeBytes { hash in data.withUnsafeBytes { Hash.hash(hash, $0) } }
    }

    /// `EncryptAndHash(plaintext)`.
    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let ciphertext = try cipher.encryptWithAd(handshakeHash, plaintext)
        mixHash(ciphertext)
        return ciphertext
    }

    /// `DecryptAndHash(ciphertext)`.
    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plaintext = try cipher.decryptWithAd(handshakeHash, ciphertext)
        mixHash(ciphertext)
        return plaintext
    }

    /// `Split()`: the initiator-to-responder and responder-to-initiator cipher states.
    mutating func split() -> (CipherState, CipherState) {
        var outputs = Hash.hkdf(chainingKey: chainingKey, inputKeyMaterial: [], outputs: 2)
        let pair = (CipherState(key: Array(outputs[0].prefix(32))), CipherState(key: Array(outputs[1].prefix(32))))
        wipe(&outputs[0])
        wipe(&outputs[1])
        wipe(&chainingKey)
        return pair
    }
}
