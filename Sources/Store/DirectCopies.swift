import Reactor
import Wire

/// Copies that direct delivery (PROTOCOL.md section 20.8) hands to the store: a message its
/// recipient did not acknowledge in time, could not take at once or lost with its connection,
/// and delivery receipts for directly delivered messages that their device could not take.
extension MessageStore {
    /// What storing one such copy did.
    public enum CopyStorage: Sendable, Equatable {
        /// Waiting at this sequence number of the device's queue.
        case stored(seq: UInt64)
        /// The same message id from the same sender was stored before (not stored again).
        case duplicate
        /// A receipt not kept: its device was removed, or its queue is at the receipt cap.
        case dropped
        case refused(ErrorCode, String)
    }

    /// Appends `delivery` (its `seq` is ignored) to `device`'s queue. A message also gets its
    /// de-duplication record, as if it had been stored when it was sent (a one-to-one message
    /// already recorded is not stored again; a group message has one record for all its copies).
    public func store(copy delivery: Delivery, for device: UInt64, on loop: EventLoop,
                      completion: @escaping @Sendable (Result<CopyStorage, StoreError>) -> Void) {
        let limits = self.limits
        thread.request(on: loop, { (db) throws(StoreError) -> CopyStorage in
            let id = SQLiteDatabase.Value.integer(Int64(device))
            guard let row = try db.query("SELECT queued_count, queued_bytes, next_seq FROM devices WHERE id = ? AND revoked_at IS NULL",
                                         [id]).first
            else {
                // Removed since the sender's session read the device list. One-to-one: the sender
                // must send again for the account's current devices (the stored path then lists
                // them). A group copy leaves the message's count, as on the stored path.
                return delivery.kind == .message && delivery.groupID == 0
                    ? .refused(.deviceListMismatch, "device \(device) was removed; send again for the current devices") : .dropped
            }
            let count = row[0].integer ?? 0, bytes = row[1].integer ?? 0, seq = row[2].integer ?? 1
            let sender = SQLiteDatabase.Value.integer(Int64(delivery.fromDevice))
            if delivery.kind == .message {
                if count + 1 > Int64(limits.messagesPerDevice) || bytes + Int64(delivery.ciphertext.count) > Int64(limits.bytesPerDevice) {
                    return .refused(.recipientQueueFull, "device \(device) has too much waiting")
                }
                try db.query("INSERT OR IGNORE INTO accepted_messages(sender_device, message_id, accepted_at) VALUES (?, ?, ?)",
                             [sender, .blob(delivery.messageID.bytes), .integer(Int64(delivery.sentAtMilliseconds / 1000))])
                if db.changes == 0 && delivery.groupID == 0 { return .duplicate }
            } else if count >= Int64(limits.messagesPerDevice / 2) {
                return .dropped  // receipts may fill at most half a queue, as on the stored path
            }
            var queued = delivery
            queued.seq = UInt64(seq)
            try MessageStore.enqueue(db, queued, for: device)
            return .stored(seq: UInt64(seq))
        }, completion: completion)
    }

    /// A directly sent group message that its sender's session stops counting — every copy
    /// settled with some stored, or the session closed with copies unsettled (section 20.8): the
    /// stored copies already acknowledged count as delivered (those whose device was removed leave
    /// the count); if nothing can still be acknowledged, the receipts due are queued, else a tally
    /// is left that later acknowledgements (`acknowledge`, `countGroupCopy`) complete as on the
    /// stored path (section 22). Completion: the receipts queued.
    /// - Parameters:
    ///   - total: copies that count (refused and removed ones already taken out).
    ///   - delivered: copies acknowledged directly.
    ///   - unsettled: copies whose fate the session did not learn (they settle into the tally).
    public func settleGroupTally(messageID: MessageID, group: UInt64, senderAccount: UInt64, senderDevice: UInt64, total: Int,
                                 delivered: Int, stored: [(device: UInt64, seq: UInt64)], unsettled: Int, firstSent: Bool,
                                 nowMilliseconds: Int64, on loop: EventLoop,
                                 completion: @escaping @Sendable ([QueuedReceipt]) -> Void) {
        let cap = Int64(limits.messagesPerDevice / 2)
        thread.request(on: loop, { (db) throws(StoreError) -> [QueuedReceipt] in
            var waiting = unsettled, delivered = delivered, total = total
            for copy in stored {
                if try !db.query("SELECT 1 FROM messages WHERE recipient_device = ? AND seq = ? AND message_id = ?",
                                 [.integer(Int64(copy.device)), .integer(Int64(copy.seq)), .blob(messageID.bytes)]).isEmpty {
                    waiting += 1
                } else if try DeviceDirectory.isActive(db, device: copy.device) {
                    delivered += 1
                } else {
                    total -= 1
                }
            }
            func receipt(_ count: Int) throws(StoreError) -> [QueuedReceipt] {
                try MessageStore.queueReceipt(db, kind: .delivered, messageID: messageID, fromAccount: 0, fromDevice: 0,
                                              toAccount: senderAccount, now: nowMilliseconds, receiptCap: cap, group: group,
                                              tally: (UInt64(count), UInt64(total)))
            }
            if waiting == 0 {
                guard total > 0, delivered > 0 else { return [] }
                return (!firstSent && total > 1 ? try receipt(1) : []) + (try receipt(delivered))
            }
            try db.query("""
                INSERT OR REPLACE INTO group_receipts(sender_device, message_id, sender_account, group_id, delivered, total, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [.integer(Int64(senderDevice)), .blob(messageID.bytes), .integer(Int64(senderAccount)), .integer(Int64(group)),
                      .integer(Int64(delivered)), .integer(Int64(total)), .integer(nowMilliseconds)])
            return !firstSent && delivered >= 1 ? try receipt(delivered) : []
        }) { result in completion((try? result.get()) ?? []) }
    }

    /// A copy of a directly sent group message settled after its sender's session closed: it
    /// counts in the tally the session left (`settleGroupTally`). Completion: the receipts queued.
    public func countGroupCopy(messageID: MessageID, group: UInt64, senderAccount: UInt64, senderDevice: UInt64, delivered: Bool,
                               by: (account: UInt64, device: UInt64), nowMilliseconds: Int64, on loop: EventLoop,
                               completion: @escaping @Sendable ([QueuedReceipt]) -> Void) {
        let cap = Int64(limits.messagesPerDevice / 2)
        thread.request(on: loop, { (db) throws(StoreError) -> [QueuedReceipt] in
            try MessageStore.countGroupCopy(db, senderDevice: senderDevice, messageID: messageID, senderAccount: senderAccount,
                                            group: group, delivered: delivered, by: by, now: nowMilliseconds, cap: cap)
        }) { result in completion((try? result.get()) ?? []) }
    }
}
