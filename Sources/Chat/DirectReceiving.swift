import Reactor
import Store
import Wire

/// Direct delivery, receiving side (PROTOCOL.md section 20.8): a copy whose device is connected
/// and caught up is delivered from memory and numbered on the connection; its acknowledgement
/// settles its sender; what cannot be settled that way (window full, backlog, deadline, close) is
/// stored, in the order it was sent.
extension ServerSession {
    /// How long a directly delivered copy may wait for its acknowledgement before it is stored.
    static let directAckMilliseconds = 1_000
    /// Accounts whose device lists a session remembers for direct delivery.
    static let maxDirectRoutes = 64

    /// One of this connection's deliveries that its device has not acknowledged yet.
    enum InFlight {
        /// A stored copy: its sequence number in the device's queue.
        case stored(UInt64)
        /// A copy delivered from memory at loop time `since` (milliseconds).
        case direct(DirectCopy, since: UInt64)
        /// A direct copy on its way to the store after its acknowledgement deadline; `acked` when
        /// the acknowledgement came meanwhile.
        case storing(acked: Bool)
    }


    /// Takes a direct copy for this device: delivers it now when nothing stored is ahead of it
    /// and the window has room; keeps it in memory while the window is full or a read of stored
    /// copies (which may have been sent before it) is on its way; stores it when the store holds
    /// more for the device than the window takes, or when too many wait. False when this session
    /// cannot take it at all (not established, or closing): the router stores it.
    func takeDirect(_ copy: DirectCopy) -> Bool {
        guard phase == .established, confirmed, online, let connection else {
            // Closing: the copies it has go to the store now, before this one is given back,
            // so that the store keeps the order they were sent in.
            if let connection, online { storeUnsettledDirects(on: connection.loop) }
            return false
        }
        directTaken += 1
        if directStoring == 0, !pullAgain {
            if hasWaitingDirects && !pulling { releaseWaitingDirects(on: connection) }  // room may have come back
            if !pulling && !hasWaitingDirects && deliveryRoom > 0 {
                deliverDirect(copy, on: connection)
                return true
            }
            if (directWaiting?.count ?? 0) < ServerSession.deliveryWindow {
                // Storing it would make every later copy follow it through the store while the
                // device keeps up: under a steady stream, the store's pace for as long as it lasts.
                if directWaiting == nil { directWaiting = LoopQueue(keptCapacity: 16) }
                directWaiting!.push((copy, connection.loopNow))
                armDirectTimer(on: connection)
                return true
            }
        }
        // The store's order must stay the delivery order (a reconnect replays it): copies
        // delivered and not yet acknowledged go there first, then those waiting.
        storeUnsettledDirects(on: connection.loop)
        storeDirect(copy, deliveredAs: nil, on: connection.loop)
        return true
    }

    private func deliverDirect(_ copy: DirectCopy, on connection: any ByteStream) {
        let seq = deliverOnWire(copy.delivery, on: connection)
        inFlight[seq] = .direct(copy, since: connection.loopNow)
        armDirectTimer(on: connection)
    }

    private func armDirectTimer(on connection: any ByteStream) {
        guard !directTimerArmed else { return }
        directTimerArmed = true
        _ = connection.loop.scheduleTimer(in: ServerSession.directAckMilliseconds, target: self, tag: 0)
    }

    /// A pull came back or acknowledgements freed the window: the copies that wait are
    /// delivered, in the order they came, as far as the window has room and no read of stored
    /// copies is on its way; when the store turned out to hold more than the window takes, they
    /// follow that backlog through the store.
    func releaseWaitingDirects(on connection: any ByteStream) {
        guard let waiting = directWaiting, !waiting.isEmpty, !pulling, phase == .established else { return }
        if directStoring > 0 || pullAgain {
            storeUnsettledDirects(on: connection.loop)
            return
        }
        // Each delivery takes one slot of the window's room. The emptied queue goes when the
        // session idles (`giveBackIdleWindow`).
        waiting.drain(limit: min(waiting.count, deliveryRoom)) { deliverDirect($0.copy, on: connection) }
    }

    var hasWaitingDirects: Bool { !(directWaiting?.isEmpty ?? true) }

    /// Stores, in order, the direct copies delivered and not acknowledged, then those waiting.
    private func storeUnsettledDirects(on loop: EventLoop) {
        storeDeliveredDirects(dueBy: .max, on: loop)
        guard let waiting = directWaiting else { return }
        waiting.drain(limit: waiting.count) { storeDirect($0.copy, deliveredAs: nil, on: loop) }
    }

    /// The device acknowledged a direct copy: its sender hears so, and for a one-to-one message
    /// the sender's device gets a delivery receipt the same way (a group message's sender counts
    /// its copies and sends the aggregated receipts itself).
    func directAcknowledged(_ copy: DirectCopy) {
        let router = services.router
        guard let device else { return }
        guard copy.delivery.kind == .message, copy.delivery.groupID == 0, copy.delivery.fromAccount != device.accountID else {
            router.settle(copy, .delivered(account: device.accountID, device: device.deviceID))
            return
        }
        // The receipt carries the message's origin (if it has one): its registry settles the
        // message with it.
        router.receiptSettling(DirectCopy(
            device: copy.delivery.fromDevice,
            delivery: Delivery(seq: 0, messageID: copy.delivery.messageID, fromAccount: device.accountID, fromDevice: device.deviceID,
                               sentAtMilliseconds: wallMilliseconds, ciphertext: [], kind: .delivered),
            origin: copy.origin))
    }

    /// Stores a direct copy: one this connection could not take yet (`deliveredAs` nil; it comes
    /// back through the store, in order) or one delivered as `deliveredAs` and not acknowledged
    /// in time. Its sender is answered once it is durable.
    func storeDirect(_ copy: DirectCopy, deliveredAs wireSeq: UInt64?, on loop: EventLoop) {
        guard let device else { return }
        if wireSeq == nil { directStoring += 1 }
        let bound = LoopBound(self, on: loop)
        let services = self.services
        services.messages.store(copy: copy.delivery, for: device.deviceID, on: loop) { result in
            let session = bound.value
            if wireSeq == nil { session.directStoring -= 1 }
            services.router.settle(copy, DirectOutcome(result, device: device.deviceID))
            guard let wireSeq else {
                session.pullDeliveries()  // it waits in the store now, behind what was there
                return
            }
            guard case .storing(let acked)? = session.inFlight[wireSeq] else { return }
            guard case .success(.stored(let seq)) = result else {
                session.inFlight.removeValue(forKey: wireSeq)  // not kept: a late acknowledgement is ignored
                session.giveBackIdleWindow()
                if session.pullAgain { session.pullDeliveries() }  // the window has room again
                if let connection = session.connection { session.releaseWaitingDirects(on: connection) }
                return
            }
            // Already on this connection: a pull (one in flight now included) must not send it
            // again, acknowledged or not.
            if seq == session.lastDeliveredSeq + 1 && !session.pulling {
                session.lastDeliveredSeq = seq
            } else if seq > session.lastDeliveredSeq {
                session.deliveredStoreSeqs.insert(seq)
            }
            if acked {
                session.inFlight.removeValue(forKey: wireSeq)
                session.giveBackIdleWindow()
                if session.pullAgain { session.pullDeliveries() }
                if let connection = session.connection { session.releaseWaitingDirects(on: connection) }
                services.messages.acknowledge(device: device.deviceID, account: device.accountID, seqs: [seq],
                                              nowMilliseconds: Int64(Authenticator.unixMilliseconds()), on: loop) { receipts in
                    services.router.wake(receipts)
                }
            } else if session.phase == .established {
                session.inFlight[wireSeq] = .stored(seq)
            }
        }
    }

    /// Stores the direct copies whose acknowledgement deadline passed; runs again for the rest.
    func directDeadline() {
        directTimerArmed = false
        guard phase == .established, let connection else { return }
        let now = connection.loop.now
        let limit = UInt64(ServerSession.directAckMilliseconds)
        let dueBy = now >= limit ? now - limit : 0
        var earliest = storeDeliveredDirects(dueBy: dueBy, on: connection.loop)
        if let oldest = directWaiting?.first?.since {
            // Waiting for a whole deadline: they go to the store, all of them (later ones must not
            // overtake), after every delivered one.
            if oldest <= dueBy {
                storeUnsettledDirects(on: connection.loop)
                earliest = .max  // nothing delivered or waiting is left to time
            } else {
                earliest = min(earliest, oldest)
            }
        }
        if earliest != .max {
            directTimerArmed = true
            _ = connection.loop.scheduleTimer(in: Int(earliest + limit - now), target: self, tag: 0)
        }
        giveBackIdleWindow()  // the storage `acknowledge` left for this timer
    }

    /// Stores, in the order they were delivered, the direct copies delivered at or before loop
    /// time `dueBy`; returns when the earliest remaining one was delivered (`.max`: none).
    @discardableResult
    private func storeDeliveredDirects(dueBy: UInt64, on loop: EventLoop) -> UInt64 {
        var due: [(UInt64, DirectCopy)] = []
        var earliest = UInt64.max
        inFlight.forEach { seq, entry in
            guard case .direct(let copy, let since) = entry else { return }
            if since <= dueBy { due.append((seq, copy)) } else { earliest = min(earliest, since) }
        }
        for (seq, copy) in due {  // in sequence order
            inFlight[seq] = .storing(acked: false)
            storeDirect(copy, deliveredAs: seq, on: loop)
        }
        return earliest
    }

    /// Direct copies delivered and not acknowledged, and those waiting: what
    /// `returnDirectCopies` gives back.
    var returnDirectCopiesCount: Int {
        var count = directWaiting?.count ?? 0
        inFlight.forEach { _, entry in
            if case .direct = entry { count += 1 }
        }
        return count
    }

    /// The connection ended: direct copies it did not acknowledge go to the store (through the
    /// registry, after this session's unregistration, so later copies follow them).
    func returnDirectCopies() {
        var copies: [(UInt64, DirectCopy)] = []
        inFlight.forEach { seq, entry in
            if case .direct(let copy, _) = entry { copies.append((seq, copy)) }
        }
        for (seq, copy) in copies {  // in the order they were delivered
            inFlight.removeValue(forKey: seq)
            services.router.returnDirect(copy, from: serial)
        }
        guard let waiting = directWaiting else { return }
        waiting.drain(limit: waiting.count) { services.router.returnDirect($0.copy, from: serial) }
    }
}
extension ServerSession: TimerTarget {
    public func timerFired(tag: Int) { directDeadline() }
}
