import Reactor
import Store
import Wire

/// Direct delivery, sending side (PROTOCOL.md section 20.8): which way each Send goes, the
/// ordering rules that hold a send back, and its answer when it settles.
extension ServerSession {
    /// Sends in progress from this session to one account, by the way they went.
    struct SendPaths {
        var direct = 0
        var stored = 0
        var held = 0
        var isIdle: Bool { direct == 0 && stored == 0 && held == 0 }
    }

    /// Sends a message directly when this session knows its devices from a recent stored send of
    /// the same kind (one-to-one: the recipient's only device; group: every member device), and
    /// stores it otherwise. One sending device's messages to one receiving device keep their
    /// order, so a message waits (is held) when it would overtake: one that must be stored waits
    /// while a direct one that may reach the same devices is unsettled (one-to-one: to the same
    /// account; group: any), one that can go directly waits while a stored one that may reach the
    /// same devices is on its way to the store — and goes directly once that is answered, so a
    /// steady stream returns to the direct path. Once one waits, the ones after it to the same
    /// account (after a group message: all) wait too.
    func route(_ message: SendMessage, from device: DeviceIdentity, on connection: any ByteStream) {
        let account = message.toAccount  // 0 for a group message
        let state = sendState  // one reference for the whole routing (each access would retain it)
        let earlier = state.recentSends.path(of: message.messageID)
        if earlier == .directDone {
            // Sent directly before and answered: the store never saw it, so it is answered here.
            outstandingSends -= 1
            send(.sendResult(SendResult(messageID: message.messageID, code: .ok, duplicate: true)), on: connection)
            return
        }
        if case .directPending(let pendingTo)? = earlier, pendingTo != account {
            // The same id elsewhere while the first is on its way: a client error.
            outstandingSends -= 1
            send(.sendResult(SendResult(messageID: message.messageID, code: .overLimit,
                                        message: "this message id is on its way elsewhere; wait for its answer")), on: connection)
            return
        }
        if message.groupID != 0 {
            // Held first (cheap), so that re-routing held sends does not check their copies again.
            let pending = state.groupSends[message.messageID] != nil || (earlier != nil && earlier != .stored)
            let direct = pending || !state.heldSends.isEmpty || earlier != nil ? nil : directRoute(for: message, state)
            if pending || !state.heldSends.isEmpty || (direct != nil ? state.storedTotal > 0 : state.directTotal > 0) {
                state.heldGroups += 1
                state.heldSends.append(message)
            } else if let direct {
                sendGroupDirectly(message, to: direct.devices, from: device, on: connection)
            } else {
                state.groupStored += 1
                state.storedTotal += 1
                state.recentSends.record(message.messageID, .stored)
                store(message, from: device, on: connection)
            }
            return
        }
        let direct = earlier == nil ? directRoute(for: message, state) : nil
        let known = state.sendPaths.index(forKey: account)  // one lookup for the read and the write back
        var paths = known.map { state.sendPaths[at: $0] } ?? SendPaths()
        if paths.held > 0 || state.heldGroups > 0 || (direct == nil && (paths.direct > 0 || state.groupDirect > 0))
            || (direct != nil && (paths.stored > 0 || state.groupStored > 0)) || earlier == .directPending(account: account) {
            paths.held += 1
            state.heldSends.append(message)
        } else if let direct {
            paths.direct += 1
            state.directTotal += 1
            metrics.bump(.messagesAccepted)
            metrics.bump(.copiesRouted)
            let copy = DirectCopy(
                device: direct.devices[0],
                delivery: Delivery(seq: 0, messageID: message.messageID, fromAccount: device.accountID, fromDevice: device.deviceID,
                                   sentAtMilliseconds: connection.loopWallMilliseconds, ciphertext: message.copies[0].ciphertext),
                origin: DirectCopy.Origin(serial: serial, loop: connection.loopID, toAccount: account, group: 0))
            state.recentSends.record(message.messageID, .directPending(account: account), absent: true)  // earlier == nil
            services.router.direct(copy)
        } else {
            paths.stored += 1
            state.storedTotal += 1
            state.recentSends.record(message.messageID, .stored)
            store(message, from: device, on: connection)
        }
        if let known { state.sendPaths[at: known] = paths } else { state.sendPaths[account] = paths }
    }

    /// The route this session remembers for the message's recipients, if it is current and the
    /// copies go exactly to its devices.
    private func directRoute(for message: SendMessage, _ state: SendingState) -> MessageStore.DirectRoute? {
        guard services.router.messages != nil else { return nil }
        let known = message.groupID != 0 ? state.groupRoutes[message.groupID] : state.directRoutes[message.toAccount]
        guard let known, !known.devices.isEmpty, known.devices.count == message.copies.count,
            known.version == services.messages.thread.directoryVersion.current
        else { return nil }
        if known.devices.count == 1 { return known.devices[0] == message.copies[0].deviceID ? known : nil }
        return ServerSession.copies(message.copies, coverExactly: known.devices) ? known : nil
    }

    /// True when the copies go to `devices` (sorted, as the store lists them), each exactly once:
    /// every copy's device found in the list and none twice. A bitmap on the stack marks what was
    /// found, so a group send is checked without an allocation.
    static func copies(_ copies: MessageCopies, coverExactly devices: [UInt64]) -> Bool {
        guard copies.count == devices.count else { return false }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: (devices.count + 63) / 64) { seen in
            seen.initialize(repeating: 0)
            for copy in copies {
                var low = 0, high = devices.count
                while low < high {
                    let middle = (low + high) / 2
                    if devices[middle] < copy.deviceID { low = middle + 1 } else { high = middle }
                }
                guard low < devices.count, devices[low] == copy.deviceID else { return false }
                let bit = UInt64(1) << UInt64(low % 64)
                guard seen[low / 64] & bit == 0 else { return false }
                seen[low / 64] |= bit
            }
            return true
        }
    }

    /// The end of a direct one-to-one message of this session: answers it, and lets messages
    /// held behind it go.
    func directSettled(messageID: MessageID, toAccount: UInt64, outcome: DirectOutcome) {
        guard phase == .established, let connection, let device else { return }
        outstandingSends -= 1
        count(outcome)
        let state = sendState  // one reference for the whole settlement
        switch outcome {
        case .delivered, .stored, .duplicate: state.recentSends.record(messageID, .directDone)
        case .refused, .failed: state.recentSends.forget(messageID)
        }
        send(.sendResult(outcome.sendResult(messageID: messageID)), on: connection)
        guard let known = state.sendPaths.index(forKey: toAccount) else { return }
        state.sendPaths[at: known].direct -= 1
        state.directTotal -= 1
        if state.sendPaths[at: known].isIdle { state.sendPaths.remove(at: known) }
        if !state.heldSends.isEmpty { releaseHeld(from: device, on: connection) }
    }

    /// Counts how a direct copy ended (`switchboard_direct_copies_total`).
    func count(_ outcome: DirectOutcome) {
        switch outcome {
        case .delivered: metrics.bump(.directDelivered)
        case .stored(_, let seq) where seq != 0: metrics.bump(.directStored)
        default: break
        }
    }

    /// A stored send finished (its answer is on its way).
    func storedSendFinished(_ message: SendMessage) {
        sendState.storedTotal -= 1
        if message.groupID != 0 {
            sendState.groupStored -= 1
        } else if var paths = sendState.sendPaths[message.toAccount] {
            paths.stored -= 1
            settle(paths, for: message.toAccount)
        }
        guard phase == .established, let connection, let device else { return }
        releaseHeld(from: device, on: connection)
    }

    /// Routes everything held again, in order, once something settled (`route` holds again
    /// whatever must still wait).
    func releaseHeld(from device: DeviceIdentity, on connection: any ByteStream) {
        guard !sendState.heldSends.isEmpty else { return }
        let released = sendState.heldSends
        sendState.heldSends = []
        sendState.heldGroups = 0
        for account in Set(released.lazy.filter { $0.groupID == 0 }.map(\.toAccount)) {
            guard var paths = sendState.sendPaths[account] else { continue }
            paths.held = 0
            settle(paths, for: account)
        }
        for message in released { route(message, from: device, on: connection) }
    }

    private func settle(_ paths: SendPaths, for account: UInt64) {
        if paths.isIdle { sendState.sendPaths.removeValue(forKey: account) } else { sendState.sendPaths[account] = paths }
    }

    /// Remembers what the store said about a message's recipients.
    func remember(_ route: MessageStore.DirectRoute?, for message: SendMessage) {
        if message.groupID != 0 {
            remember(route, key: message.groupID, in: &sendState.groupRoutes)
        } else {
            remember(route, key: message.toAccount, in: &sendState.directRoutes)
        }
    }

    private func remember(_ route: MessageStore.DirectRoute?, key: UInt64, in routes: inout IDMap<MessageStore.DirectRoute>) {
        guard let route else {
            routes.removeValue(forKey: key)
            return
        }
        if routes.count >= ServerSession.maxDirectRoutes && routes[key] == nil { routes.removeAll() }
        routes[key] = route
    }
}

/// The sending side of direct delivery for one session (PROTOCOL.md section 20.8): the routes the
/// store gave for recent recipients, sends in progress by path, sends held back to keep their
/// order, recent message ids, and group messages whose copies are not all settled.
final class SendingState {
    /// Recipients' devices as the store last said, by account and by group.
    var directRoutes = IDMap<MessageStore.DirectRoute>()
    var groupRoutes = IDMap<MessageStore.DirectRoute>()
    /// One-to-one sends in progress by recipient account, and sends held back.
    var sendPaths = IDMap<ServerSession.SendPaths>()
    var heldSends: [SendMessage] = []
    var heldGroups = 0
    /// Direct sends unsettled (group ones among them), stored sends in the store (group ones
    /// among them): what the ordering rules look at across conversations.
    var directTotal = 0
    var groupDirect = 0
    var storedTotal = 0
    var groupStored = 0
    var recentSends = RecentSends()
    /// Group messages sent directly and not settled, by message id.
    var groupSends: [MessageID: ServerSession.GroupSend] = [:]
}
