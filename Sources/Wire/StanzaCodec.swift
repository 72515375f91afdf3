/// Encodes and decodes stanzas: `type (varint) | length (varint) | body`. A frame's plaintext is
/// one or more stanzas back to back; a stanza never spans frames.
public enum StanzaCodec {
    /// Appends one stanza to `out`.
    public static func encode(_ stanza: Stanza, into out: inout [UInt8]) {
        var body = FieldWriter()
        switch stanza {
        case .hello(let hello):
            body.varint(1, hello.version)
            body.varint(2, hello.mode.rawValue)
            if let value = hello.accountName { body.string(3, value) }
            if let value = hello.deviceName { body.string(4, value) }
            if let value = hello.inviteCode { body.string(5, value) }
            if let value = hello.resumptionToken { body.bytes(6, value) }
            if let value = hello.clientAgent { body.string(7, value) }
        case .serverHello(let hello):
            body.varint(1, hello.version)
            body.string(2, hello.nodeID)
            body.varint(3, hello.maxFramePlaintext)
            body.varint(4, hello.registration)
        case .welcome(let welcome):
            body.varint(1, welcome.accountID)
            body.varint(2, welcome.deviceID)
            body.string(3, welcome.accountName)
            body.bytes(4, welcome.resumptionToken)
            body.varint(5, welcome.tokenExpiresAt)
            body.varint(6, welcome.serverTimeMilliseconds)
            body.varint(7, welcome.newAccount ? 1 : 0)
            body.varint(8, welcome.idleTimeoutSeconds)
        case .error(let error):
            body.varint(1, error.code.rawValue)
            body.string(2, error.message)
            if let reference = error.reference { body.varint(3, reference) }
        case .ping(let value), .pong(let value):
            body.varint(1, value)
        case .goodbye(let goodbye):
            body.varint(1, goodbye.code.rawValue)
            body.string(2, goodbye.message)
            body.varint(3, goodbye.retryAfterMilliseconds)
        case .unknown:
            break
        }
        Varint.append(stanza.type, to: &out)
        Varint.append(UInt64(body.bytes.count), to: &out)
        out.append(contentsOf: body.bytes)
    }

    public static func encode(_ stanzas: Stanza...) -> [UInt8] {
        var out: [UInt8] = []
        for stanza in stanzas { encode(stanza, into: &out) }
        return out
    }

    /// Decodes every stanza in `bytes` (a frame's plaintext or a handshake payload).
    public static func decodeAll(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> [Stanza] {
        var offset = 0
        var stanzas: [Stanza] = []
        while offset < bytes.count {
            guard let type = try Varint.read(bytes, at: &offset), let length = try Varint.read(bytes, at: &offset) else {
                throw .malformed("truncated stanza header")
            }
            guard length <= UInt64(bytes.count - offset) else { throw .malformed("stanza runs past its frame") }
            let body = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
            offset += Int(length)
            stanzas.append(try decode(type: type, body: body))
        }
        return stanzas
    }

    public static func decodeAll(_ bytes: [UInt8]) throws(WireError) -> [Stanza] {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(WireError) -> [Stanza] in try decodeAll(raw) } }
        return try result.get()
    }

    static func decode(type: UInt64, body: UnsafeRawBufferPointer) throws(WireError) -> Stanza {
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
        default:
            return .unknown(type: type)
        }
    }
}
