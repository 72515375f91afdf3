import Reactor
import Wire

/// The durable message queue (PROTOCOL.md section 20): every copy of an accepted message waits
/// here, keyed by recipient device and its delivery sequence number, until the device
/// acknowledges it. The sender is answered only after the batch holding its copies is committed.
public final class MessageStore: Sendable {
    public struct Limits: Sendable {
        public var messagesPerDevice = 100_000
        public var bytesPerDevice = 256 * 1024 * 1024
        public var retentionSeconds: Int64 = 30 * 86_400
        public init() {}
    }

    /// What accepting a message did.
    public enum Acceptance: Sendable {
        /// Stored; these recipient devices have something new, each with how to tell it and the
        /// stored copy as `pending` would return it (so a connected device can get it without a
        /// second trip to the store).
        /// `route`, for a one-to-one message that direct delivery could carry (PROTOCOL.md
        /// section 20.8), lets the sender's session send the next ones without the store.
        case accepted(recipients: [(device: UInt64, notice: MuteStore.Notice, delivery: Delivery)], route: DirectRoute?)
        /// The same message id from the same device was accepted before.
        case duplicate
        /// The copies do not cover exactly these devices.
        case mismatch([DeviceAddress])
        case refused(ErrorCode, String)
    }

    /// What a sender's session may remember to deliver later messages to one account or group
    /// directly (section 20.8): read at directory version `version`, valid while that is current.
    public struct DirectRoute: Sendable {
        public let version: UInt64
        /// The devices the copies must go to, in increasing order: for an account its only
        /// device; for a group every member device (none of the sender's account).
        public let devices: [UInt64]
    }

    public let thread: StoreThread
    public let limits: Limits

    public init(thread: StoreThread, limits: Limits = Limits()) {
        self.thread = thread
        self.limits = limits
    }

    /// Checks the device list and stores one copy per device, all or nothing.
    public func accept(_ message: SendMessage, fromAccount: UInt64, fromDevice: UInt64, nowMilliseconds: Int64,
                       on loop: EventLoop, completion: @escaping @Sendable (Result<Acceptance, StoreError>) -> Void) {
        let limits = self.limits
        thread.request(on: loop, { (db) throws(StoreError) -> Acceptance in
            let version = db.directoryVersion.current
            let sender = SQLiteDatabase.Value.integer(Int64(fromDevice))
            guard try DeviceDirectory.isActive(db, device: fromDevice) else {
                return .refused(.deviceRevoked, "this device was removed from its account")
            }
            if try !db.query("SELECT 1 FROM accepted_messages WHERE sender_device = ? AND message_id = ?",
                             [sender, .blob(message.messageID.bytes)]).isEmpty {
                return .duplicate
            }
            var expected: Set<DeviceAddress> = []
            if message.groupID != 0 {
                // A group message goes to every device of every member, the sender's other
                // devices included.
                guard let members = try GroupStore.members(db, group: message.groupID),
                    members.contains(where: { $0.accountID == fromAccount })
                else {
                    return .refused(.notPermitted, "not a member of group \(message.groupID)")
                }
                // Every member's active devices in one statement, not one per member.
                for row in try db.query("""
                    SELECT d.account_id, d.id FROM group_members m JOIN devices d ON d.account_id = m.account_id
                    WHERE m.group_id = ? AND d.revoked_at IS NULL
                    """, [.integer(Int64(message.groupID))]) {
                    expected.insert(DeviceAddress(accountID: UInt64(row[0].integer ?? 0), deviceID: UInt64(row[1].integer ?? 0)))
                }
            } else {
                guard let recipients = try DeviceDirectory.activeDeviceIDs(db, account: message.toAccount) else {
                    return .refused(.unknownAccount, "account \(message.toAccount) does not exist")
                }
                expected = Set(recipients.map { DeviceAddress(accountID: message.toAccount, deviceID: $0) })
                if message.toAccount != fromAccount {
                    for own in try DeviceDirectory.activeDeviceIDs(db, account: fromAccount) ?? [] {
                        expected.insert(DeviceAddress(accountID: fromAccount, deviceID: own))
                    }
                }
            }
            expected.remove(DeviceAddress(accountID: fromAccount, deviceID: fromDevice))
            let given = message.copies.map(\.deviceID)
            let expectedIDs = Set(expected.map(\.deviceID))
            guard Set(given).count == given.count, Set(given) == expectedIDs else {
                return .mismatch(expected.sorted())
            }
            // Room for every copy, or nothing is stored; the same read gives each copy its sequence.
            var nextSeq: [Int64] = []
            nextSeq.reserveCapacity(message.copies.count)
            for copy in message.copies {
                let row = try db.query("SELECT queued_count, queued_bytes, next_seq FROM devices WHERE id = ?",
                                       [.integer(Int64(copy.deviceID))])
                let count = row.first?[0].integer ?? 0, bytes = row.first?[1].integer ?? 0
                if count + 1 > Int64(limits.messagesPerDevice) || bytes + Int64(copy.ciphertext.count) > Int64(limits.bytesPerDevice) {
                    return .refused(.recipientQueueFull, "device \(copy.deviceID) has too much waiting")
                }
                nextSeq.append(row.first?[2].integer ?? 1)
            }
            let accountOf = Dictionary(expected.map { ($0.deviceID, $0.accountID) }, uniquingKeysWith: { a, _ in a })
            var notices: [UInt64: MuteStore.Notice] = [:]  // by recipient account
            var recipients: [(device: UInt64, notice: MuteStore.Notice, delivery: Delivery)] = []
            for (index, copy) in message.copies.enumerated() {
                let owner = accountOf[copy.deviceID] ?? 0
                let notice: MuteStore.Notice
                if owner == fromAccount {
                    notice = .normal  // the sender's own devices: a sync copy, never muted
                } else if let known = notices[owner] {
                    notice = known
                } else {
                    notice = try MuteStore.notice(db, account: owner, sender: fromAccount, group: message.groupID, now: nowMilliseconds)
                    notices[owner] = notice
                }
                let seq = nextSeq[index]  // copies go to distinct devices (checked above)
                recipients.append((copy.deviceID, notice, Delivery(
                    seq: UInt64(seq), messageID: message.messageID, fromAccount: fromAccount, fromDevice: fromDevice,
                    sentAtMilliseconds: UInt64(nowMilliseconds), ciphertext: copy.ciphertext, kind: .message,
                    groupID: message.groupID, muted: notice.rawValue != 0)))
                try MessageStore.enqueue(db, recipients[recipients.count - 1].delivery, for: copy.deviceID, muted: notice.rawValue)
            }
            try db.query("INSERT INTO accepted_messages(sender_device, message_id, accepted_at) VALUES (?, ?, ?)",
                         [sender, .blob(message.messageID.bytes), .integer(nowMilliseconds / 1000)])
            if message.groupID != 0 {
                // Group delivery receipts are aggregated per message: count the copies that go to
                // other accounts; acknowledgements count up (section 22).
                let others = recipients.filter { accountOf[$0.device] != fromAccount }.count
                if others > 0 {
                    try db.query("""
                        INSERT INTO group_receipts(sender_device, message_id, sender_account, group_id, delivered, total, created_at)
                        VALUES (?, ?, ?, ?, 0, ?, ?)
                        """, [sender, .blob(message.messageID.bytes), .integer(Int64(fromAccount)), .integer(Int64(message.groupID)),
                              .integer(Int64(others)), .integer(nowMilliseconds)])
                }
            }
            // Direct delivery needs the sender's account to have only the sending device, no mute,
            // and for one-to-one messages a single recipient device.
            var route: DirectRoute?
            if message.groupID == 0, message.toAccount != fromAccount, recipients.count == 1, expected.count == 1,
                accountOf[recipients[0].device] == message.toAccount, recipients[0].notice == .normal {
                route = DirectRoute(version: version, devices: [recipients[0].device])
            } else if message.groupID != 0, !recipients.isEmpty, !expected.contains(where: { $0.accountID == fromAccount }),
                recipients.allSatisfy({ $0.notice == .normal }) {
                route = DirectRoute(version: version, devices: recipients.map(\.device).sorted())
            }
            return .accepted(recipients: recipients, route: route)
        }, completion: completion)
    }

    /// Up to `limit` waiting messages of a device after `afterSeq`, in order.
    public func pending(device: UInt64, afterSeq: UInt64, limit: Int, on loop: EventLoop,
                        completion: @escaping @Sendable (Result<[Delivery], StoreError>) -> Void) {
        thread.request(on: loop, readOnly: true, { (db) throws(StoreError) -> [Delivery] in
            try MessageStore.pending(db, device: device, afterSeq: afterSeq, limit: limit)
        }, completion: completion)
    }

    /// What a device needs at login, in one trip to the store: its first waiting messages and
    /// its one-time pre-key stock (nil: it never published keys).
    public func login(device: UInt64, limit: Int, on loop: EventLoop,
                      completion: @escaping @Sendable (Result<(deliveries: [Delivery], prekeys: UInt64?), StoreError>) -> Void) {
        thread.request(on: loop, readOnly: true, { (db) throws(StoreError) -> (deliveries: [Delivery], prekeys: UInt64?) in
            (try MessageStore.pending(db, device: device, afterSeq: 0, limit: limit), try DeviceDirectory.prekeyStock(db, device: device))
        }, completion: completion)
    }

    static func pending(_ db: SQLiteDatabase, device: UInt64, afterSeq: UInt64, limit: Int) throws(StoreError) -> [Delivery] {
        try db.query("""
            SELECT seq, message_id, sender_account, sender_device, sent_at, ciphertext, kind, group_id, muted,
                   receipt_count, receipt_total FROM messages
            WHERE recipient_device = ? AND seq > ? ORDER BY seq LIMIT ?
            """, [.integer(Int64(device)), .integer(Int64(afterSeq)), .integer(Int64(limit))]
        ).map {
            Delivery(seq: UInt64($0[0].integer ?? 0), messageID: MessageID($0[1].blob ?? []), fromAccount: UInt64($0[2].integer ?? 0),
                     fromDevice: UInt64($0[3].integer ?? 0), sentAtMilliseconds: UInt64($0[4].integer ?? 0),
                     ciphertext: $0[5].blob ?? [], kind: Delivery.Kind(rawValue: UInt64($0[6].integer ?? 1)) ?? .message,
                     groupID: UInt64($0[7].integer ?? 0), muted: ($0[8].integer ?? 0) != 0,
                     deliveredCount: UInt64($0[9].integer ?? 0), deliveredTotal: UInt64($0[10].integer ?? 0))
        }
    }

    /// Forgets acknowledged copies and, for messages between two accounts, queues a delivery
    /// receipt for every device of the sender's account. Completion: the receipts queued, in
    /// order. An ack lost in a crash means a redelivery, which clients drop by message id.
    public func acknowledge(device: UInt64, account: UInt64, seqs: [UInt64], nowMilliseconds: Int64, on loop: EventLoop,
                            completion: @escaping @Sendable ([QueuedReceipt]) -> Void) {
        let cap = Int64(limits.messagesPerDevice / 2)  // receipts may fill at most half a queue
        thread.request(on: loop, { (db) throws(StoreError) -> [QueuedReceipt] in
            var woken: [QueuedReceipt] = []
            for seq in seqs {
                let key: [SQLiteDatabase.Value] = [.integer(Int64(device)), .integer(Int64(seq))]
                guard let row = try db.query("""
                    SELECT length(ciphertext), sender_account, message_id, kind, group_id, sender_device FROM messages
                    WHERE recipient_device = ? AND seq = ?
                    """, key).first
                else { continue }
                // Not DELETE … RETURNING: with it the relay benchmark made ~16 more write calls per
                // message (measured; most likely a statement journal in a temporary file).
                try db.query("DELETE FROM messages WHERE recipient_device = ? AND seq = ?", key)
                db.countQueued(removed: true)
                try db.query("UPDATE devices SET queued_count = queued_count - 1, queued_bytes = queued_bytes - ? WHERE id = ?",
                             [row[0], .integer(Int64(device))])
                let sender = UInt64(row[1].integer ?? 0)
                guard row[3].integer == Delivery.Kind.message.rawValue.asInt64, sender != account, let id = row[2].blob else { continue }
                let group = row[4].integer ?? 0
                if group == 0 {
                    woken += try MessageStore.queueReceipt(db, kind: .delivered, messageID: MessageID(id), fromAccount: account,
                                                            fromDevice: device, toAccount: sender, now: nowMilliseconds,
                                                            receiptCap: cap)
                    continue
                }
                // A group message: count, and tell the sender at the first delivery and the last.
                woken += try MessageStore.countGroupCopy(db, senderDevice: UInt64(row[5].integer ?? 0), messageID: MessageID(id), senderAccount: sender,
                                                         group: UInt64(group), delivered: true, by: (account, device),
                                                         now: nowMilliseconds, cap: cap)
            }
            return woken
        }) { result in completion((try? result.get()) ?? []) }
    }

    /// Counts one copy of a group message in its tally: `delivered` (acknowledged by device `by`)
    /// or not (it left the count: its device was removed, or it was refused). Queues the receipt
    /// now due for the sender's account — the first at one delivered copy, the last when every
    /// copy still counted is delivered, which ends the tally — and returns it. No tally, nothing.
    static func countGroupCopy(_ db: SQLiteDatabase, senderDevice: UInt64, messageID: MessageID, senderAccount: UInt64, group: UInt64,
                               delivered counted: Bool, by: (account: UInt64, device: UInt64), now: Int64,
                               cap: Int64) throws(StoreError) -> [QueuedReceipt] {
        let key: [SQLiteDatabase.Value] = [.integer(Int64(senderDevice)), .blob(messageID.bytes)]
        try db.query(counted ? "UPDATE group_receipts SET delivered = delivered + 1 WHERE sender_device = ? AND message_id = ?"
                             : "UPDATE group_receipts SET total = total - 1 WHERE sender_device = ? AND message_id = ?", key)
        guard let tally = try db.query("SELECT delivered, total FROM group_receipts WHERE sender_device = ? AND message_id = ?",
                                       key).first,
            let delivered = tally[0].integer, let total = tally[1].integer
        else { return [] }
        let last = delivered >= total
        if last { try db.query("DELETE FROM group_receipts WHERE sender_device = ? AND message_id = ?", key) }
        guard delivered > 0, last || (counted && delivered == 1) else { return [] }
        return try queueReceipt(db, kind: .delivered, messageID: messageID, fromAccount: counted ? by.account : 0,
                                fromDevice: counted ? by.device : 0, toAccount: senderAccount, now: now, receiptCap: cap,
                                group: group, tally: (UInt64(delivered), UInt64(total)))
    }

    /// Queues read receipts from a device for messages of `toAccount`. Completion: devices woken.
    public func read(messageIDs: [MessageID], fromAccount: UInt64, fromDevice: UInt64, toAccount: UInt64, nowMilliseconds: Int64,
                     on loop: EventLoop, completion: @escaping @Sendable (Result<[UInt64]?, StoreError>) -> Void) {
        let cap = Int64(limits.messagesPerDevice / 2)  // receipts may fill at most half a queue
        thread.request(on: loop, { (db) throws(StoreError) -> [UInt64]? in
            guard try DeviceDirectory.isActive(db, device: fromDevice) else { return [] }
            guard try DeviceDirectory.devices(db, account: toAccount) != nil else { return nil }
            var woken: Set<UInt64> = []
            for id in messageIDs {
                woken.formUnion(try MessageStore.queueReceipt(db, kind: .read, messageID: id, fromAccount: fromAccount,
                                                               fromDevice: fromDevice, toAccount: toAccount, now: nowMilliseconds,
                                                               receiptCap: cap).map(\.device))
            }
            return Array(woken)
        }, completion: completion)
    }

    /// A receipt queued for a device, as `pending` would return it.
    public typealias QueuedReceipt = (device: UInt64, delivery: Delivery)

    /// One receipt row per active device of `toAccount`; returns them.
    static func queueReceipt(_ db: SQLiteDatabase, kind: Delivery.Kind, messageID: MessageID, fromAccount: UInt64, fromDevice: UInt64,
                             toAccount: UInt64, now: Int64, receiptCap: Int64, group: UInt64 = 0,
                             tally: (UInt64, UInt64) = (0, 0)) throws(StoreError) -> [QueuedReceipt] {
        let devices = try DeviceDirectory.activeDeviceIDs(db, account: toAccount) ?? []
        var queued: [QueuedReceipt] = []
        for target in devices {
            let id = SQLiteDatabase.Value.integer(Int64(target))
            // Receipts count against the recipient's queue too; a full queue drops them.
            let row = try db.query("SELECT queued_count, next_seq FROM devices WHERE id = ?", [id]).first
            guard (row?[0].integer ?? 0) < receiptCap else { continue }
            let seq = row?[1].integer ?? 1
            let receipt = Delivery(
                seq: UInt64(seq), messageID: messageID, fromAccount: fromAccount, fromDevice: fromDevice,
                sentAtMilliseconds: UInt64(now), ciphertext: [], kind: kind, groupID: group,
                deliveredCount: tally.0, deliveredTotal: tally.1)
            try enqueue(db, receipt, for: target)
            queued.append((target, receipt))
        }
        return queued
    }

    /// Appends `delivery` to `device`'s queue at `delivery.seq` (the device's `next_seq`, read by
    /// the caller in the same job): the row, the device's counters, the queue-depth gauge.
    /// - Parameter muted: the row's `muted` column (`MuteStore.Notice` raw value).
    static func enqueue(_ db: SQLiteDatabase, _ delivery: Delivery, for device: UInt64, muted: Int64 = 0) throws(StoreError) {
        let id = SQLiteDatabase.Value.integer(Int64(device))
        try db.query(
            "UPDATE devices SET next_seq = next_seq + 1, queued_count = queued_count + 1, queued_bytes = queued_bytes + ? WHERE id = ?",
            [.integer(Int64(delivery.ciphertext.count)), id])
        try db.query("""
            INSERT INTO messages(recipient_device, seq, sender_account, sender_device, message_id, sent_at, ciphertext, kind,
                                 group_id, muted, receipt_count, receipt_total)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [id, .integer(Int64(delivery.seq)), .integer(Int64(delivery.fromAccount)), .integer(Int64(delivery.fromDevice)),
                  .blob(delivery.messageID.bytes), .integer(Int64(delivery.sentAtMilliseconds)), .blob(delivery.ciphertext),
                  .integer(Int64(delivery.kind.rawValue)), .integer(Int64(delivery.groupID)), .integer(muted),
                  .integer(Int64(delivery.deliveredCount)), .integer(Int64(delivery.deliveredTotal))])
        db.countQueued()
    }

    /// Before copies are deleted unacknowledged (their device removed, or retention passed): take
    /// group copies out of their messages' receipt tallies, so a message whose every other copy
    /// was delivered still gets its final receipt. Returns the devices woken by such receipts.
    static func settleGroupCopies(_ db: SQLiteDatabase, where condition: String, _ parameters: [SQLiteDatabase.Value], now: Int64,
                                  cap: Int64) throws(StoreError) -> [UInt64] {
        let rows = try db.query("""
            SELECT m.sender_device, m.message_id, m.sender_account, m.group_id FROM messages m
            WHERE m.kind = 1 AND m.group_id != 0 AND \(condition)
            """, parameters)
        var woken: Set<UInt64> = []
        for row in rows {
            woken.formUnion(try countGroupCopy(db, senderDevice: UInt64(row[0].integer ?? 0), messageID: MessageID(row[1].blob ?? []),
                                               senderAccount: UInt64(row[2].integer ?? 0), group: UInt64(row[3].integer ?? 0),
                                               delivered: false, by: (0, 0), now: now, cap: cap).map(\.device))
        }
        return Array(woken)
    }

    /// Drops messages and de-duplication records older than the retention period.
    public func purge(nowMilliseconds: Int64) {
        let cutoff = nowMilliseconds - limits.retentionSeconds * 1000
        let cap = Int64(limits.messagesPerDevice / 2)
        thread.submit { db in
            guard let db else { return { _ in } }
            // Receipts this queues are pulled when their devices next connect or are woken.
            _ = try? MessageStore.settleGroupCopies(db, where: "m.sent_at < ?", [.integer(cutoff)], now: nowMilliseconds, cap: cap)
            _ = try? db.query("""
                UPDATE devices SET
                    queued_count = queued_count - (SELECT COUNT(*) FROM messages m WHERE m.recipient_device = devices.id AND m.sent_at < ?1),
                    queued_bytes = queued_bytes - (SELECT COALESCE(SUM(length(ciphertext)), 0) FROM messages m
                                                   WHERE m.recipient_device = devices.id AND m.sent_at < ?1)
                WHERE id IN (SELECT DISTINCT recipient_device FROM messages WHERE sent_at < ?1)
                """, [.integer(cutoff)])
            if (try? db.query("DELETE FROM messages WHERE sent_at < ?", [.integer(cutoff)])) != nil { db.countQueued(removed: true) }
            _ = try? db.query("DELETE FROM accepted_messages WHERE accepted_at < ?", [.integer(cutoff / 1000)])
            _ = try? db.query("DELETE FROM mutes WHERE until_ms <= ?", [.integer(nowMilliseconds)])  // ended mutes: cleanup only
            _ = try? db.query("DELETE FROM group_receipts WHERE created_at < ?", [.integer(cutoff)])
            return { _ in }
        }
    }
}
