import Reactor
import Wire

/// A registered device and its account.
public struct DeviceRecord: Sendable, Equatable {
    public var accountID: UInt64
    public var deviceID: UInt64
    public var accountName: String
    public var deviceName: String
    public var revoked: Bool

    public init(accountID: UInt64, deviceID: UInt64, accountName: String, deviceName: String, revoked: Bool) {
        self.accountID = accountID
        self.deviceID = deviceID
        self.accountName = accountName
        self.deviceName = deviceName
        self.revoked = revoked
    }
}

/// Accounts, devices and invite codes in the embedded SQLite store (schema in
/// docs/STORAGE.md). Every call returns at once; results arrive on the asking loop.
public final class AccountStore: Sendable {
    public let thread: StoreThread

    public init(thread: StoreThread) { self.thread = thread }

    static let schemaVersion = 3

    /// Creates or upgrades the schema. Runs before the store thread starts, or in a CLI tool.
    public static func migrate(_ database: SQLiteDatabase) throws(StoreError) {
        try database.execute("""
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS accounts(
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS devices(
                id INTEGER PRIMARY KEY,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                static_key BLOB NOT NULL UNIQUE,
                name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                revoked_at INTEGER);
            CREATE INDEX IF NOT EXISTS devices_by_account ON devices(account_id);
            CREATE TABLE IF NOT EXISTS invites(
                code TEXT PRIMARY KEY,
                created_at INTEGER NOT NULL,
                used_at INTEGER,
                used_by_account INTEGER REFERENCES accounts(id));
            INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
            """)
        let rows = try database.query("SELECT value FROM meta WHERE key = 'schema_version'")
        guard let text = rows.first?.first?.text, let version = Int(text), version <= schemaVersion else {
            throw StoreError(operation: "migrate", code: 0, message: "data directory was written by a newer version")
        }
        if version < 2 {
            // Version 2: the key directory and the message queue (docs/STORAGE.md).
            try database.execute("""
                BEGIN;
                ALTER TABLE devices ADD COLUMN identity_key BLOB;
                ALTER TABLE devices ADD COLUMN signed_prekey_id INTEGER;
                ALTER TABLE devices ADD COLUMN signed_prekey BLOB;
                ALTER TABLE devices ADD COLUMN signed_prekey_signature BLOB;
                ALTER TABLE devices ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE devices ADD COLUMN queued_count INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE devices ADD COLUMN queued_bytes INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE devices ADD COLUMN push_token TEXT;
                CREATE TABLE prekeys(
                    device_id INTEGER NOT NULL,
                    key_id INTEGER NOT NULL,
                    public_key BLOB NOT NULL,
                    PRIMARY KEY (device_id, key_id)) WITHOUT ROWID;
                CREATE TABLE messages(
                    recipient_device INTEGER NOT NULL,
                    seq INTEGER NOT NULL,
                    sender_account INTEGER NOT NULL,
                    sender_device INTEGER NOT NULL,
                    message_id BLOB NOT NULL,
                    sent_at INTEGER NOT NULL,
                    ciphertext BLOB NOT NULL,
                    kind INTEGER NOT NULL DEFAULT 1,
                    PRIMARY KEY (recipient_device, seq)) WITHOUT ROWID;
                CREATE INDEX messages_by_time ON messages(sent_at);
                CREATE TABLE accepted_messages(
                    sender_device INTEGER NOT NULL,
                    message_id BLOB NOT NULL,
                    accepted_at INTEGER NOT NULL,
                    PRIMARY KEY (sender_device, message_id)) WITHOUT ROWID;
                CREATE INDEX accepted_by_time ON accepted_messages(accepted_at);
                CREATE TABLE presence_allow(
                    owner INTEGER NOT NULL,
                    viewer INTEGER NOT NULL,
                    PRIMARY KEY (owner, viewer)) WITHOUT ROWID;
                UPDATE meta SET value = '2' WHERE key = 'schema_version';
                COMMIT;
                """)
        }
        if version < 3 {
            // Version 3: groups.
            try database.execute("""
                BEGIN;
                ALTER TABLE messages ADD COLUMN group_id INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE groups(
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    created_at INTEGER NOT NULL);
                CREATE TABLE group_members(
                    group_id INTEGER NOT NULL,
                    account_id INTEGER NOT NULL,
                    admin INTEGER NOT NULL DEFAULT 0,
                    joined_at INTEGER NOT NULL,
                    PRIMARY KEY (group_id, account_id)) WITHOUT ROWID;
                CREATE INDEX group_members_by_account ON group_members(account_id);
                ALTER TABLE messages ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE messages ADD COLUMN receipt_count INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE messages ADD COLUMN receipt_total INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE group_receipts(
                    sender_device INTEGER NOT NULL,
                    message_id BLOB NOT NULL,
                    sender_account INTEGER NOT NULL,
                    group_id INTEGER NOT NULL,
                    delivered INTEGER NOT NULL DEFAULT 0,
                    total INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (sender_device, message_id)) WITHOUT ROWID;
                CREATE TABLE mutes(
                    account_id INTEGER NOT NULL,
                    target_kind INTEGER NOT NULL,
                    target_id INTEGER NOT NULL,
                    until_ms INTEGER NOT NULL,
                    silent INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (account_id, target_kind, target_id)) WITHOUT ROWID;
                UPDATE meta SET value = '3' WHERE key = 'schema_version';
                COMMIT;
                """)
        }
    }

    /// Registers a new account with its first device.
    /// - Parameter inviteCode: required (and consumed) when `requireInvite` is true.
    /// - Completion: the new device, or the error code for the client: `accountNameTaken`,
    ///   `deviceAlreadyRegistered`, `inviteInvalid`, `internalError`.
    public func register(
        accountName: String, deviceName: String, deviceKey: [UInt8], inviteCode: String?, requireInvite: Bool,
        now: Int64, on loop: EventLoop, completion: @escaping @Sendable (Result<DeviceRecord, ErrorCode>) -> Void
    ) {
        thread.request(on: loop, { (db) throws(StoreError) -> Result<DeviceRecord, ErrorCode> in
            if try !db.query("SELECT 1 FROM devices WHERE static_key = ?", [.blob(deviceKey)]).isEmpty {
                return .failure(.deviceAlreadyRegistered)
            }
            if try !db.query("SELECT 1 FROM accounts WHERE name = ?", [.text(accountName)]).isEmpty {
                return .failure(.accountNameTaken)
            }
            try db.query("INSERT INTO accounts(name, created_at) VALUES (?, ?)", [.text(accountName), .integer(now)])
            let accountID = db.lastInsertRowID
            if requireInvite {
                guard let inviteCode else { throw StoreError(operation: "invite", code: -1, message: "missing") }
                try db.query(
                    "UPDATE invites SET used_at = ?, used_by_account = ? WHERE code = ? AND used_at IS NULL",
                    [.integer(now), .integer(accountID), .text(inviteCode)])
                if db.changes != 1 { throw StoreError(operation: "invite", code: -1, message: "invalid") }
            }
            db.directoryVersion.bump()
            try db.query(
                "INSERT INTO devices(account_id, static_key, name, created_at) VALUES (?, ?, ?, ?)",
                [.integer(accountID), .blob(deviceKey), .text(deviceName), .integer(now)])
            return .success(DeviceRecord(
                accountID: UInt64(accountID), deviceID: UInt64(db.lastInsertRowID), accountName: accountName,
                deviceName: deviceName, revoked: false))
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure(let error) where error.operation == "invite": completion(.failure(.inviteInvalid))
            case .failure(let error) where error.isConstraint: completion(.failure(.accountNameTaken))
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// The device registered with this static key, if any.
    public func findDevice(
        key: [UInt8], on loop: EventLoop, completion: @escaping @Sendable (Result<DeviceRecord?, StoreError>) -> Void
    ) {
        thread.request(on: loop, { (db) throws(StoreError) -> DeviceRecord? in
            let rows = try db.query("""
                SELECT d.account_id, d.id, a.name, d.name, d.revoked_at IS NOT NULL
                FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.static_key = ?
                """, [.blob(key)])
            return rows.first.map(AccountStore.device)
        }, completion: completion)
    }

    static func device(_ row: [SQLiteDatabase.Value]) -> DeviceRecord {
        DeviceRecord(
            accountID: UInt64(row[0].integer ?? 0), deviceID: UInt64(row[1].integer ?? 0),
            accountName: row[2].text ?? "", deviceName: row[3].text ?? "", revoked: (row[4].integer ?? 0) != 0)
    }

    /// Device ids revoked since `since` (unix seconds): loaded at start so a resumption token of
    /// a revoked device is refused without a lookup.
    public static func revokedDevices(_ database: SQLiteDatabase, since: Int64) throws(StoreError) -> Set<UInt64> {
        let rows = try database.query("SELECT id FROM devices WHERE revoked_at >= ?", [.integer(since)])
        return Set(rows.compactMap { $0.first?.integer.map(UInt64.init) })
    }

    /// Mints an invite code (for `switchboard invite`, run beside a live node: SQLite's locking
    /// and the busy timeout make that safe).
    public static func createInvite(_ database: SQLiteDatabase, code: String, now: Int64) throws(StoreError) {
        try database.query("INSERT INTO invites(code, created_at) VALUES (?, ?)", [.text(code), .integer(now)])
    }
}
