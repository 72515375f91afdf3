/// Encodes and decodes stanzas: `type (varint) | length (varint) | body`. A frame's plaintext is
/// one or more stanzas back to back; a stanza never spans frames.
public enum StanzaCodec {
    /// Appends one stanza to `out`. The body is written in place and its length inserted in
    /// front of it afterwards, so encoding allocates nothing when `out` has room.
    public static func encode(_ stanza: Stanza, into out: inout [UInt8]) {
        switch stanza {  // the relay path's stanzas: counted, then written in place (SizedEncoding.swift)
        case .deliver(let delivery): return encodeSized(delivery, type: StanzaType.deliver, into: &out)
        case .sendResult(let result): return encodeSized(result, type: StanzaType.sendResult, into: &out)
        default: break
        }
        Varint.append(stanza.type, to: &out)
        let lengthAt = FieldWriter.reserveLength(in: &out)
        typealias F = FieldWriter
        switch stanza {
        case .hello(let hello):
            F.varint(1, hello.version, into: &out)
            F.varint(2, hello.mode.rawValue, into: &out)
            if let value = hello.accountName { F.string(3, value, into: &out) }
            if let value = hello.deviceName { F.string(4, value, into: &out) }
            if let value = hello.inviteCode { F.string(5, value, into: &out) }
            if let value = hello.resumptionToken { F.bytes(6, value, into: &out) }
            if let value = hello.clientAgent { F.string(7, value, into: &out) }
        case .serverHello(let hello):
            F.varint(1, hello.version, into: &out)
            F.string(2, hello.nodeID, into: &out)
            F.varint(3, hello.maxFramePlaintext, into: &out)
            F.varint(4, hello.registration, into: &out)
            if let certificate = hello.certificate { F.bytes(5, certificate, into: &out) }
        case .welcome(let welcome):
            F.varint(1, welcome.accountID, into: &out)
            F.varint(2, welcome.deviceID, into: &out)
            if !welcome.accountName.isEmpty { F.string(3, welcome.accountName, into: &out) }
            F.bytes(4, welcome.resumptionToken, into: &out)
            F.varint(5, welcome.tokenExpiresAt, into: &out)
            F.varint(6, welcome.serverTimeMilliseconds, into: &out)
            F.varint(7, welcome.newAccount ? 1 : 0, into: &out)
            F.varint(8, welcome.idleTimeoutSeconds, into: &out)
        case .error(let error):
            F.varint(1, error.code.rawValue, into: &out)
            F.string(2, error.message, into: &out)
            if let reference = error.reference { F.varint(3, reference, into: &out) }
        case .ping(let value), .pong(let value):
            F.varint(1, value, into: &out)
        case .goodbye(let goodbye):
            F.varint(1, goodbye.code.rawValue, into: &out)
            F.string(2, goodbye.message, into: &out)
            F.varint(3, goodbye.retryAfterMilliseconds, into: &out)
        case .unknown:
            break
        default:
            MessagingCodec.encodeBody(stanza, into: &out)
        }
        FieldWriter.patchLength(at: lengthAt, in: &out)
    }

    public static func encode(_ stanzas: Stanza...) -> [UInt8] {
        var out: [UInt8] = []
        for stanza in stanzas { encode(stanza, into: &out) }
        return out
    }

    /// Decodes every stanza in `bytes` (a frame's plaintext or a handshake payload).
    public static func decodeAll(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> [Stanza] {
        var stanzas: [Stanza] = []
        try forEach(bytes) { stanzas.append($0) }
        return stanzas
    }

    /// Decodes the stanzas in `bytes` one at a time, without collecting them.
    public static func forEach(_ bytes: UnsafeRawBufferPointer, _ body: (Stanza) throws(WireError) -> Void) throws(WireError) {
        try forEachBody(bytes) { (type, stanzaBody) throws(WireError) in try body(try decode(type: type, body: stanzaBody)) }
    }

    /// Like `forEach(_:_:)`, but an `Ack` goes to `acks` as its sequence numbers read in place
    /// (no array), and a Send's ciphertexts are copied into arrays from `pool`: the receiving
    /// side of the delivery path.
    public static func forEach(_ bytes: UnsafeRawBufferPointer, reusing pool: ByteArrayPool? = nil, acks: (AckSeqs) -> Void,
                               _ body: (Stanza) throws(WireError) -> Void) throws(WireError) {
        try forEachBody(bytes) { (type, stanzaBody) throws(WireError) in
            if type == StanzaType.ack {
                acks(try AckSeqs(validating: stanzaBody))
            } else {
                try body(try decode(type: type, body: stanzaBody, reusing: pool))
            }
        }
    }

    /// Cuts `bytes` into stanzas (`type varint | length varint | body`), checking each length.
    private static func forEachBody(
        _ bytes: UnsafeRawBufferPointer, _ body: (UInt64, UnsafeRawBufferPointer) throws(WireError) -> Void
    ) throws(WireError) {
        var offset = 0
        while offset < bytes.count {
            guard let type = try Varint.read(bytes, at: &offset), let length = try Varint.read(bytes, at: &offset) else {
                throw .malformed("truncated stanza header")
            }
            guard length <= UInt64(bytes.count - offset) else { throw .malformed("stanza runs past its frame") }
            let stanzaBody = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
            offset += Int(length)
            try body(type, stanzaBody)
        }
    }

    public static func decodeAll(_ bytes: [UInt8]) throws(WireError) -> [Stanza] {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) -> [Stanza] in try decodeAll(raw) } }
        return try result.get()
    }

    /// One stanza; a Send's ciphertexts are copied into arrays from `pool` when given.
    static func decode(type: UInt64, body: UnsafeRawBufferPointer, reusing pool: ByteArrayPool? = nil) throws(WireError) -> Stanza {
        var reader = FieldReader(body)
        switch type {
        case StanzaType.hello:
            var version: UInt64?, mode: UInt64?
            var hello = Hello(mode: .login)
            while let (field, value) = try reader.next() {
                switch field {
                case 1: version = try value.varint(field)
                case 2: mode = try value.varint(field)
                case 3: hello.accountName = try value.string(field, max: WireLimits.maxAccountName)
                case 4: hello.deviceName = try value.string(field, max: WireLimits.maxDeviceName)
                case 5: hello.inviteCode = try value.string(field, max: WireLimits.maxStringField)
                case 6: hello.resumptionToken = try value.bytes(field, max: WireLimits.maxStringField)
                case 7: hello.clientAgent = try value.string(field, max: WireLimits.maxClientAgent)
                default: continue
                }
            }
            guard let version, let mode else { throw .malformed("hello needs version and mode") }
            guard let parsed = Hello.Mode(rawValue: mode) else { throw .malformed("hello mode \(mode) is unknown") }
            hello.version = version
            hello.mode = parsed
            return .hello(hello)
        case StanzaType.serverHello:
            var hello = ServerHello(nodeID: "", registration: 0)
            var seen = 0
            while let (field, value) = try reader.next() {
                switch field {
                case 1: hello.version = try value.varint(field); seen |= 1
                case 2: hello.nodeID = try value.string(field, max: WireLimits.maxStringField); seen |= 2
                case 3: hello.maxFramePlaintext = try value.varint(field)
                case 4: hello.registration = try value.varint(field)
                case 5: hello.certificate = try value.bytes(field, max: WireLimits.maxStringField)
                default: continue
                }
            }
            guard seen == 3 else { throw .malformed("server hello needs version and node id") }
            return .serverHello(hello)
        case StanzaType.welcome:
            var welcome = Welcome(accountID: 0, deviceID: 0, accountName: "", resumptionToken: [], tokenExpiresAt: 0,
                                  serverTimeMilliseconds: 0, newAccount: false, idleTimeoutSeconds: 0)
            var seen = 0
            while let (field, value) = try reader.next() {
                switch field {
                case 1: welcome.accountID = try value.varint(field); seen |= 1
                case 2: welcome.deviceID = try value.varint(field); seen |= 2
                case 3: welcome.accountName = try value.string(field, max: WireLimits.maxAccountName)
                case 4: welcome.resumptionToken = try value.bytes(field, max: WireLimits.maxStringField); seen |= 4
                case 5: welcome.tokenExpiresAt = try value.varint(field)
                case 6: welcome.serverTimeMilliseconds = try value.varint(field)
                case 7: welcome.newAccount = try value.varint(field) != 0
                case 8: welcome.idleTimeoutSeconds = try value.varint(field)
                default: continue
                }
            }
            guard seen == 7 else { throw .malformed("welcome needs account id, device id and token") }
            return .welcome(welcome)
        case StanzaType.error, StanzaType.goodbye:
            var code: UInt64?
            var message = ""
            var third: UInt64?
            while let (field, value) = try reader.next() {
                switch field {
                case 1: code = try value.varint(field)
                case 2: message = try value.string(field, max: WireLimits.maxErrorMessage)
                case 3: third = try value.varint(field)
                default: continue
                }
            }
            guard let code else { throw .malformed("error needs a code") }
            if type == StanzaType.error {
                return .error(ErrorStanza(code: ErrorCode(rawValue: code), message: message, reference: third))
            }
            return .goodbye(Goodbye(code: ErrorCode(rawValue: code), message: message, retryAfterMilliseconds: third ?? 0))
        case StanzaType.ping, StanzaType.pong:
            var value: UInt64 = 0
            while let (field, fieldValue) = try reader.next() {
                if field == 1 { value = try fieldValue.varint(field) }
            }
            return type == StanzaType.ping ? .ping(value) : .pong(value)
        case StanzaType.send:  // the hot one: straight to its decoder, not through a second switch
            return try MessagingCodec.decodeSend(body: body, reusing: pool)
        default:
            return try MessagingCodec.decode(type: type, body: body, reusing: pool)
        }
    }
}
