internal import CSQLite

/// A SQLite failure: the operation, SQLite's result code and its message.
public struct StoreError: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let code: Int32
    public let message: String

    public var description: String { "\(operation): \(message) (sqlite \(code))" }

    /// A UNIQUE or PRIMARY KEY constraint was violated.
    public var isConstraint: Bool { code & 0xff == SQLITE_CONSTRAINT }
}

/// One connection to one SQLite file, used by one thread at a time (the store thread, or a
/// command-line tool). WAL mode, synchronous FULL, foreign keys on.
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    public let path: String
    /// Bumped by jobs that change device lists or mutes (`DirectoryVersion`).
    public let directoryVersion = DirectoryVersion()

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) throws(StoreError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let result = sqlite3_open_v2(path, &db, flags, nil)
        guard result == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            throw StoreError(operation: "open \(path)", code: result, message: message)
        }
        handle = db
        sqlite3_busy_timeout(db, 5_000)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=FULL")
        try execute("PRAGMA foreign_keys=ON")
        try execute("PRAGMA temp_store=MEMORY")
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    private func failure(_ operation: String, _ code: Int32) -> StoreError {
        StoreError(operation: operation, code: code, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs SQL with no results (may hold several statements).
    public func execute(_ sql: String) throws(StoreError) {
        var error: UnsafeMutablePointer<CChar>?
        let result = sqlite3_exec(handle, sql, nil, nil, &error)
        if result != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "error"
            sqlite3_free(error)
            throw StoreError(operation: sql.prefix(60).description, code: result, message: message)
        }
    }

    /// A bindable value.
    public enum Value: Sendable, Equatable {
        case integer(Int64)
        case text(String)
        case blob([UInt8])
        case null
    }

    /// Runs one statement (prepared once and cached) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [Value] = []) throws(StoreError) -> [[Value]] {
        let statement: OpaquePointer
        if let cached = statements[sql] {
            statement = cached
        } else {
            var prepared: OpaquePointer?
            let result = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil)
            guard result == SQLITE_OK, let prepared else { throw failure("prepare \(sql.prefix(60))", result) }
            statements[sql] = prepared
            statement = prepared
        }
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in parameters.enumerated() {
            let position = Int32(index + 1)
            let result: Int32
            switch value {
            case .integer(let v): result = sqlite3_bind_int64(statement, position, v)
            case .text(let v): result = sqlite3_bind_text(statement, position, v, -1, sb_sqlite_transient())
            case .blob(let v): result = v.withUnsafeBytes { sqlite3_bind_blob(statement, position, $0.baseAddress, Int32($0.count), sb_sqlite_transient()) }
            case .null: result = sqlite3_bind_null(statement, position)
            }
            guard result == SQLITE_OK else { throw failure("bind", result) }
        }
        var rows: [[Value]] = []
        while true {
            let result = sqlite3_step(statement)
            if result == SQLITE_DONE { return rows }
            guard result == SQLITE_ROW else { throw failure("step \(sql.prefix(60))", result) }
            var row: [Value] = []
            for column in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_TEXT: row.append(.text(String(cString: sqlite3_column_text(statement, column))))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let base = sqlite3_column_blob(statement, column)
                    row.append(.blob(count == 0 ? [] : Array(UnsafeRawBufferPointer(start: base, count: count))))
                default: row.append(.null)
                }
            }
            rows.append(row)
        }
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// True while a transaction is open (SQLite is not in autocommit mode).
    public var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Rows added to (+) and removed from (−) `messages` by the batch in progress; the store
    /// thread adds it to the queue-depth gauge once the batch commits. Store thread only.
    var queuedDelta = 0

    /// Counts the rows the last statement inserted into or deleted from `messages`.
    func countQueued(removed: Bool = false) {
        queuedDelta += removed ? -changes : changes
    }
}

extension SQLiteDatabase.Value {
    public var integer: Int64? { if case .integer(let v) = self { return v } else { return nil } }
    public var text: String? { if case .text(let v) = self { return v } else { return nil } }
    public var blob: [UInt8]? { if case .blob(let v) = self { return v } else { return nil } }
}
