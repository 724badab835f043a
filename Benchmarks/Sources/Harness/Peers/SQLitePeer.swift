import CSQLite
import Workload

#if canImport(Glibc)
import Glibc
#endif

/// SQLite peer (peers/README.md, "Peers and their designs"): the usual
/// event-store design in SQLite.
///
///     events(position INTEGER PRIMARY KEY, stream TEXT, version INTEGER, type TEXT, data BLOB)
///     UNIQUE INDEX (stream, version)
///
/// `journal_mode=WAL`, otherwise defaults (2 MiB page cache, no mmap);
/// `synchronous=OFF` for A1 (FULL + a checkpoint + fsync at its end), FULL
/// for A2/A3. "sqlite-tuned" adds `mmap_size=1 GiB`. R2 is
/// `WHERE stream=? ORDER BY version`, R3 `WHERE position=?`. Values are
/// bound without copies (SQLITE_STATIC), as the C peer does.
public final class SQLitePeer: Store {
    private var db: OpaquePointer?
    private let directoryPath: String
    private let path: String
    private var insert: OpaquePointer?
    private var begin: OpaquePointer?
    private var commit: OpaquePointer?
    private var scan: OpaquePointer?
    private var byStream: OpaquePointer?
    private var byPosition: OpaquePointer?
    /// streams-scale only, prepared on first use: a stream's last version.
    private var lastVersion: OpaquePointer?
    private var rollback: OpaquePointer?

    public convenience init(directory: String, mode: OpenMode, config: StoreConfig) throws {
        try self.init(directory: directory, mode: mode, config: config, sharedWriters: false)
    }

    /// With `sharedWriters` (the C phases: several connections write), a
    /// transaction takes the write lock at `BEGIN IMMEDIATE`, and a
    /// connection that finds it taken retries (`sqliteBusyRetry`).
    init(directory: String, mode: OpenMode, config: StoreConfig, sharedWriters: Bool) throws {
        directoryPath = directory
        path = directory + "/events.db"
        guard sqlite3_open(path, &db) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw BenchError("sqlite3_open \(path): \(message)")
        }
        do {
            if sharedWriters { sqlite3_busy_handler(db, sqliteBusyRetry, nil) }
            try exec("PRAGMA journal_mode=WAL")
            try exec(mode == .durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF")
            if config.tuned { try exec("PRAGMA mmap_size=1073741824") }
            try exec("""
                CREATE TABLE IF NOT EXISTS events(position INTEGER PRIMARY KEY, stream TEXT NOT NULL, \
                version INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL)
                """)
            try exec("CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON events(stream, version)")
            insert = try prepare("INSERT INTO events(position, stream, version, type, data) VALUES(?,?,?,?,?)")
            begin = try prepare(sharedWriters ? "BEGIN IMMEDIATE" : "BEGIN")
            commit = try prepare("COMMIT")
            scan = try prepare("SELECT position, stream, version, type, data FROM events ORDER BY position")
            byStream = try prepare("SELECT position, version, type, data FROM events WHERE stream=? ORDER BY version")
            byPosition = try prepare("SELECT stream, version, type, data FROM events WHERE position=?")
        } catch {
            try? close()
            throw error
        }
    }

    deinit { try? close() }

    private var message: String { db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed" }

    private func exec(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &error) == SQLITE_OK else {
            let text = error.map { String(cString: $0) } ?? message
            sqlite3_free(error)
            throw BenchError("sqlite \(sql): \(text)")
        }
    }

    private func prepare(_ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw BenchError("sqlite prepare \(sql): \(message)")
        }
        return statement
    }

    /// Binds one event to the prepared INSERT and runs it (no allocation).
    @inline(__always)
    private func insertEvent(_ event: GeneratedEvent) throws {
        let insert = self.insert
        sqlite3_bind_int64(insert, 1, sqlite3_int64(event.position))
        eventlog_bench_sqlite3_bind_text_static(insert, 2, event.stream.baseAddress, Int32(event.stream.count))
        sqlite3_bind_int64(insert, 3, sqlite3_int64(event.version))
        eventlog_bench_sqlite3_bind_text_static(insert, 4, event.type.baseAddress, Int32(event.type.count))
        eventlog_bench_sqlite3_bind_blob_static(insert, 5, event.payload.baseAddress, Int32(event.payload.count))
        try stepDone(insert, "INSERT")
    }

    @inline(__always)
    private func stepDone(_ statement: OpaquePointer?, _ what: StaticString) throws {
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE else {
            sqlite3_reset(statement)
            throw BenchError("sqlite \(what): \(message)")
        }
        sqlite3_reset(statement)
    }

    public func append(_ events: EventChunk.Events, _ range: Range<Int>) throws {
        try stepDone(begin, "BEGIN")
        for j in range {
            let event = events[j]
            try insertEvent(event)
        }
        try stepDone(commit, "COMMIT")
    }

    /// synchronous=OFF never syncs: switch to FULL, checkpoint the WAL into
    /// the database (SQLite syncs the WAL, then the database), and fsync the
    /// files once more, as the C peer does.
    public func finishBulk() throws {
        try exec("PRAGMA synchronous=FULL")
        try exec("PRAGMA wal_checkpoint(TRUNCATE)")
        fsyncPath(path)
        fsyncPath(path + "-wal")
    }

    public func close() throws {
        guard db != nil else { return }
        for statement in [insert, begin, commit, scan, byStream, byPosition, lastVersion, rollback] { sqlite3_finalize(statement) }
        insert = nil; begin = nil; commit = nil; scan = nil; byStream = nil; byPosition = nil; lastVersion = nil; rollback = nil
        let rc = sqlite3_close(db)
        db = nil
        guard rc == SQLITE_OK else { throw BenchError("sqlite3_close failed (\(rc))") }
    }

    public func scanAll(into sum: inout ReadSum) throws {
        let scan = self.scan  // a local: no class-property access per row
        var rc = sqlite3_step(scan)
        while rc == SQLITE_ROW {
            let streamCount = Int(sqlite3_column_bytes(scan, 1))
            let typeCount = Int(sqlite3_column_bytes(scan, 3))
            let data = sqlite3_column_blob(scan, 4)
            let dataCount = Int(sqlite3_column_bytes(scan, 4))
            sum.add(streamCount: streamCount, typeCount: typeCount, data: UnsafeRawBufferPointer(start: data, count: dataCount))
            rc = sqlite3_step(scan)
        }
        sqlite3_reset(scan)
        guard rc == SQLITE_DONE else { throw BenchError("sqlite scan: \(message)") }
    }

    public static var readsStreams: Bool { true }

    public func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int {
        let byStream = self.byStream
        eventlog_bench_sqlite3_bind_text_static(byStream, 1, name.baseAddress, Int32(name.count))
        var count = 0
        var rc = sqlite3_step(byStream)
        while rc == SQLITE_ROW {
            guard sqlite3_column_int64(byStream, 1) == count else {
                sqlite3_reset(byStream)
                throw BenchError("sqlite R2: version gap in \(String(decoding: name, as: UTF8.self)) at \(count)")
            }
            let typeCount = Int(sqlite3_column_bytes(byStream, 2))
            let data = sqlite3_column_blob(byStream, 3)
            let dataCount = Int(sqlite3_column_bytes(byStream, 3))
            sum.add(streamCount: name.count, typeCount: typeCount, data: UnsafeRawBufferPointer(start: data, count: dataCount))
            count += 1
            rc = sqlite3_step(byStream)
        }
        sqlite3_reset(byStream)
        guard rc == SQLITE_DONE else { throw BenchError("sqlite stream read: \(message)") }
        return count
    }

    public func read(position: UInt64, into sum: inout ReadSum) throws -> Bool {
        let byPosition = self.byPosition
        sqlite3_bind_int64(byPosition, 1, sqlite3_int64(position))
        var found = false
        if sqlite3_step(byPosition) == SQLITE_ROW {
            let streamCount = Int(sqlite3_column_bytes(byPosition, 0))
            let typeCount = Int(sqlite3_column_bytes(byPosition, 2))
            let data = sqlite3_column_blob(byPosition, 3)
            let dataCount = Int(sqlite3_column_bytes(byPosition, 3))
            sum.add(streamCount: streamCount, typeCount: typeCount, data: UnsafeRawBufferPointer(start: data, count: dataCount))
            found = true
        }
        sqlite3_reset(byPosition)
        return found
    }
}

extension SQLitePeer: StreamsScaleStore {
    public typealias ExpectedBatch = (events: EventChunk.Events, range: Range<Int>)

    public func prepareExpected(_ events: EventChunk.Events, _ range: Range<Int>) throws -> ExpectedBatch {
        if lastVersion == nil {
            lastVersion = try prepare("SELECT version FROM events WHERE stream=? ORDER BY version DESC LIMIT 1")
            rollback = try prepare("ROLLBACK")
        }
        return (events, range)
    }

    /// One transaction: per event, the stream's last version through the
    /// (stream, version) index must be the expected one; then the insert.
    /// A mismatch rolls the whole batch back.
    public func appendExpected(_ batch: ExpectedBatch) throws {
        let lastVersion = self.lastVersion
        try stepDone(begin, "BEGIN")
        do {
            for j in batch.range {
                let event = batch.events[j]
                eventlog_bench_sqlite3_bind_text_static(lastVersion, 1, event.stream.baseAddress, Int32(event.stream.count))
                let rc = sqlite3_step(lastVersion)
                let current: Int64? = rc == SQLITE_ROW ? sqlite3_column_int64(lastVersion, 0) : nil
                sqlite3_reset(lastVersion)
                guard rc == SQLITE_ROW || rc == SQLITE_DONE else { throw BenchError("sqlite last version: \(message)") }
                let expected = Int64(event.version) - 1
                guard current == expected else {
                    throw WrongExpectedVersion(stream: String(decoding: event.stream, as: UTF8.self), expected: UInt64(max(expected, 0)))
                }
                try insertEvent(event)
            }
        } catch {
            try stepDone(rollback, "ROLLBACK")
            throw error
        }
        try stepDone(commit, "COMMIT")
    }
}

/// The C phases: one database, each thread its own connection (WAL,
/// `synchronous=FULL`), each event one `BEGIN IMMEDIATE; INSERT; COMMIT`.
/// A connection that finds the write lock taken retries every 50 µs for up
/// to 10 s (`sqliteBusyRetry`): SQLite's own `busy_timeout` sleeps 1, 2, 5,
/// 10 … ms between tries, longer than a commit takes here.
extension SQLitePeer: ConcurrentStore {
    public convenience init(concurrentAt directory: String, config: StoreConfig) throws {
        try self.init(directory: directory, mode: .durable, config: config)
    }

    public func makeAppender() throws -> Appender {
        let connection = try SQLitePeer(directory: directoryPath, mode: .durable, config: StoreConfig(tuned: false), sharedWriters: true)
        return Appender(connection: connection)
    }

    public final class Appender: ConcurrentAppender {
        let connection: SQLitePeer
        init(connection: SQLitePeer) { self.connection = connection }

        @inline(__always)
        public func appendOne(_ events: EventChunk.Events, _ j: Int) throws {
            try connection.append(events, j..<(j + 1))
        }

        public func close() throws { try connection.close() }
    }
}

/// SQLite's busy handler in the C phases: retry every 50 µs, give up after
/// 200,000 tries (10 s of sleeping).
private func sqliteBusyRetry(_: UnsafeMutableRawPointer?, _ tries: Int32) -> Int32 {
    guard tries < 200_000 else { return 0 }
    usleep(50)
    return 1
}
