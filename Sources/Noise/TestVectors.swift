/// One entry of a cacophony/snow-format Noise vector file (field names as those files spell
/// them), or of noise-c's fallback format (`fallback: true`, `messages[0]` an IK message the
/// responder cannot read).
public struct NoiseVector: Decodable, Sendable {
    public let protocol_name: String
    public let init_prologue: String?
    public let init_static: String?
    public let init_ephemeral: String?
    public let init_remote_static: String?
    public let init_psks: [String]?
    public let resp_prologue: String?
    public let resp_static: String?
    public let resp_ephemeral: String?
    public let resp_remote_static: String?
    public let resp_psks: [String]?
    public let handshake_hash: String?
    public let fallback: Bool?
    public let messages: [Message]

    public struct Message: Decodable, Sendable {
        public let payload: String
        public let ciphertext: String
    }
}

/// Runs test vectors against this implementation.
public enum VectorRunner {
    public enum Outcome: Equatable, Sendable {
        case passed
        case failed(String)
        /// A protocol this implementation does not support (other DH, cipher, PSK patterns...).
        case unsupported
    }

    public static func run(_ vector: NoiseVector) -> Outcome {
        guard vector.init_psks?.isEmpty ?? true, vector.resp_psks?.isEmpty ?? true,
            let name = ProtocolName(vector.protocol_name)
        else { return .unsupported }
        do {
            switch name.hash {
            case .SHA256: return try run(vector, name, SHA256.self)
            case .BLAKE2b: return try run(vector, name, BLAKE2b.self)
            }
        } catch {
            return .failed("\(error)")
        }
    }

    private static func run<H: NoiseHashFunction>(_ v: NoiseVector, _ name: ProtocolName, _: H.Type) throws -> Outcome {
        if name.pattern == .XXfallback {
            guard v.fallback == true else { return .unsupported }
            return try runFallback(v, H.self)
        }
        var initiator = try HandshakeState<H>(
            pattern: name.pattern, initiator: true, prologue: hex(v.init_prologue),
            localStatic: keyPair(v.init_static), localEphemeral: keyPair(v.init_ephemeral),
            remoteStatic: optionalHex(v.init_remote_static))
        var responder = try HandshakeState<H>(
            pattern: name.pattern, initiator: false, prologue: hex(v.resp_prologue),
            localStatic: keyPair(v.resp_static), localEphemeral: keyPair(v.resp_ephemeral),
            remoteStatic: optionalHex(v.resp_remote_static))
        var transport: (HandshakeState<H>.Completion, HandshakeState<H>.Completion)?
        for (index, message) in v.messages.enumerated() {
            let payload = try hex(message.payload), expected = try hex(message.ciphertext)
            let fromInitiator = index % 2 == 0
            if transport == nil {
                let (sent, c1) = fromInitiator
                    ? try initiator.writeMessage(payload) : try responder.writeMessage(payload)
                guard sent == expected else { return .failed("message \(index): ciphertext differs") }
                let (read, c2) = fromInitiator ? try responder.readMessage(sent) : try initiator.readMessage(sent)
                guard read == payload else { return .failed("message \(index): payload differs") }
                if let c1, let c2 {
                    if let hash = v.handshake_hash, try hex(hash) != c1.handshakeHash {
                        return .failed("handshake hash differs")
                    }
                    transport = fromInitiator ? (c1, c2) : (c2, c1)  // (initiator's, responder's)
                }
            } else if let check = try transportMessage(&transport!, fromFirst: fromInitiator, message, index) {
                return check
            }
        }
        return transport == nil ? .failed("handshake did not finish") : .passed
    }

    /// noise-c's fallback vectors: Alice's IK message cannot be read by Bob; Bob becomes the
    /// XXfallback initiator with Alice's ephemeral key as pre-message (Noise rev 34, section 10).
    private static func runFallback<H: NoiseHashFunction>(_ v: NoiseVector, _: H.Type) throws -> Outcome {
        guard v.messages.count >= 3 else { return .failed("fallback vector needs 3 handshake messages") }
        let aliceEphemeral = try keyPair(v.init_ephemeral)
        var alice = try HandshakeState<H>(
            pattern: .IK, initiator: true, prologue: hex(v.init_prologue),
            localStatic: keyPair(v.init_static), localEphemeral: aliceEphemeral,
            remoteStatic: optionalHex(v.init_remote_static))
        var bob = try HandshakeState<H>(
            pattern: .IK, initiator: false, prologue: hex(v.resp_prologue), localStatic: keyPair(v.resp_static))
        let (first, _) = try alice.writeMessage(hex(v.messages[0].payload))
        guard try first == hex(v.messages[0].ciphertext) else { return .failed("message 0: ciphertext differs") }
        do {
            _ = try bob.readMessage(first)
            return .failed("message 0: responder read an IK message meant to fail")
        } catch {}
        var bobFallback = try HandshakeState<H>(
            pattern: .XXfallback, initiator: true, prologue: hex(v.resp_prologue),
            localStatic: keyPair(v.resp_static), localEphemeral: keyPair(v.resp_ephemeral),
            remoteEphemeral: Array(first.prefix(32)))
        var aliceFallback = try HandshakeState<H>(
            pattern: .XXfallback, initiator: false, prologue: hex(v.init_prologue),
            localStatic: keyPair(v.init_static), localEphemeral: aliceEphemeral)
        var transport: (HandshakeState<H>.Completion, HandshakeState<H>.Completion)?
        for index in 1..<v.messages.count {
            let message = v.messages[index]
            let payload = try hex(message.payload), expected = try hex(message.ciphertext)
            let fromBob = index % 2 == 1
            if transport == nil {
                let (sent, c1) = fromBob
                    ? try bobFallback.writeMessage(payload) : try aliceFallback.writeMessage(payload)
                guard sent == expected else { return .failed("message \(index): ciphertext differs") }
                let (read, c2) = fromBob ? try aliceFallback.readMessage(sent) : try bobFallback.readMessage(sent)
                guard read == payload else { return .failed("message \(index): payload differs") }
                if let c1, let c2 {
                    if let hash = v.handshake_hash, try hex(hash) != c1.handshakeHash {
                        return .failed("handshake hash differs")
                    }
                    transport = fromBob ? (c1, c2) : (c2, c1)  // (Bob's = fallback initiator's, Alice's)
                }
            } else if let check = try transportMessage(&transport!, fromFirst: fromBob, message, index) {
                return check
            }
        }
        return transport == nil ? .failed("handshake did not finish") : .passed
    }

    /// A transport message between the fallback/handshake initiator (first) and responder.
    private static func transportMessage<H>(
        _ pair: inout (HandshakeState<H>.Completion, HandshakeState<H>.Completion), fromFirst: Bool,
        _ message: NoiseVector.Message, _ index: Int
    ) throws -> Outcome? {
        let sent: [UInt8]
        let read: [UInt8]
        let payload = try hex(message.payload)
        if fromFirst {
            sent = try pair.0.initiatorToResponder.encryptWithAd([], payload)
            read = try pair.1.initiatorToResponder.decryptWithAd([], sent)
        } else {
            sent = try pair.1.responderToInitiator.encryptWithAd([], payload)
            read = try pair.0.responderToInitiator.decryptWithAd([], sent)
        }
        guard try sent == hex(message.ciphertext) else { return .failed("message \(index): transport ciphertext differs") }
        guard read == payload else { return .failed("message \(index): transport payload differs") }
        return nil
    }

    struct BadHex: Error {}

    static func hex(_ text: String?) throws -> [UInt8] {
        guard let text else { return [] }
        return try decodeHex(text)
    }

    static func optionalHex(_ text: String?) throws -> [UInt8]? {
        guard let text, !text.isEmpty else { return nil }
        return try decodeHex(text)
    }

    static func keyPair(_ text: String?) throws -> KeyPair? {
        guard let bytes = try optionalHex(text) else { return nil }
        return KeyPair(privateKey: bytes)
    }
}

/// Decodes lowercase or uppercase hex.
public func decodeHex(_ text: String) throws -> [UInt8] {
    let digits = Array(text.utf8)
    guard digits.count % 2 == 0 else { throw VectorRunner.BadHex() }
    func value(_ c: UInt8) throws -> UInt8 {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: throw VectorRunner.BadHex()
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        out.append(try value(digits[index]) << 4 | value(digits[index + 1]))
        index += 2
    }
    return out
}

/// Lowercase hex.
public func encodeHex(_ bytes: some Sequence<UInt8>) -> String {
    let table = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(table[Int(byte >> 4)])
        out.append(table[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
