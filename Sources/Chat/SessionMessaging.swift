import Glibc
import Reactor
import Store
import Wire

/// The stanzas of a logged-in device (PROTOCOL.md sections 18-20): devices, keys, sending,
/// delivery with acknowledgements and flow control.
extension ServerSession {
    /// Deliveries in flight to one device before it must acknowledge.
    static let deliveryWindow = 256
    /// How far past the oldest unacknowledged delivery the newest may be (PROTOCOL.md 20.3).
    static let deliverySpan = 1_024

    /// Deliveries this connection may send now.
    var deliveryRoom: Int {
        inFlight.room(entries: ServerSession.deliveryWindow, span: ServerSession.deliverySpan, last: lastWireSeq)
    }
    /// Sends waiting for the store per connection.
    static let maxOutstandingSends = 256

    /// A window that filled past 32 once keeps no storage while idle (~160 B per slot), nor does
    /// an emptied queue of waiting direct copies (its object and 16 slots, ~2.8 KB) — but not at
    /// every empty moment of a stream: while the direct-copy timer runs (it fires within a
    /// second) the storage waits for it (`directDeadline` calls this again), so windows that fill
    /// and empty over and over do not allocate it each time. Called wherever the window may empty.
    func giveBackIdleWindow() {
        guard !directTimerArmed else { return }
        if inFlight.isEmpty && inFlight.capacity > 32 { inFlight.removeAll() }
        if directWaiting?.isEmpty == true { directWaiting = nil }
    }

    /// The device acknowledged deliveries by wire sequence number: direct copies settle their
    /// senders, stored ones leave the store (one job for all of them).
    func acknowledge(_ seqs: some Sequence<UInt64>, on connection: any ByteStream) {
        guard let device else { return }
        var acknowledged: [UInt64] = []
        var routes: LoopRoutes?
        for seq in seqs {
            switch inFlight.removeValue(forKey: seq) {
            case .stored(let stored)?:
                acknowledged.append(stored)
            case .direct(var copy, _)?:
                directAcknowledged(copy)
                // Its ciphertext's storage takes the next Send read on this loop (or another's).
                if routes == nil { routes = services.router.routes(onLoop: connection.loopID) }
                routes!.recycle(&copy.delivery.ciphertext)
            case .storing?:
                inFlight[seq] = .storing(acked: true)  // the store's answer completes it
            case nil:
                break
            }
        }
        if !acknowledged.isEmpty {
            let router = services.router
            services.messages.acknowledge(device: device.deviceID, account: device.accountID, seqs: acknowledged,
                                          nowMilliseconds: Int64(Authenticator.unixMilliseconds()), on: connection.loop) { receipts in
                router.wake(receipts)
            }
        }
        giveBackIdleWindow()
        if pullAgain { pullDeliveries() }
        if hasWaitingDirects { releaseWaitingDirects(on: connection) }
    }

    func handleMessaging(_ stanza: Stanza, on connection: any ByteStream) {
        guard let device else { return }
        // The hot one first: a Send needs none of the completion plumbing below.
        if case .send(let message) = stanza { return accept(message, from: device, on: connection) }
        let loop = connection.loop
        let bound = LoopBound((self, connection), on: loop)
        let services = self.services
        switch stanza {
        case .listDevices(let requestID, let account):
            let target = account == 0 ? device.accountID : account
            services.directory.list(account: target, on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let devices?):
                    session.send(.deviceList(requestID: requestID, accountID: target, devices: devices), on: connection)
                case .success(nil):
                    session.answer(requestID, .unknownAccount, on: connection)
                case .failure:
                    session.answer(requestID, .internalError, on: connection)
                }
            }
        case .addDevice(let requestID, let key, let name):
            services.directory.add(account: device.accountID, staticKey: key, name: name, requestedBy: device.deviceID,
                                   now: Int64(time(nil)), on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let id): session.answer(requestID, .ok, value: id, on: connection)
                case .failure(let code): session.answer(requestID, code, on: connection)
                }
            }
        case .removeDevice(let requestID, let removed):
            services.directory.remove(account: device.accountID, device: removed, requestedBy: device.deviceID,
                                      now: Int64(time(nil)), receiptCap: Int64(services.messages.limits.messagesPerDevice / 2),
                                      on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let woken):
                    services.ledger.revoke(deviceID: removed)
                    services.router.revoke(device: removed)
                    for target in woken { services.router.wake(device: target) }
                    session.answer(requestID, .ok, on: connection)
                case .failure(let code):
                    session.answer(requestID, code, on: connection)
                }
            }
        case .publishKeys(let requestID, let identity, let signed, let oneTime):
            services.directory.publish(device: device.deviceID, identityKey: identity, signedPrekey: signed, oneTime: oneTime,
                                       on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let stock): session.answer(requestID, .ok, value: stock, on: connection)
                case .failure(let code): session.answer(requestID, code, on: connection)
                }
            }
        case .getKeys(let requestID, let account, let one):
            services.directory.bundles(account: account, device: one, on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let found?):
                    session.send(.keyBundles(requestID: requestID, accountID: account, bundles: found.bundles), on: connection)
                    for (owner, left) in found.low { services.router.notify(device: owner, .prekeysLow(remaining: left)) }
                case .success(nil):
                    session.answer(requestID, .unknownAccount, on: connection)
                case .failure:
                    session.answer(requestID, .internalError, on: connection)
                }
            }
        case .send:
            break  // handled above
        case .ack(let seqs):
            acknowledge(seqs, on: connection)
        case .createGroup(let requestID, let name, let members):
            guard allowChatty(requestID, "at most 5 group changes a second", on: connection) else { return }
            let router = services.router
            services.groups.create(creator: device.accountID, name: name, members: members,
                                   now: Int64(Authenticator.unixMilliseconds()), on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let outcome):
                    for target in outcome.woken { router.wake(device: target) }
                    session.answer(requestID, .ok, value: outcome.group, on: connection)
                case .failure(let code):
                    session.answer(requestID, code, on: connection)
                }
            }
        case .updateGroup(let requestID, let group, let operation, let target, let name):
            guard allowChatty(requestID, "at most 5 group changes a second", on: connection) else { return }
            let router = services.router
            services.groups.update(group: group, actor: device.accountID, operation: operation, target: target, name: name,
                                   now: Int64(Authenticator.unixMilliseconds()), on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let woken):
                    for target in woken { router.wake(device: target) }
                    session.answer(requestID, .ok, on: connection)
                case .failure(let code):
                    session.answer(requestID, code, on: connection)
                }
            }
        case .getGroup(let requestID, let group):
            services.groups.info(group: group, viewer: device.accountID, on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let info?):
                    session.send(.groupInfo(requestID: requestID, groupID: group, name: info.name, members: info.members), on: connection)
                case .success(nil):
                    session.answer(requestID, .notPermitted, message: "not a member of that group", on: connection)
                case .failure:
                    session.answer(requestID, .internalError, on: connection)
                }
            }
        case .mute(let request):
            guard allowChatty(request.requestID, "at most 5 a second", on: connection) else { return }
            services.mutes.set(account: device.accountID, request: request, now: Authenticator.unixMilliseconds(), on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let until): session.answer(request.requestID, .ok, value: until, on: connection)
                case .failure(let code): session.answer(request.requestID, code, on: connection)
                }
            }
        case .presenceAllow(let requestID, let viewer, let allowed):
            services.directory.setPresenceAllowed(owner: device.accountID, viewer: viewer, allowed: allowed, on: loop) { result in
                let (session, connection) = bound.value
                let code: ErrorCode
                switch result {
                case .success(true): code = .ok
                case .success(false): code = .unknownAccount
                case .failure: code = .internalError
                }
                session.answer(requestID, code, on: connection)
            }
        case .presenceSubscribe(let requestID, let owner):
            if owner == device.accountID {
                subscribePresence(owner: owner, requestID: requestID, on: connection)
            } else {
                services.directory.presenceAllowed(owner: owner, viewer: device.accountID, on: loop) { result in
                    let (session, connection) = bound.value
                    guard session.phase == .established else { return }
                    if case .success(true) = result {
                        session.subscribePresence(owner: owner, requestID: requestID, on: connection)
                    } else {
                        session.answer(requestID, .notPermitted, message: "that account does not share its presence with you",
                                       on: connection)
                    }
                }
            }
        case .typing(let to, _, let active):
            // Never stored and cheap to send, so bounded: at most 5 a second per connection.
            guard chattyStanzas.allow(now: connection.loop.now) else { return }
            services.router.typing(to: to, from: device.accountID, device: device.deviceID, active: active)
        case .registerPush(let requestID, let token):
            services.directory.setPushToken(device: device.deviceID, token: token.isEmpty ? nil : token, on: loop) { result in
                let (session, connection) = bound.value
                let code: ErrorCode = (try? result.get()) != nil ? .ok : .internalError
                session.answer(requestID, code, on: connection)
            }
        case .receipt(let requestID, let toAccount, let ids):
            guard toAccount != device.accountID, chattyStanzas.allow(now: connection.loop.now) else {
                answer(requestID, .overLimit, message: "receipts go to another account, at most 5 a second", on: connection)
                return
            }
            let router = services.router
            services.messages.read(messageIDs: ids, fromAccount: device.accountID, fromDevice: device.deviceID, toAccount: toAccount,
                                   nowMilliseconds: Int64(Authenticator.unixMilliseconds()), on: loop) { result in
                let (session, connection) = bound.value
                switch result {
                case .success(let woken?):
                    for target in woken { router.wake(device: target) }
                    session.answer(requestID, .ok, on: connection)
                case .success(nil):
                    session.answer(requestID, .unknownAccount, on: connection)
                case .failure:
                    session.answer(requestID, .internalError, on: connection)
                }
            }
        default:
            break
        }
    }

    private func accept(_ message: SendMessage, from device: DeviceIdentity, on connection: any ByteStream) {
        guard outstandingSends < ServerSession.maxOutstandingSends else {
            send(.sendResult(SendResult(messageID: message.messageID, code: .overLimit, message: "too many sends waiting")), on: connection)
            return
        }
        outstandingSends += 1
        route(message, from: device, on: connection)
    }

    /// The stored path (sections 20.1-20.2): checked and committed by the store, answered once
    /// durable.
    func store(_ message: SendMessage, from device: DeviceIdentity, on connection: any ByteStream) {
        let bound = LoopBound((self, connection), on: connection.loop)
        let router = services.router
        services.messages.accept(message, fromAccount: device.accountID, fromDevice: device.deviceID,
                                 nowMilliseconds: Int64(Authenticator.unixMilliseconds()), on: connection.loop) { result in
            let (session, connection) = bound.value
            session.outstandingSends -= 1
            let answer: SendResult
            switch result {
            case .success(.accepted(let recipients, let route)):
                session.remember(route, for: message)
                // Durable now: answer the sender, then tell the recipients' sessions.
                answer = SendResult(messageID: message.messageID, code: .ok)
                session.metrics.bump(.messagesAccepted)
                session.metrics.bump(.copiesRouted, by: recipients.count)
                for recipient in recipients {
                    switch recipient.notice {
                    case .normal: router.wake(device: recipient.device, sender: device.accountID, delivery: recipient.delivery)
                    case .silent: router.wake(device: recipient.device, sender: device.accountID, silent: true, delivery: recipient.delivery)
                    case .quiet: router.wake(device: recipient.device, delivery: recipient.delivery)  // muted: no push
                    }
                }
            case .success(.duplicate):
                answer = SendResult(messageID: message.messageID, code: .ok, duplicate: true)
            case .success(.mismatch(let devices)):
                answer = SendResult(messageID: message.messageID, code: .deviceListMismatch,
                                    message: "the copies must cover exactly these devices", devices: devices)
            case .success(.refused(let code, let why)):
                answer = SendResult(messageID: message.messageID, code: code, message: why)
            case .failure:
                answer = SendResult(messageID: message.messageID, code: .internalError, message: "the store failed; send again")
            }
            session.send(.sendResult(answer), on: connection)
            // Last: messages held behind this one may go now, after its wakes.
            session.storedSendFinished(message)
        }
    }

    /// A copy the store just committed for this device: sent at once when it is the next one
    /// this session owes the device and the window has room; otherwise the store is asked, which
    /// keeps the order (a copy can overtake another on its way through the router).
    func offer(_ delivery: Delivery) {
        guard phase == .established, confirmed, let connection, !pulling, !pullAgain,
              delivery.seq == lastDeliveredSeq + 1, deliveryRoom > 0
        else {
            pullDeliveries()
            return
        }
        deliverNow(delivery, on: connection)
    }

    /// Sends a stored copy and counts it against the window.
    private func deliverNow(_ delivery: Delivery, on connection: any ByteStream) {
        inFlight[deliverOnWire(delivery, on: connection)] = .stored(delivery.seq)
        lastDeliveredSeq = delivery.seq
    }

    /// Sends a Deliver under this connection's next `seq`; returns it.
    func deliverOnWire(_ delivery: Delivery, on connection: any ByteStream) -> UInt64 {
        lastWireSeq += 1
        sendDeliver(delivery, seq: lastWireSeq, on: connection)
        metrics.bump(.deliveries)
        return lastWireSeq
    }

    /// Fetches waiting messages for this device, within the delivery window. Called at login,
    /// when the router says something new arrived, and as acknowledgements free the window.
    /// The connection's first pull also reads the device's pre-key stock: one trip to the store
    /// at login.
    func pullDeliveries() {
        guard phase == .established, confirmed, let device, let connection else { return }
        if pulling {
            pullAgain = true
            return
        }
        let room = deliveryRoom
        guard room > 0 else {
            pullAgain = true
            return
        }
        pulling = true
        pullAgain = false
        let bound = LoopBound((self, connection), on: connection.loop)
        guard loginPulled else {
            services.messages.login(device: device.deviceID, limit: room, on: connection.loop) { result in
                let (session, connection) = bound.value
                if case .success(let login) = result {
                    session.loginPulled = true  // a refused login read is retried whole, pre-keys included
                    if let stock = login.prekeys, stock < UInt64(DeviceDirectory.prekeysLowMark) {
                        session.send(.prekeysLow(remaining: stock), on: connection)
                    }
                }
                session.pulled(result.map(\.deliveries), room: room, on: connection)
            }
            return
        }
        services.messages.pending(device: device.deviceID, afterSeq: lastDeliveredSeq, limit: room, on: connection.loop) { result in
            let (session, connection) = bound.value
            session.pulled(result, room: room, on: connection)
        }
    }

    /// What a pull brought: sends it, within the window, skipping what this connection has.
    private func pulled(_ result: Result<[Delivery], StoreError>, room: Int, on connection: any ByteStream) {
        pulling = false
        guard phase == .established else { return }
        guard case .success(let deliveries) = result else {
            // The store refused (busy): try again shortly rather than stall the backlog; until
            // then the session is not caught up (direct copies are stored behind the backlog).
            pullAgain = true
            connection.loop.scheduleTimer(in: 1_000) { [weak self] in self?.pullDeliveries() }
            releaseWaitingDirects(on: connection)
            return
        }
        for delivery in deliveries where delivery.seq > lastDeliveredSeq {
            if deliveredStoreSeqs.contains(delivery.seq) {
                lastDeliveredSeq = delivery.seq  // this connection has it already
            } else {
                deliverNow(delivery, on: connection)
            }
        }
        // Rows at or below the last one sent cannot come back from a pull: forget them.
        if !deliveredStoreSeqs.isEmpty {
            let last = lastDeliveredSeq
            deliveredStoreSeqs = deliveredStoreSeqs.filter { $0 > last }
        }
        if deliveries.count == room { pullAgain = true }  // maybe more: after acks
        if pullAgain && deliveryRoom > 0 { pullDeliveries() }
        releaseWaitingDirects(on: connection)
    }

    /// Answers request `requestID` with a Result stanza.
    func answer(_ requestID: UInt64, _ code: ErrorCode, message: String = "", value: UInt64? = nil, on connection: any ByteStream) {
        send(.result(RequestResult(requestID: requestID, code: code, message: message, value: value)), on: connection)
    }

    /// Takes one of the connection's chatty-stanza tokens (5 a second), or answers `overLimit`
    /// with `refusal` and returns false.
    func allowChatty(_ requestID: UInt64, _ refusal: String, on connection: any ByteStream) -> Bool {
        if chattyStanzas.allow(now: connection.loop.now) { return true }
        answer(requestID, .overLimit, message: refusal, on: connection)
        return false
    }

    func subscribePresence(owner: UInt64, requestID: UInt64, on connection: any ByteStream) {
        if presenceSubscriptions.insert(owner).inserted {
            services.router.subscribe(owner: owner, serial: serial, loop: connection.loop)
        }
        answer(requestID, .ok, on: connection)
    }

    /// Called once the session may receive: registers with the router and starts delivering.
    func goOnline(on connection: any ByteStream) {
        guard let device, !online else { return }
        online = true
        // The registry loop answers the registration with a pull (it also covers a wake that
        // found no entry just before): that first pull is the login's one trip to the store.
        services.router.sessionOnline(self, device: device, serial: serial, loop: connection.loop)
    }

    /// A newer session of the same device took over.
    func replacedByNewerSession() {
        guard let connection, phase == .established else { return }
        send(.goodbye(Goodbye(code: .sessionReplaced, message: "this device connected again", retryAfterMilliseconds: 0)), on: connection)
        phase = .closing
        connection.closeWhenFlushed(.local)
    }

    /// The device was removed from its account.
    func revoked() {
        guard let connection else { return }
        fail(connection, .deviceRevoked, "this device was removed from its account")
    }

    /// A stanza from elsewhere in the node for this device (not stored).
    func push(_ stanza: Stanza) {
        guard let connection else { return }
        send(stanza, on: connection)
    }
}
