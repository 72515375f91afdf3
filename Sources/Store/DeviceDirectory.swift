import Reactor
import Wire

/// Devices of an account and their published keys (PROTOCOL.md sections 18-19). Every call
/// returns at once; results arrive on the asking loop.
public final class DeviceDirectory: Sendable {
    public let thread: StoreThread
    public let maxDevicesPerAccount: Int
    public static let maxPrekeysInStock = 1_000
    public static let prekeysLowMark = 10

    public init(thread: StoreThread, maxDevicesPerAccount: Int = 16) {
        self.thread = thread
        self.maxDevicesPerAccount = maxDevicesPerAccount
    }

    /// Active devices of an account, or nil if the account does not exist.
    public func list(account: UInt64, on loop: EventLoop,
                     completion: @escaping @Sendable (Result<[DeviceInfo]?, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> [DeviceInfo]? in
            try DeviceDirectory.devices(db, account: account)
        }, completion: completion)
    }

    /// Whether a device exists and was not removed (requests of removed devices are refused).
    static func isActive(_ db: SQLiteDatabase, device: UInt64) throws(StoreError) -> Bool {
        try !db.query("SELECT 1 FROM devices WHERE id = ? AND revoked_at IS NULL", [.integer(Int64(device))]).isEmpty
    }

    /// The ids of an account's active devices (nil: no such account), in one statement when the
    /// account has any: what the message path needs, without names.
    static func activeDeviceIDs(_ db: SQLiteDatabase, account: UInt64) throws(StoreError) -> [UInt64]? {
        let ids = try db.query("SELECT id FROM devices WHERE account_id = ? AND revoked_at IS NULL ORDER BY id",
                               [.integer(Int64(account))]).map { UInt64($0[0].integer ?? 0) }
        if ids.isEmpty, try db.query("SELECT 1 FROM accounts WHERE id = ?", [.integer(Int64(account))]).isEmpty { return nil }
        return ids
    }

    static func devices(_ db: SQLiteDatabase, account: UInt64) throws(StoreError) -> [DeviceInfo]? {
        if try db.query("SELECT 1 FROM accounts WHERE id = ?", [.integer(Int64(account))]).isEmpty { return nil }
        return try db.query(
            "SELECT id, name, created_at FROM devices WHERE account_id = ? AND revoked_at IS NULL ORDER BY id",
            [.integer(Int64(account))]
        ).map { DeviceInfo(deviceID: UInt64($0[0].integer ?? 0), name: $0[1].text ?? "", createdAt: UInt64($0[2].integer ?? 0)) }
    }

    /// Adds a device to an account. Completion: the new device id, or the error code.
    public func add(account: UInt64, staticKey: [UInt8], name: String, requestedBy: UInt64, now: Int64, on loop: EventLoop,
                    completion: @escaping @Sendable (Result<UInt64, ErrorCode>) -> Void) {
        let limit = maxDevicesPerAccount
        thread.request(on: loop, { (db) throws(StoreError) -> Result<UInt64, ErrorCode> in
            guard try DeviceDirectory.isActive(db, device: requestedBy) else { return .failure(.deviceRevoked) }
            if try !db.query("SELECT 1 FROM devices WHERE static_key = ?", [.blob(staticKey)]).isEmpty {
                return .failure(.deviceAlreadyRegistered)
            }
            let count = try db.query("SELECT COUNT(*) FROM devices WHERE account_id = ? AND revoked_at IS NULL",
                                     [.integer(Int64(account))]).first?.first?.integer ?? 0
            guard count < Int64(limit) else { return .failure(.tooManyDevices) }
            db.directoryVersion.bump()
            try db.query("INSERT INTO devices(account_id, static_key, name, created_at) VALUES (?, ?, ?, ?)",
                         [.integer(Int64(account)), .blob(staticKey), .text(name.isEmpty ? "device" : name), .integer(now)])
            return .success(UInt64(db.lastInsertRowID))
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// Removes another device of the same account: marks it revoked and drops what waits for it
    /// and its pre-keys.
    /// Completion: the devices woken by final group receipts the removal settled.
    public func remove(account: UInt64, device: UInt64, requestedBy: UInt64, now: Int64, receiptCap: Int64, on loop: EventLoop,
                       completion: @escaping @Sendable (Result<[UInt64], ErrorCode>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> Result<[UInt64], ErrorCode> in
            guard device != requestedBy else { return .failure(.notPermitted) }
            guard try DeviceDirectory.isActive(db, device: requestedBy) else { return .failure(.deviceRevoked) }
            let rows = try db.query("SELECT 1 FROM devices WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
                                    [.integer(Int64(device)), .integer(Int64(account))])
            guard !rows.isEmpty else { return .failure(.unknownDeviceID) }
            db.directoryVersion.bump()
            try db.query("UPDATE devices SET revoked_at = ?, queued_count = 0, queued_bytes = 0 WHERE id = ?",
                         [.integer(now), .integer(Int64(device))])
            let woken = try MessageStore.settleGroupCopies(db, where: "m.recipient_device = ?", [.integer(Int64(device))],
                                                           now: now * 1000, cap: receiptCap)
            try db.query("DELETE FROM messages WHERE recipient_device = ?", [.integer(Int64(device))])
            db.countQueued(removed: true)
            try db.query("DELETE FROM prekeys WHERE device_id = ?", [.integer(Int64(device))])
            return .success(woken)
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// Stores a device's published keys. Completion: one-time pre-keys in stock, or an error
    /// (`overLimit` when the stock would pass 1,000; nothing is stored then).
    public func publish(device: UInt64, identityKey: [UInt8]?, signedPrekey: SignedPrekey?, oneTime: [OneTimePrekey],
                        on loop: EventLoop, completion: @escaping @Sendable (Result<UInt64, ErrorCode>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> Result<UInt64, ErrorCode> in
            let id = SQLiteDatabase.Value.integer(Int64(device))
            let stock = try db.query("SELECT COUNT(*) FROM prekeys WHERE device_id = ?", [id]).first?.first?.integer ?? 0
            var fresh = 0
            for key in oneTime where try db.query(
                "SELECT 1 FROM prekeys WHERE device_id = ? AND key_id = ?", [id, .integer(Int64(key.keyID))]).isEmpty {
                fresh += 1
            }
            guard Int(stock) + fresh <= DeviceDirectory.maxPrekeysInStock else { return .failure(.overLimit) }
            if let identityKey { try db.query("UPDATE devices SET identity_key = ? WHERE id = ?", [.blob(identityKey), id]) }
            if let signed = signedPrekey {
                try db.query(
                    "UPDATE devices SET signed_prekey_id = ?, signed_prekey = ?, signed_prekey_signature = ? WHERE id = ?",
                    [.integer(Int64(signed.keyID)), .blob(signed.publicKey), .blob(signed.signature), id])
            }
            for key in oneTime {
                try db.query("INSERT OR REPLACE INTO prekeys(device_id, key_id, public_key) VALUES (?, ?, ?)",
                             [id, .integer(Int64(key.keyID)), .blob(key.publicKey)])
            }
            return .success(UInt64(stock) + UInt64(fresh))
        }) { result in
            switch result {
            case .success(let outcome): completion(outcome)
            case .failure: completion(.failure(.internalError))
            }
        }
    }

    /// Key bundles of an account's devices (or one device), each with one one-time pre-key taken
    /// out of stock. Completion: the bundles (nil: unknown account) and, per device, the stock
    /// left when it fell below the low mark.
    public func bundles(account: UInt64, device: UInt64?, on loop: EventLoop,
                        completion: @escaping @Sendable (Result<(bundles: [KeyBundle], low: [(UInt64, UInt64)])?, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> (bundles: [KeyBundle], low: [(UInt64, UInt64)])? in
            guard let devices = try DeviceDirectory.devices(db, account: account) else { return nil }
            var bundles: [KeyBundle] = []
            var low: [(UInt64, UInt64)] = []
            for info in devices where device == nil || device == info.deviceID {
                let id = SQLiteDatabase.Value.integer(Int64(info.deviceID))
                guard let row = try db.query(
                    "SELECT identity_key, signed_prekey_id, signed_prekey, signed_prekey_signature FROM devices WHERE id = ?", [id]
                ).first, let identity = row[0].blob else { continue }
                let signed = row[2].blob.map {
                    SignedPrekey(keyID: UInt64(row[1].integer ?? 0), publicKey: $0, signature: row[3].blob ?? [])
                }
                var oneTime: OneTimePrekey?
                if let prekey = try db.query(
                    "SELECT key_id, public_key FROM prekeys WHERE device_id = ? ORDER BY key_id LIMIT 1", [id]).first {
                    oneTime = OneTimePrekey(keyID: UInt64(prekey[0].integer ?? 0), publicKey: prekey[1].blob ?? [])
                    try db.query("DELETE FROM prekeys WHERE device_id = ? AND key_id = ?", [id, prekey[0]])
                    let left = try db.query("SELECT COUNT(*) FROM prekeys WHERE device_id = ?", [id]).first?.first?.integer ?? 0
                    if left < Int64(DeviceDirectory.prekeysLowMark) { low.append((info.deviceID, UInt64(left))) }
                }
                bundles.append(KeyBundle(deviceID: info.deviceID, identityKey: identity, signedPrekey: signed, oneTimePrekey: oneTime))
            }
            return (bundles, low)
        }, completion: completion)
    }

    /// Lets `viewer` see `owner`'s presence, or stops it.
    public func setPresenceAllowed(owner: UInt64, viewer: UInt64, allowed: Bool, on loop: EventLoop,
                                   completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> Bool in
            guard try DeviceDirectory.devices(db, account: viewer) != nil else { return false }
            if allowed {
                try db.query("INSERT OR IGNORE INTO presence_allow(owner, viewer) VALUES (?, ?)",
                             [.integer(Int64(owner)), .integer(Int64(viewer))])
            } else {
                try db.query("DELETE FROM presence_allow WHERE owner = ? AND viewer = ?", [.integer(Int64(owner)), .integer(Int64(viewer))])
            }
            return true
        }, completion: completion)
    }

    /// Whether `viewer` may see `owner`'s presence.
    public func presenceAllowed(owner: UInt64, viewer: UInt64, on loop: EventLoop,
                                completion: @escaping @Sendable (Result<Bool, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> Bool in
            try !db.query("SELECT 1 FROM presence_allow WHERE owner = ? AND viewer = ?",
                          [.integer(Int64(owner)), .integer(Int64(viewer))]).isEmpty
        }, completion: completion)
    }

    /// Sets (or with nil clears) the token the push gateway knows the device by.
    public func setPushToken(device: UInt64, token: String?, on loop: EventLoop,
                             completion: @escaping @Sendable (Result<Void, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) in
            try db.query("UPDATE devices SET push_token = ? WHERE id = ?",
                         [token.map { .text($0) } ?? .null, .integer(Int64(device))])
        }, completion: completion)
    }

    /// The push token and the number of waiting messages of a device that has a token.
    public func pushTarget(device: UInt64, on loop: EventLoop,
                           completion: @escaping @Sendable (Result<(token: String, waiting: UInt64)?, StoreError>) -> Void) {
        thread.request(on: loop, { (db) throws(StoreError) -> (token: String, waiting: UInt64)? in
            guard let row = try db.query(
                "SELECT push_token, queued_count FROM devices WHERE id = ? AND revoked_at IS NULL", [.integer(Int64(device))]).first,
                let token = row[0].text
            else { return nil }
            return (token, UInt64(max(0, row[1].integer ?? 0)))
        }, completion: completion)
    }

    /// One-time pre-keys in a device's stock; nil for a device that never published keys.
    public func prekeyStock(device: UInt64, on loop: EventLoop, completion: @escaping @Sendable (Result<UInt64?, StoreError>) -> Void) {
        thread.request(on: loop, readOnly: true, { (db) throws(StoreError) -> UInt64? in
            try DeviceDirectory.prekeyStock(db, device: device)
        }, completion: completion)
    }

    /// One-time pre-keys left for `device`; nil when it never published keys.
    static func prekeyStock(_ db: SQLiteDatabase, device: UInt64) throws(StoreError) -> UInt64? {
        let id = SQLiteDatabase.Value.integer(Int64(device))
        guard try db.query("SELECT identity_key FROM devices WHERE id = ?", [id]).first?.first?.blob != nil else { return nil }
        return UInt64(try db.query("SELECT COUNT(*) FROM prekeys WHERE device_id = ?", [id]).first?.first?.integer ?? 0)
    }
}
