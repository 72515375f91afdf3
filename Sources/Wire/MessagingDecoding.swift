/// Decoding of the stanzas of PROTOCOL.md sections 18-23.
extension MessagingCodec {

    static func decode(type: UInt64, body: UnsafeRawBufferPointer, reusing pool: ByteArrayPool?) throws(WireError) -> Stanza {
        var reader = FieldReader(body)
        switch type {
        case StanzaType.listDevices:
            var requestID: UInt64 = 0, accountID: UInt64 = 0
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: accountID = try value.id(field)
                default: continue
                }
            }
            return .listDevices(requestID: requestID, accountID: accountID)
        case StanzaType.deviceList:
            var requestID: UInt64 = 0, accountID: UInt64?
            var devices: [DeviceInfo] = []
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: accountID = try value.id(field)
                case 3:
                    var device = DeviceInfo(deviceID: 0, name: "", createdAt: 0)
                    var inner = try value.record(field)
                    while let (f, v) = try inner.next() {
                        switch f {
                        case 1: device.deviceID = try v.varint(f)
                        case 2: device.name = try v.string(f, max: WireLimits.maxDeviceName)
                        case 3: device.createdAt = try v.varint(f)
                        default: continue
                        }
                    }
                    devices.append(device)
                default: continue
                }
            }
            guard let accountID else { throw .malformed("device list needs an account id") }
            return .deviceList(requestID: requestID, accountID: accountID, devices: devices)
        case StanzaType.addDevice:
            var requestID: UInt64 = 0, key: [UInt8]?, name = ""
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: key = try value.bytes(field, max: 32)
                case 3: name = try value.string(field, max: WireLimits.maxDeviceName)
                default: continue
                }
            }
            guard let key, key.count == 32 else { throw .malformed("add device needs a 32-byte static key") }
            return .addDevice(requestID: requestID, staticKey: key, name: name)
        case StanzaType.removeDevice:
            var requestID: UInt64 = 0, deviceID: UInt64?
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: deviceID = try value.id(field)
                default: continue
                }
            }
            guard let deviceID else { throw .malformed("remove device needs a device id") }
            return .removeDevice(requestID: requestID, deviceID: deviceID)
        case StanzaType.result:
            var result = RequestResult(requestID: 0, code: .ok)
            var seen = false
            while let (field, value) = try reader.next() {
                switch field {
                case 1: result.requestID = try value.varint(field)
                case 2: result.code = ErrorCode(rawValue: try value.varint(field)); seen = true
                case 3: result.message = try value.string(field, max: WireLimits.maxErrorMessage)
                case 4: result.value = try value.varint(field)
                default: continue
                }
            }
            guard seen else { throw .malformed("result needs a code") }
            return .result(result)
        case StanzaType.publishKeys:
            var requestID: UInt64 = 0, identity: [UInt8]?, signed: SignedPrekey?
            var oneTime: [OneTimePrekey] = []
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: identity = try value.bytes(field, max: WireLimits.maxKeyBytes)
                case 3: signed = try decodeSigned(try value.record(field))
                case 4:
                    guard oneTime.count < WireLimits.maxPrekeysPerStanza else {
                        throw .tooLarge("more than \(WireLimits.maxPrekeysPerStanza) one-time pre-keys")
                    }
                    oneTime.append(try decodeOneTime(try value.record(field)))
                default: continue
                }
            }
            return .publishKeys(requestID: requestID, identityKey: identity, signedPrekey: signed, oneTimePrekeys: oneTime)
        case StanzaType.getKeys:
            var requestID: UInt64 = 0, accountID: UInt64?, deviceID: UInt64?
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: accountID = try value.id(field)
                case 3: deviceID = try value.id(field)
                default: continue
                }
            }
            guard let accountID else { throw .malformed("get keys needs an account id") }
            return .getKeys(requestID: requestID, accountID: accountID, deviceID: deviceID)
        case StanzaType.keyBundles:
            var requestID: UInt64 = 0, accountID: UInt64 = 0
            var bundles: [KeyBundle] = []
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: accountID = try value.id(field)
                case 3:
                    var bundle = KeyBundle(deviceID: 0, identityKey: [], signedPrekey: nil, oneTimePrekey: nil)
                    var inner = try value.record(field)
                    while let (f, v) = try inner.next() {
                        switch f {
                        case 1: bundle.deviceID = try v.varint(f)
                        case 2: bundle.identityKey = try v.bytes(f, max: WireLimits.maxKeyBytes)
                        case 3: bundle.signedPrekey = try decodeSigned(try v.record(f))
                        case 4: bundle.oneTimePrekey = try decodeOneTime(try v.record(f))
                        default: continue
                        }
                    }
                    bundles.append(bundle)
                default: continue
                }
            }
            return .keyBundles(requestID: requestID, accountID: accountID, bundles: bundles)
        case StanzaType.prekeysLow:
            var remaining: UInt64 = 0
            while let (field, value) = try reader.next() {
                if field == 1 { remaining = try value.varint(field) }
            }
            return .prekeysLow(remaining: remaining)
        case StanzaType.send:
            return try decodeSend(body: body, reusing: pool)
        case StanzaType.sendResult:
            var result = SendResult(messageID: [], code: .ok)
            while let (field, value) = try reader.next() {
                switch field {
                case 1: result.messageID = try value.messageID(field)
                case 2: result.code = ErrorCode(rawValue: try value.varint(field))
                case 3: result.message = try value.string(field, max: WireLimits.maxErrorMessage)
                case 4:
                    var address = DeviceAddress(accountID: 0, deviceID: 0)
                    var inner = try value.record(field)
                    while let (f, v) = try inner.next() {
                        switch f {
                        case 1: address.accountID = try v.varint(f)
                        case 2: address.deviceID = try v.varint(f)
                        default: continue
                        }
                    }
                    result.devices.append(address)
                case 5: result.duplicate = try value.varint(field) != 0
                default: continue
                }
            }
            return .sendResult(result)
        case StanzaType.deliver:
            var delivery = Delivery(seq: 0, messageID: [], fromAccount: 0, fromDevice: 0, sentAtMilliseconds: 0, ciphertext: [])
            var seen = 0
            while let (field, value) = try reader.next() {
                switch field {
                case 1: delivery.seq = try value.varint(field); seen |= 1
                case 2: delivery.messageID = try value.messageID(field); seen |= 2
                case 3: delivery.fromAccount = try value.varint(field)
                case 4: delivery.fromDevice = try value.varint(field)
                case 5: delivery.sentAtMilliseconds = try value.varint(field)
                case 6: delivery.ciphertext = try value.bytes(field, max: WireLimits.maxFramePlaintext)
                case 7:
                    let kind = try value.varint(field)
                    guard let parsed = Delivery.Kind(rawValue: kind) else { throw .malformed("delivery kind \(kind) is unknown") }
                    delivery.kind = parsed
                case 8: delivery.groupID = try value.id(field)
                case 9: delivery.muted = try value.varint(field) != 0
                case 10: delivery.deliveredCount = try value.varint(field)
                case 11: delivery.deliveredTotal = try value.varint(field)
                default: continue
                }
            }
            guard seen == 3 else { throw .malformed("deliver needs seq and message id") }
            return .deliver(delivery)
        case StanzaType.presenceAllow, StanzaType.presenceSubscribe, StanzaType.presence, StanzaType.typing:
            var values: [UInt64: UInt64] = [:]
            while let (field, value) = try reader.next() {
                if field <= 3 { values[field] = try value.id(field) }
            }
            switch type {
            case StanzaType.presenceAllow:
                guard let account = values[2] else { throw .malformed("presence allow needs an account") }
                return .presenceAllow(requestID: values[1] ?? 0, accountID: account, allowed: (values[3] ?? 1) != 0)
            case StanzaType.presenceSubscribe:
                guard let account = values[2] else { throw .malformed("presence subscribe needs an account") }
                return .presenceSubscribe(requestID: values[1] ?? 0, accountID: account)
            case StanzaType.presence:
                guard let account = values[1] else { throw .malformed("presence needs an account") }
                return .presence(accountID: account, online: (values[2] ?? 0) != 0, lastSeenMilliseconds: values[3] ?? 0)
            default:
                guard let account = values[1] else { throw .malformed("typing needs an account") }
                return .typing(accountID: account, deviceID: values[2] ?? 0, active: (values[3] ?? 1) != 0)
            }
        case StanzaType.createGroup:
            var requestID: UInt64 = 0, name = ""
            var members: [UInt64] = []
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: name = try value.string(field, max: WireLimits.maxDeviceName)
                case 3:
                    guard members.count < WireLimits.maxGroupMembersPerStanza else { throw .tooLarge("too many members in one stanza") }
                    members.append(try value.id(field))
                default: continue
                }
            }
            return .createGroup(requestID: requestID, name: name, members: members)
        case StanzaType.updateGroup:
            var requestID: UInt64 = 0, group: UInt64?, operation: GroupOperation?, account: UInt64 = 0, name = ""
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: group = try value.id(field)
                case 3:
                    let raw = try value.varint(field)
                    guard let parsed = GroupOperation(rawValue: raw) else { throw .malformed("group operation \(raw) is unknown") }
                    operation = parsed
                case 4: account = try value.id(field)
                case 5: name = try value.string(field, max: WireLimits.maxDeviceName)
                default: continue
                }
            }
            guard let group, let operation else { throw .malformed("update group needs a group and an operation") }
            return .updateGroup(requestID: requestID, groupID: group, operation: operation, accountID: account, name: name)
        case StanzaType.getGroup:
            var requestID: UInt64 = 0, group: UInt64?
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: group = try value.id(field)
                default: continue
                }
            }
            guard let group else { throw .malformed("get group needs a group") }
            return .getGroup(requestID: requestID, groupID: group)
        case StanzaType.groupInfo:
            var requestID: UInt64 = 0, group: UInt64 = 0, name = ""
            var members: [GroupMember] = []
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: group = try value.id(field)
                case 3: name = try value.string(field, max: WireLimits.maxDeviceName)
                case 4:
                    var member = GroupMember(accountID: 0, admin: false)
                    var inner = try value.record(field)
                    while let (f, v) = try inner.next() {
                        switch f {
                        case 1: member.accountID = try v.id(f)
                        case 2: member.admin = try v.varint(f) != 0
                        default: continue
                        }
                    }
                    members.append(member)
                default: continue
                }
            }
            return .groupInfo(requestID: requestID, groupID: group, name: name, members: members)
        case StanzaType.mute:
            var mute = MuteRequest(requestID: 0)
            while let (field, value) = try reader.next() {
                switch field {
                case 1: mute.requestID = try value.varint(field)
                case 2: mute.chatAccount = try value.id(field)
                case 3: mute.groupID = try value.id(field)
                case 4: mute.untilMilliseconds = try value.id(field)
                case 5: mute.automatic = try value.varint(field) != 0
                case 6: mute.silent = try value.varint(field) != 0
                default: continue
                }
            }
            guard (mute.chatAccount == 0) != (mute.groupID == 0) else { throw .malformed("mute needs a chat account or a group") }
            return .mute(mute)
        case StanzaType.registerPush:
            var requestID: UInt64 = 0, token = ""
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: token = try value.string(field, max: WireLimits.maxStringField)
                default: continue
                }
            }
            return .registerPush(requestID: requestID, token: token)
        case StanzaType.receipt:
            var requestID: UInt64 = 0, to: UInt64?
            var ids: [MessageID] = []
            while let (field, value) = try reader.next() {
                switch field {
                case 1: requestID = try value.varint(field)
                case 2: to = try value.id(field)
                case 3:
                    guard ids.count < WireLimits.maxReceiptIDs else { throw .tooLarge("more than \(WireLimits.maxReceiptIDs) ids") }
                    let id = try value.messageID(field)
                    guard id.count == WireLimits.messageIDLength else { throw .malformed("message ids are 16 bytes") }
                    ids.append(id)
                default: continue
                }
            }
            guard let to else { throw .malformed("receipt needs the account it goes to") }
            return .receipt(requestID: requestID, toAccount: to, messageIDs: ids)
        case StanzaType.ack:
            var seqs: [UInt64] = []
            // Each seq takes at least two bytes: one allocation for the list, not one per doubling.
            seqs.reserveCapacity(min(body.count / 2, 256))
            while let (field, value) = try reader.next() {
                if field == 1 { seqs.append(try value.id(field)) }
            }
            return .ack(seqs: seqs)
        default:
            return .unknown(type: type)
        }
    }

    /// A Send (section 20.1); its ciphertexts are copied into arrays from `pool` when given.
    static func decodeSend(body: UnsafeRawBufferPointer, reusing pool: ByteArrayPool?) throws(WireError) -> Stanza {
        var reader = FieldReader(body)
        var id: MessageID?, to: UInt64?, group: UInt64 = 0
        var copies = MessageCopies()
        var copiesSeen = 0
        while let (field, value) = try reader.next() {
            switch field {
            case 1: id = try value.messageID(field)
            case 2: to = try value.id(field)
            case 4: group = try value.id(field)
            case 3:
                copiesSeen += 1
                if copiesSeen == 2 {
                    // A second copy (a group's): count the rest once so the list is allocated
                    // once. The first copy is kept inline, so a one-to-one Send never counts.
                    var counting = reader
                    var count = copiesSeen
                    while let (later, _) = try counting.next() {
                        if later == 3 { count += 1 }
                    }
                    copies.reserveCapacity(count)
                }
                var copy = MessageCopy(deviceID: 0, ciphertext: [])
                var inner = try value.record(field)
                var hasDevice = false
                while let (f, v) = try inner.next() {
                    switch f {
                    case 1: copy.deviceID = try v.id(f); hasDevice = true
                    case 2: copy.ciphertext = try v.bytes(f, max: WireLimits.maxFramePlaintext, reusing: pool)
                    default: continue
                    }
                }
                guard hasDevice else { throw .malformed("a copy needs a device id") }
                copies.append(copy)
            default: continue
            }
        }
        guard let id, id.count == WireLimits.messageIDLength, (to != nil) != (group != 0) else {
            throw .malformed("send needs a 16-byte message id and either a recipient account or a group")
        }
        return .send(SendMessage(messageID: id, toAccount: to ?? 0, copies: copies, groupID: group))
    }

    static func decodeSigned(_ record: FieldReader) throws(WireError) -> SignedPrekey {
        var reader = record
        var key = SignedPrekey(keyID: 0, publicKey: [], signature: [])
        while let (f, v) = try reader.next() {
            switch f {
            case 1: key.keyID = try v.varint(f)
            case 2: key.publicKey = try v.bytes(f, max: WireLimits.maxKeyBytes)
            case 3: key.signature = try v.bytes(f, max: WireLimits.maxSignatureBytes)
            default: continue
            }
        }
        return key
    }

    static func decodeOneTime(_ record: FieldReader) throws(WireError) -> OneTimePrekey {
        var reader = record
        var key = OneTimePrekey(keyID: 0, publicKey: [])
        while let (f, v) = try reader.next() {
            switch f {
            case 1: key.keyID = try v.varint(f)
            case 2: key.publicKey = try v.bytes(f, max: WireLimits.maxKeyBytes)
            default: continue
            }
        }
        return key
    }
}
