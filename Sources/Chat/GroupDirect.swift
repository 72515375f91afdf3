import Reactor
import Store
import Wire

/// Group messages delivered directly (PROTOCOL.md section 20.8): one direct copy per member
/// device, the `SendResult` when every copy is acknowledged or stored, and the two aggregated
/// delivery receipts of section 22 (first copy acknowledged, last copy acknowledged) counted here
/// — or, when some copies were stored, completed by the store's tally.
extension ServerSession {
    /// A directly sent group message whose copies are not all settled.
    struct GroupSend {
        let group: UInt64
        let total: Int
        var remaining: Int
        var delivered = 0
        var firstReceiptSent = false
        /// Copies that went to the store instead: where they wait.
        var stored: [(device: UInt64, seq: UInt64)] = []
        /// The first refusal or failure, which the `SendResult` reports.
        var failure: DirectOutcome?
    }

    func sendGroupDirectly(_ message: SendMessage, to devices: [UInt64], from device: DeviceRecord, on connection: any ByteStream) {
        directTotal += 1
        groupDirect += 1
        metrics.bump(.messagesAccepted)
        metrics.bump(.copiesRouted, by: devices.count)
        groupSends[message.messageID] = GroupSend(group: message.groupID, total: message.copies.count, remaining: message.copies.count)
        recentSends.record(message.messageID, .directPending(account: 0))
        let origin = DirectCopy.Origin(serial: serial, loop: connection.loop.id, toAccount: 0, group: message.groupID)
        let now = Authenticator.unixMilliseconds()
        for copy in message.copies {
            services.router.direct(DirectCopy(
                device: copy.deviceID,
                delivery: Delivery(seq: 0, messageID: message.messageID, fromAccount: device.accountID, fromDevice: device.deviceID,
                                   sentAtMilliseconds: now, ciphertext: copy.ciphertext, groupID: message.groupID),
                origin: origin))
        }
    }

    /// One copy of a directly sent group message settled.
    func groupCopySettled(messageID: [UInt8], group: UInt64, outcome: DirectOutcome) {
        guard phase == .established, let connection, let device, var state = groupSends[messageID] else { return }
        switch outcome {
        case .delivered(let account, let by):
            state.delivered += 1
            if state.delivered == state.total {
                receipt(messageID, state, count: state.total, from: (account, by), to: device)  // the last (and first, of one)
            } else if !state.firstReceiptSent {
                state.firstReceiptSent = true
                receipt(messageID, state, count: 1, from: (account, by), to: device)
            }
        case .stored(let at, let seq):
            if seq != 0 { state.stored.append((at, seq)) } else { state.delivered += 1 }  // a removed device: out of the count
        case .duplicate:
            state.delivered += 1
        case .refused, .failed:
            if state.failure == nil { state.failure = outcome }
        }
        state.remaining -= 1
        guard state.remaining == 0 else {
            groupSends[messageID] = state
            return
        }
        groupSends.removeValue(forKey: messageID)
        outstandingSends -= 1
        directTotal -= 1
        groupDirect -= 1
        let answer = state.failure ?? .stored(device: 0, seq: 0)
        switch answer {
        case .refused, .failed: recentSends.forget(messageID)
        default: recentSends.record(messageID, .directDone)
        }
        send(.sendResult(answer.sendResult(messageID: messageID)), on: connection)
        if !state.stored.isEmpty {
            let router = services.router
            services.messages.settleGroupTally(
                messageID: messageID, group: group, senderAccount: device.accountID, senderDevice: device.deviceID, total: state.total,
                stored: state.stored, firstSent: state.firstReceiptSent, nowMilliseconds: Int64(Authenticator.unixMilliseconds()),
                on: connection.loop
            ) { receipts in
                for receipt in receipts { router.wake(device: receipt.device, delivery: receipt.delivery) }
            }
        }
        releaseHeld(from: device, on: connection)
    }

    /// An aggregated delivery receipt for this device, sent the direct way.
    private func receipt(_ messageID: [UInt8], _ state: GroupSend, count: Int, from: (account: UInt64, device: UInt64),
                         to device: DeviceRecord) {
        services.router.direct(DirectCopy(
            device: device.deviceID,
            delivery: Delivery(seq: 0, messageID: messageID, fromAccount: from.account, fromDevice: from.device,
                               sentAtMilliseconds: Authenticator.unixMilliseconds(), ciphertext: [], kind: .delivered,
                               groupID: state.group, deliveredCount: UInt64(count), deliveredTotal: UInt64(state.total)),
            origin: nil))
    }
}
