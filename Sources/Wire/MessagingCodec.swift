/// Encoding of the stanzas of PROTOCOL.md sections 18-23 (decoding: MessagingDecoding.swift).
enum MessagingCodec {
    typealias F = FieldWriter

    static func encodeBody(_ stanza: Stanza, into out: inout [UInt8]) {
        switch stanza {
        case .listDevices(let requestID, let accountID):
            F.varint(1, requestID, into: &out)
            if accountID != 0 { F.varint(2, accountID, into: &out) }
        case .deviceList(let requestID, let accountID, let devices):
            F.varint(1, requestID, into: &out)
            F.varint(2, accountID, into: &out)
            for device in devices {
                F.record(3, into: &out) { inner in
                    F.varint(1, device.deviceID, into: &inner)
                    F.string(2, device.name, into: &inner)
                    F.varint(3, device.createdAt, into: &inner)
                }
            }
        case .addDevice(let requestID, let staticKey, let name):
            F.varint(1, requestID, into: &out)
            F.bytes(2, staticKey, into: &out)
            if !name.isEmpty { F.string(3, name, into: &out) }
        case .removeDevice(let requestID, let deviceID):
            F.varint(1, requestID, into: &out)
            F.varint(2, deviceID, into: &out)
        case .result(let result):
            F.varint(1, result.requestID, into: &out)
            F.varint(2, result.code.rawValue, into: &out)
            if !result.message.isEmpty { F.string(3, result.message, into: &out) }
            if let value = result.value { F.varint(4, value, into: &out) }
        case .publishKeys(let requestID, let identityKey, let signedPrekey, let oneTimePrekeys):
            F.varint(1, requestID, into: &out)
            if let identityKey { F.bytes(2, identityKey, into: &out) }
            if let signedPrekey { F.record(3, into: &out) { encodeSigned(signedPrekey, into: &$0) } }
            for prekey in oneTimePrekeys { F.record(4, into: &out) { encodeOneTime(prekey, into: &$0) } }
        case .getKeys(let requestID, let accountID, let deviceID):
            F.varint(1, requestID, into: &out)
            F.varint(2, accountID, into: &out)
            if let deviceID { F.varint(3, deviceID, into: &out) }
        case .keyBundles(let requestID, let accountID, let bundles):
            F.varint(1, requestID, into: &out)
            F.varint(2, accountID, into: &out)
            for bundle in bundles {
                F.record(3, into: &out) { inner in
                    F.varint(1, bundle.deviceID, into: &inner)
                    F.bytes(2, bundle.identityKey, into: &inner)
                    if let signed = bundle.signedPrekey { F.record(3, into: &inner) { encodeSigned(signed, into: &$0) } }
                    if let oneTime = bundle.oneTimePrekey { F.record(4, into: &inner) { encodeOneTime(oneTime, into: &$0) } }
                }
            }
        case .prekeysLow(let remaining):
            F.varint(1, remaining, into: &out)
        case .send(let message):
            F.messageID(1, message.messageID, into: &out)
            if message.toAccount != 0 { F.varint(2, message.toAccount, into: &out) }
            if message.groupID != 0 { F.varint(4, message.groupID, into: &out) }
            for copy in message.copies {
                F.record(3, into: &out) { inner in
                    F.varint(1, copy.deviceID, into: &inner)
                    F.bytes(2, copy.ciphertext, into: &inner)
                }
            }
        case .sendResult, .deliver:
            assertionFailure("StanzaCodec.encode writes these itself (SizedEncoding.swift)")
        case .ack(let seqs):
            for seq in seqs { F.varint(1, seq, into: &out) }
        case .registerPush(let requestID, let token):
            F.varint(1, requestID, into: &out)
            F.string(2, token, into: &out)
        case .createGroup(let requestID, let name, let members):
            F.varint(1, requestID, into: &out)
            F.string(2, name, into: &out)
            for member in members { F.varint(3, member, into: &out) }
        case .updateGroup(let requestID, let groupID, let operation, let account, let name):
            F.varint(1, requestID, into: &out)
            F.varint(2, groupID, into: &out)
            F.varint(3, operation.rawValue, into: &out)
            if account != 0 { F.varint(4, account, into: &out) }
            if !name.isEmpty { F.string(5, name, into: &out) }
        case .getGroup(let requestID, let groupID):
            F.varint(1, requestID, into: &out)
            F.varint(2, groupID, into: &out)
        case .groupInfo(let requestID, let groupID, let name, let members):
            F.varint(1, requestID, into: &out)
            F.varint(2, groupID, into: &out)
            F.string(3, name, into: &out)
            for member in members {
                F.record(4, into: &out) { inner in
                    F.varint(1, member.accountID, into: &inner)
                    if member.admin { F.varint(2, 1, into: &inner) }
                }
            }
        case .mute(let mute):
            F.varint(1, mute.requestID, into: &out)
            if mute.chatAccount != 0 { F.varint(2, mute.chatAccount, into: &out) }
            if mute.groupID != 0 { F.varint(3, mute.groupID, into: &out) }
            if mute.untilMilliseconds != 0 { F.varint(4, mute.untilMilliseconds, into: &out) }
            if mute.automatic { F.varint(5, 1, into: &out) }
            if mute.silent { F.varint(6, 1, into: &out) }
        case .presenceAllow(let requestID, let account, let allowed):
            F.varint(1, requestID, into: &out)
            F.varint(2, account, into: &out)
            F.varint(3, allowed ? 1 : 0, into: &out)
        case .presenceSubscribe(let requestID, let account):
            F.varint(1, requestID, into: &out)
            F.varint(2, account, into: &out)
        case .presence(let account, let online, let lastSeen):
            F.varint(1, account, into: &out)
            F.varint(2, online ? 1 : 0, into: &out)
            if lastSeen != 0 { F.varint(3, lastSeen, into: &out) }
        case .typing(let account, let device, let active):
            F.varint(1, account, into: &out)
            if device != 0 { F.varint(2, device, into: &out) }
            F.varint(3, active ? 1 : 0, into: &out)
        case .receipt(let requestID, let toAccount, let ids):
            F.varint(1, requestID, into: &out)
            F.varint(2, toAccount, into: &out)
            for id in ids { F.messageID(3, id, into: &out) }
        default:
            break
        }
    }

    static func encodeSigned(_ key: SignedPrekey, into out: inout [UInt8]) {
        F.varint(1, key.keyID, into: &out)
        F.bytes(2, key.publicKey, into: &out)
        F.bytes(3, key.signature, into: &out)
    }

    static func encodeOneTime(_ key: OneTimePrekey, into out: inout [UInt8]) {
        F.varint(1, key.keyID, into: &out)
        F.bytes(2, key.publicKey, into: &out)
    }
}
