import Reactor
import Store
import Wire

/// Group messages delivered directly (PROTOCOL.md section 20.8): one direct copy per member
/// device, the `SendResult` when every copy is acknowledged or stored, and the two aggregated
/// delivery receipts of section 22 (first copy acknowledged, last copy acknowledged) counted here
/// — or, when some copies were stored or this session closed first, completed by a store tally.
extension ServerSession {
    /// A directly sent group message whose copies are not all settled.
    struct GroupSend {
        let group: UInt64
        /// Copies sent.
        let sent: Int
        var remaining: Int
        var delivered = 0
        /// Copies out of the count: refused, or their device removed.
        var dropped = 0
        var firstReceiptSent = false
        var lastAcknowledgedBy: (account: UInt64, device: UInt64) = (0, 0)
        /// Copies that went to the store instead: where they wait.
        var stored: [(device: UInt64, seq: UInt64)] = []
        /// The first refusal or failure, which the `SendResult` reports.
        var failure: DirectOutcome?
        /// Copies that count toward the receipts.
        var total: Int { sent - dropped }

        /// Counts one settled copy; returns who acknowledged it when that makes the first
        /// aggregated receipt due now.
        mutating func count(_ outcome: DirectOutcome) -> (account: UInt64, device: UInt64)? {
            remaining -= 1
            switch outcome {
            case .delivered(let account, let by):
                delivered += 1
                lastAcknowledgedBy = (account, by)
                let completes = remaining == 0 && stored.isEmpty
                if !firstReceiptSent && !(completes && delivered == total) {
                    firstReceiptSent = true
                    return (account, by)
                }
            case .stored(let at, let seq):
                if seq != 0 { stored.append((at, seq)) } else { dropped += 1 }  // 0: its device was removed
            case .duplicate:
                delivered += 1
            case .refused, .failed:
                dropped += 1
                if failure == nil { failure = outcome }
            }
            return nil
        }
    }

    func sendGroupDirectly(_ message: SendMessage, to devices: [UInt64], from device: DeviceIdentity, on connection: any ByteStream) {
        sendState.directTotal += 1
        sendState.groupDirect += 1
        metrics.bump(.messagesAccepted)
        metrics.bump(.copiesRouted, by: devices.count)
        sendState.groupSends[message.messageID] = GroupSend(group: message.groupID, sent: message.copies.count, remaining: message.copies.count)
        sendState.recentSends.record(message.messageID, .directPending(account: 0))
        let origin = DirectCopy.Origin(serial: serial, loop: connection.loop.id, toAccount: 0, group: message.groupID)
        let now = connection.loopWallMilliseconds
        for copy in message.copies {
            services.router.direct(DirectCopy(
                device: copy.deviceID,
                delivery: Delivery(seq: 0, messageID: message.messageID, fromAccount: device.accountID, fromDevice: device.deviceID,
                                   sentAtMilliseconds: now, ciphertext: copy.ciphertext, groupID: message.groupID),
                origin: origin))
        }
    }

    /// One copy of a directly sent group message settled.
    func groupCopySettled(messageID: MessageID, group: UInt64, outcome: DirectOutcome) {
        // Counted in place through one lookup (the entry's `stored` list is not copied).
        let sending = sendState
        guard let device, let index = sending.groupSends.index(forKey: messageID) else { return }
        count(outcome)
        if let by = sending.groupSends.values[index].count(outcome) {
            let counted = sending.groupSends.values[index]
            receipt(messageID, group: counted.group, count: 1, total: counted.total, from: by, to: device)
        }
        guard sending.groupSends.values[index].remaining == 0 else { return }
        let state = sending.groupSends.remove(at: index).value
        if sendState.groupSends.isEmpty && sendState.groupSends.capacity > 8 { sendState.groupSends = [:] }
        outstandingSends -= 1
        sendState.directTotal -= 1
        sendState.groupDirect -= 1
        let answer = state.failure ?? .stored(device: 0, seq: 0)
        switch answer {
        case .refused, .failed: sendState.recentSends.forget(messageID)
        default: sendState.recentSends.record(messageID, .directDone)
        }
        if state.stored.isEmpty {
            if state.total > 0 && state.delivered == state.total {
                receipt(messageID, group: state.group, count: state.total, total: state.total, from: state.lastAcknowledgedBy, to: device)
            }
        } else {
            leaveTally(messageID, state, unsettled: 0, from: device, on: connection?.loop ?? services.router.loops[0])
        }
        guard let connection else { return }
        send(.sendResult(answer.sendResult(messageID: messageID)), on: connection)
        releaseHeld(from: device, on: connection)
    }

    /// The session is closing with group messages not settled: their counts go to the store,
    /// where their remaining copies settle (`DeliveryRouter` hands late outcomes to the store).
    func leaveGroupTallies(on loop: EventLoop) {
        guard let device, let sending, !sending.groupSends.isEmpty else { return }
        for (messageID, state) in sending.groupSends { leaveTally(messageID, state, unsettled: state.remaining, from: device, on: loop) }
        sending.groupSends = [:]
    }

    private func leaveTally(_ messageID: MessageID, _ state: GroupSend, unsettled: Int, from device: DeviceIdentity, on loop: EventLoop) {
        let router = services.router
        services.messages.settleGroupTally(
            messageID: messageID, group: state.group, senderAccount: device.accountID, senderDevice: device.deviceID,
            total: state.total, delivered: state.delivered, stored: state.stored, unsettled: unsettled,
            firstSent: state.firstReceiptSent, nowMilliseconds: Int64(Authenticator.unixMilliseconds()), on: loop
        ) { receipts in
            router.wake(receipts)
        }
    }

    /// An aggregated delivery receipt for this device, sent the direct way.
    private func receipt(_ messageID: MessageID, group: UInt64, count: Int, total: Int, from: (account: UInt64, device: UInt64),
                         to device: DeviceIdentity) {
        services.router.direct(DirectCopy(
            device: device.deviceID,
            delivery: Delivery(seq: 0, messageID: messageID, fromAccount: from.account, fromDevice: from.device,
                               sentAtMilliseconds: wallMilliseconds, ciphertext: [], kind: .delivered,
                               groupID: group, deliveredCount: UInt64(count), deliveredTotal: UInt64(total)),
            origin: nil))
    }
}
