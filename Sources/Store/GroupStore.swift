import Reactor
import Wire

/// Groups and their members (PROTOCOL.md section 22). Membership changes queue a
/// `groupChanged` delivery for every device of every member (and of a removed member), so offline
/// devices learn of them too. Every call returns at once; results arrive on the asking loop.
public final class GroupStore: Sendable {
    public let thread: StoreThread
    public let maxMembers: Int
    /// Notices count against a device's queue like receipts: at most half of it.
    public let noticeCap: Int64

    public init(thread: StoreThread, maxMembers: Int = 1_024, messagesPerDevice: Int = 100_000) {
        self.thread = thread
        self.maxMembers = maxMembers
        self.noticeCap = Int64(messagesPerDevice / 2)
    }

    /// Creates a group with the creator as its first admin. Completion: the group id and the
    /// devices to wake, or an error code.
    public func create(creator: UInt64, name: String, members: [UInt64], now: Int64, on loop: EventLoop,
                       completion: @escaping @Sendable (Result<(group: UInt64, woken: [UInt64]), ErrorCode>) -> Void) {
        let limit = maxMembers, cap = noticeCap
        thread.request(on: loop, { (db) throws(StoreError) -> Result<(group: UInt64, woken: [UInt64]), ErrorCode> in
            var accounts = [creator]
            for member in members where !accounts.contains(member) { accounts.append(member) }
            guard accounts.count <= limit else { return .failure(.overLimit) }
            for account in accounts where try DeviceDirectory.devices(db, account: account) == nil {
                return .failure(.unknownAccount)
            }
            try db.query("INSERT INTO groups(name, created_at) VALUES (?, ?)", [.text(name), .integer(now / 1000)])
            let group = UInt64(db.lastInsertRowID)
            for (index, account) in accounts.enumerated() {
                try db.query("INSERT INTO group_members(group_id, account_id, admin, joined_at) VALUES (?, ?, ?, ?)",
                             [.integer(Int64(group)), .integer(Int64(account)), .integer(index == 0 ? 1 : 0), .integer(now)])
            }
            let woken = try GroupStore.notify(db, group: group, accounts: accounts, actor: creator, now: now, cap: cap)
            return .success((group, woken))
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// Applies one change. Only admins add, remove, promote, demote and rename; anyone leaves.
    /// A group always keeps an admin: when the last one leaves or is demoted, the longest-standing
    /// member becomes admin. Completion: the devices to wake, or an error code.
    public func update(group: UInt64, actor: UInt64, operation: GroupOperation, target: UInt64, name: String, now: Int64,
                       on loop: EventLoop, completion: @escaping @Sendable (Result<[UInt64], ErrorCode>) -> Void) {
        let limit = maxMembers, cap = noticeCap
        thread.request(on: loop, { (db) throws(StoreError) -> Result<[UInt64], ErrorCode> in
            let id = SQLiteDatabase.Value.integer(Int64(group))
            guard let members = try GroupStore.members(db, group: group), let me = members.first(where: { $0.accountID == actor }) else {
                return .failure(.notPermitted)
            }
            if operation != .leave && !me.admin { return .failure(.notPermitted) }
            let isMember = members.contains { $0.accountID == target }
            var notified = members.map(\.accountID)
            switch operation {
            case .add:
                guard !isMember else { return .success([]) }
                guard members.count < limit else { return .failure(.overLimit) }
                guard try DeviceDirectory.devices(db, account: target) != nil else { return .failure(.unknownAccount) }
                try db.query("INSERT INTO group_members(group_id, account_id, admin, joined_at) VALUES (?, ?, 0, ?)",
                             [id, .integer(Int64(target)), .integer(now)])
                db.directoryVersion.bump()  // the group's devices changed: direct routes must be read again
                notified.append(target)
            case .remove, .leave:
                let leaving = operation == .leave ? actor : target
                guard members.contains(where: { $0.accountID == leaving }) else { return .failure(.unknownAccount) }
                try db.query("DELETE FROM group_members WHERE group_id = ? AND account_id = ?", [id, .integer(Int64(leaving))])
                db.directoryVersion.bump()
            case .promote, .demote:
                guard isMember else { return .failure(.unknownAccount) }
                try db.query("UPDATE group_members SET admin = ? WHERE group_id = ? AND account_id = ?",
                             [.integer(operation == .promote ? 1 : 0), id, .integer(Int64(target))])
            case .rename:
                try db.query("UPDATE groups SET name = ? WHERE id = ?", [.text(name), id])
            }
            // Keep an admin: the longest-standing member other than one who just stepped down.
            let remaining = try GroupStore.members(db, group: group) ?? []
            if remaining.isEmpty {
                try db.query("DELETE FROM groups WHERE id = ?", [id])  // the last member left
                try db.query("DELETE FROM mutes WHERE target_kind = 2 AND target_id = ?", [id])
            } else if !remaining.contains(where: \.admin) {
                let demoted = operation == .demote ? target : 0
                let heir = remaining.first { $0.accountID != demoted } ?? remaining[0]
                try db.query("UPDATE group_members SET admin = 1 WHERE group_id = ? AND account_id = ?",
                             [id, .integer(Int64(heir.accountID))])
            }
            return .success(try GroupStore.notify(db, group: group, accounts: notified, actor: actor, now: now, cap: cap))
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// Name and members, for members only (nil: not a member or no such group).
    public func info(group: UInt64, viewer: UInt64, on loop: EventLoop,
                     completion: @escaping @Sendable (Result<(name: String, members: [GroupMember])?, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> (name: String, members: [GroupMember])? in
            guard let members = try GroupStore.members(db, group: group), members.contains(where: { $0.accountID == viewer }),
                let name = try db.query("SELECT name FROM groups WHERE id = ?", [.integer(Int64(group))]).first?.first?.text
            else { return nil }
            return (name, members)
        }, completion: completion)
    }

    /// Members in join order; nil when the group does not exist.
    static func members(_ db: SQLiteDatabase, group: UInt64) throws(StoreError) -> [GroupMember]? {
        guard try !db.query("SELECT 1 FROM groups WHERE id = ?", [.integer(Int64(group))]).isEmpty else { return nil }
        return try db.query("SELECT account_id, admin FROM group_members WHERE group_id = ? ORDER BY joined_at, account_id",
                            [.integer(Int64(group))])
            .map { GroupMember(accountID: UInt64($0[0].integer ?? 0), admin: ($0[1].integer ?? 0) != 0) }
    }

    /// Queues a `groupChanged` delivery for every device of `accounts`; returns those devices.
    static func notify(_ db: SQLiteDatabase, group: UInt64, accounts: [UInt64], actor: UInt64, now: Int64,
                       cap: Int64) throws(StoreError) -> [UInt64] {
        var woken: [UInt64] = []
        for account in accounts {
            for device in try DeviceDirectory.devices(db, account: account) ?? [] {
                let id = SQLiteDatabase.Value.integer(Int64(device.deviceID))
                // A device whose queue is half full gets no more notices (it can still GetGroup).
                let queued = try db.query("SELECT queued_count FROM devices WHERE id = ?", [id]).first?.first?.integer ?? 0
                guard queued < cap else { continue }
                let seq = try db.query("SELECT next_seq FROM devices WHERE id = ?", [id]).first?.first?.integer ?? 1
                // A random id: a notice is not a message anyone sends again.
                let notice = Delivery(seq: UInt64(seq), messageID: MessageID((0..<16).map { _ in UInt8.random(in: 0...255) }), fromAccount: actor,
                                      fromDevice: 0, sentAtMilliseconds: UInt64(now), ciphertext: [], kind: .groupChanged, groupID: group)
                try MessageStore.enqueue(db, notice, for: device.deviceID)
                woken.append(device.deviceID)
            }
        }
        return woken
    }
}
