import Reactor
import Wire

/// Mutes (PROTOCOL.md section 23): an account silences a one-to-one chat or a group until a
/// time. A mute is weighed when a message arrives, against the clock: it ends on its own at its
/// end time, with nothing to poll.
public final class MuteStore: Sendable {
    /// How a recipient device is to be told of a new message.
    public enum Notice: Int64, Sendable {
        case normal = 0
        /// Muted: no push.
        case quiet = 1
        /// Muted: a silent push.
        case silent = 2
    }

    static let chat: Int64 = 1, group: Int64 = 2
    public static let automaticChatMilliseconds: UInt64 = 8 * 3_600_000
    public static let automaticMinimumMilliseconds: UInt64 = 3_600_000
    public static let automaticMaximumMilliseconds: UInt64 = 7 * 86_400_000

    public let thread: StoreThread
    public static let maxMutesPerAccount = 1_000
    public static let maxDurationMilliseconds: UInt64 = 366 * 86_400_000
    /// The automatic group mute grows by this many minutes per member (`--mute-minutes-per-member`).
    public let minutesPerMember: UInt64

    public init(thread: StoreThread, minutesPerMember: UInt64 = 15) {
        self.thread = thread
        self.minutesPerMember = minutesPerMember
    }

    /// The automatic duration: 8 hours for a chat; for a group of `members`,
    /// clamp(members × minutesPerMember minutes, 1 hour, 7 days).
    public static func automaticDuration(members: UInt64?, minutesPerMember: UInt64) -> UInt64 {
        guard let members else { return automaticChatMilliseconds }
        let proportional = members.multipliedReportingOverflow(by: minutesPerMember * 60_000)
        let value = proportional.overflow ? automaticMaximumMilliseconds : proportional.partialValue
        return min(max(value, automaticMinimumMilliseconds), automaticMaximumMilliseconds)
    }

    /// Sets or (until 0, not automatic) lifts a mute. Completion: its end time (0: lifted), or
    /// an error code (`notPermitted` for a group the account is not in).
    public func set(account: UInt64, request: MuteRequest, now: UInt64, on loop: EventLoop,
                    completion: @escaping @Sendable (Result<UInt64, ErrorCode>) -> Void) {
        let factor = minutesPerMember
        thread.request(on: loop, { (db) throws(StoreError) -> Result<UInt64, ErrorCode> in
            let kind = request.groupID != 0 ? MuteStore.group : MuteStore.chat
            let target = request.groupID != 0 ? request.groupID : request.chatAccount
            var members: UInt64?
            if request.chatAccount != 0, try DeviceDirectory.devices(db, account: request.chatAccount) == nil {
                return .failure(.unknownAccount)
            }
            if request.groupID != 0 {
                guard let list = try GroupStore.members(db, group: request.groupID), list.contains(where: { $0.accountID == account })
                else { return .failure(.notPermitted) }
                members = UInt64(list.count)
            }
            let key: [SQLiteDatabase.Value] = [.integer(Int64(account)), .integer(kind), .integer(Int64(target))]
            db.directoryVersion.bump()
            let until = request.automatic
                ? now + MuteStore.automaticDuration(members: members, minutesPerMember: factor)
                : min(request.untilMilliseconds, now + MuteStore.maxDurationMilliseconds)  // at most a year
            if until <= now {
                try db.query("DELETE FROM mutes WHERE account_id = ? AND target_kind = ? AND target_id = ?", key)
                return .success(0)
            }
            let count = try db.query("SELECT COUNT(*) FROM mutes WHERE account_id = ?", [.integer(Int64(account))]).first?.first?.integer ?? 0
            let exists = try !db.query("SELECT 1 FROM mutes WHERE account_id = ? AND target_kind = ? AND target_id = ?", key).isEmpty
            guard exists || count < Int64(MuteStore.maxMutesPerAccount) else { return .failure(.overLimit) }
            try db.query("INSERT OR REPLACE INTO mutes(account_id, target_kind, target_id, until_ms, silent) VALUES (?, ?, ?, ?, ?)",
                         key + [.integer(Int64(until)), .integer(request.silent ? 1 : 0)])
            return .success(until)
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// How `account` is to be told of a message from `sender` (to a group, if `group` ≠ 0).
    static func notice(_ db: SQLiteDatabase, account: UInt64, sender: UInt64, group: UInt64, now: Int64) throws(StoreError) -> Notice {
        let kind = group != 0 ? MuteStore.group : MuteStore.chat
        let target = group != 0 ? group : sender
        guard let row = try db.query(
            "SELECT silent FROM mutes WHERE account_id = ? AND target_kind = ? AND target_id = ? AND until_ms > ?",
            [.integer(Int64(account)), .integer(kind), .integer(Int64(target)), .integer(now)]).first
        else { return .normal }
        return (row[0].integer ?? 0) != 0 ? .silent : .quiet
    }
}
