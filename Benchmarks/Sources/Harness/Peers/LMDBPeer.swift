import CLMDB
import Workload

#if canImport(Glibc)
import Glibc
#endif

/// LMDB peer (peers/README.md): DB `events`, key = BE64 position (written
/// with `MDB_APPEND`), value = the peer record; DB `streams`, key = stream ‖
/// 0x00 ‖ BE32 version, value = BE64 position. Map size 16 GiB. A1 runs
/// with `MDB_NOSYNC` and ends with `mdb_env_sync(force)`; A2/A3 with the
/// default sync. Reads share one long-lived read transaction; R2 is a range
/// scan of `streams` plus one `mdb_get` per event.
public final class LMDBPeer: Store {
    private var env: OpaquePointer?
    private var events: MDB_dbi = 0
    private var streams: MDB_dbi = 0
    private var readTransaction: OpaquePointer?
    private let record = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
    private let key = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
    private let streamKey = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)

    public init(directory: String, mode: OpenMode, config: StoreConfig) throws {
        try Self.check(mdb_env_create(&env), "mdb_env_create")
        do {
            try Self.check(mdb_env_set_mapsize(env, 16 << 30), "mdb_env_set_mapsize")
            try Self.check(mdb_env_set_maxdbs(env, 4), "mdb_env_set_maxdbs")
            let flags = mode == .durable ? 0 : UInt32(MDB_NOSYNC)
            try Self.check(mdb_env_open(env, directory, flags, 0o644), "mdb_env_open \(directory)")
            var transaction: OpaquePointer?
            try Self.check(mdb_txn_begin(env, nil, 0, &transaction), "mdb_txn_begin")
            do {
                try Self.check(mdb_dbi_open(transaction, "events", UInt32(MDB_CREATE), &events), "mdb_dbi_open events")
                try Self.check(mdb_dbi_open(transaction, "streams", UInt32(MDB_CREATE), &streams), "mdb_dbi_open streams")
            } catch {
                mdb_txn_abort(transaction)
                throw error
            }
            try Self.check(mdb_txn_commit(transaction), "mdb_txn_commit")
        } catch {
            try? close()
            throw error
        }
    }

    deinit {
        try? close()
        record.deallocate()
        key.deallocate()
        streamKey.deallocate()
    }

    @inline(__always)
    static func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
        guard rc == MDB_SUCCESS else { throw BenchError("lmdb \(what()): \(String(cString: mdb_strerror(rc)))") }
    }

    /// Puts one event under its position into the events table (appending:
    /// positions ascend); `key` holds the position afterwards.
    private func putEventRecord(_ event: GeneratedEvent, in transaction: OpaquePointer?) throws {
        PeerRecord.storePosition(event.position, into: key)
        var k = MDB_val(mv_size: 8, mv_data: key)
        var v = MDB_val(mv_size: PeerRecord.encode(event, into: record), mv_data: record)
        try Self.check(mdb_put(transaction, events, &k, &v, UInt32(MDB_APPEND)), "mdb_put events")
    }

    public func append(_ batch: EventChunk.Events, _ range: Range<Int>) throws {
        let streams = self.streams
        var transaction: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &transaction), "mdb_txn_begin")
        do {
            for j in range {
                let event = batch[j]
                try putEventRecord(event, in: transaction)
                var k2 = MDB_val(
                    mv_size: PeerRecord.encodeStreamKey(event.stream, version: event.version, into: streamKey), mv_data: streamKey)
                var v2 = MDB_val(mv_size: 8, mv_data: key)
                try Self.check(mdb_put(transaction, streams, &k2, &v2, UInt32(MDB_NOOVERWRITE)), "mdb_put streams")
            }
        } catch {
            mdb_txn_abort(transaction)
            throw error
        }
        try Self.check(mdb_txn_commit(transaction), "mdb_txn_commit")
    }

    public func finishBulk() throws { try Self.check(mdb_env_sync(env, 1), "mdb_env_sync") }

    public func close() throws {
        guard env != nil else { return }
        if readTransaction != nil { mdb_txn_abort(readTransaction) }
        readTransaction = nil
        mdb_env_close(env)
        env = nil
    }

    private func reading() throws -> OpaquePointer? {
        if readTransaction == nil {
            try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &readTransaction), "mdb_txn_begin (read)")
        }
        return readTransaction
    }

    public func scanAll(into sum: inout ReadSum) throws {
        var cursor: OpaquePointer?
        try Self.check(mdb_cursor_open(try reading(), events, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        var rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)
        while rc == MDB_SUCCESS {
            let view = try PeerRecord.decode(v.mv_data, count: v.mv_size)
            sum.add(streamCount: view.streamCount, typeCount: view.typeCount, data: view.data)
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
        }
        guard rc == MDB_NOTFOUND else { try Self.check(rc, "scan"); return }
    }

    public static var readsStreams: Bool { true }

    public func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int {
        let transaction = try reading()
        let events = self.events
        var cursor: OpaquePointer?
        try Self.check(mdb_cursor_open(transaction, streams, &cursor), "mdb_cursor_open")
        defer { mdb_cursor_close(cursor) }
        let prefixCount = name.count + 1
        streamKey.copyMemory(from: name.baseAddress!, byteCount: name.count)
        streamKey.storeBytes(of: 0, toByteOffset: name.count, as: UInt8.self)
        var k = MDB_val(mv_size: prefixCount, mv_data: streamKey)
        var v = MDB_val()
        var count = 0
        var rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE)
        while rc == MDB_SUCCESS, k.mv_size == prefixCount + 4, memcmp(k.mv_data, streamKey, prefixCount) == 0 {
            var eventKey = MDB_val(mv_size: 8, mv_data: v.mv_data)
            var value = MDB_val()
            try Self.check(mdb_get(transaction, events, &eventKey, &value), "mdb_get event")
            let view = try PeerRecord.decode(value.mv_data, count: value.mv_size)
            guard view.version == UInt32(count) else {
                throw BenchError("lmdb R2: version gap in \(String(decoding: name, as: UTF8.self)) at \(count)")
            }
            sum.add(streamCount: view.streamCount, typeCount: view.typeCount, data: view.data)
            count += 1
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
        }
        return count
    }

    public func read(position: UInt64, into sum: inout ReadSum) throws -> Bool {
        PeerRecord.storePosition(position, into: key)
        var k = MDB_val(mv_size: 8, mv_data: key)
        var v = MDB_val()
        guard mdb_get(try reading(), events, &k, &v) == MDB_SUCCESS else { return false }
        let view = try PeerRecord.decode(v.mv_data, count: v.mv_size)
        sum.add(streamCount: view.streamCount, typeCount: view.typeCount, data: view.data)
        return true
    }
}

extension LMDBPeer: StreamsScaleStore {
    public typealias ExpectedBatch = (events: EventChunk.Events, range: Range<Int>)

    public func prepareExpected(_ events: EventChunk.Events, _ range: Range<Int>) throws -> ExpectedBatch { (events, range) }

    /// One write transaction: per event, the key stream ‖ 0 ‖ BE32(expected)
    /// must exist in `streams` and the new version's key must not
    /// (`MDB_NOOVERWRITE`): with gapless versions, that is "the stream is at
    /// exactly `expected`". A mismatch aborts the whole batch.
    public func appendExpected(_ batch: ExpectedBatch) throws {
        let streams = self.streams
        var transaction: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &transaction), "mdb_txn_begin")
        do {
            for j in batch.range {
                let event = batch.events[j]
                let stale = WrongExpectedVersion(
                    stream: String(decoding: event.stream, as: UTF8.self), expected: UInt64(max(Int64(event.version) - 1, 0)))
                guard event.version >= 1 else { throw stale }
                var previous = MDB_val(
                    mv_size: PeerRecord.encodeStreamKey(event.stream, version: event.version - 1, into: streamKey), mv_data: streamKey)
                var found = MDB_val()
                let rc = mdb_get(transaction, streams, &previous, &found)
                if rc == MDB_NOTFOUND { throw stale }
                try Self.check(rc, "mdb_get streams")
                try putEventRecord(event, in: transaction)
                var k2 = MDB_val(
                    mv_size: PeerRecord.encodeStreamKey(event.stream, version: event.version, into: streamKey), mv_data: streamKey)
                var v2 = MDB_val(mv_size: 8, mv_data: key)
                let put = mdb_put(transaction, streams, &k2, &v2, UInt32(MDB_NOOVERWRITE))
                if put == MDB_KEYEXIST { throw stale }
                try Self.check(put, "mdb_put streams")
            }
        } catch {
            mdb_txn_abort(transaction)
            throw error
        }
        try Self.check(mdb_txn_commit(transaction), "mdb_txn_commit")
    }

    /// Ends the long-lived read transaction (the next read begins a new one).
    public func endReads() {
        if readTransaction != nil { mdb_txn_abort(readTransaction) }
        readTransaction = nil
    }
}

/// The C phases: one environment with the default sync; each thread commits
/// one event per write transaction (record and stream index entry). LMDB
/// runs one write transaction at a time: the others wait in
/// `mdb_txn_begin`, and each commit syncs on its own (no group commit).
/// Positions arrive out of order here, so the record is put without
/// `MDB_APPEND`.
extension LMDBPeer: ConcurrentStore {
    public convenience init(concurrentAt directory: String, config: StoreConfig) throws {
        try self.init(directory: directory, mode: .durable, config: config)
    }

    public func makeAppender() throws -> Appender { Appender(env: env, events: events, streams: streams) }

    public final class Appender: ConcurrentAppender {
        private let env: OpaquePointer?
        private let events: MDB_dbi
        private let streams: MDB_dbi
        private let record = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
        private let key = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        private let streamKey = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)

        init(env: OpaquePointer?, events: MDB_dbi, streams: MDB_dbi) {
            self.env = env
            self.events = events
            self.streams = streams
        }

        deinit { for buffer in [record, key, streamKey] { buffer.deallocate() } }

        public func appendOne(_ batch: EventChunk.Events, _ j: Int) throws {
            let event = batch[j]
            var transaction: OpaquePointer?
            try LMDBPeer.check(mdb_txn_begin(env, nil, 0, &transaction), "mdb_txn_begin")
            do {
                PeerRecord.storePosition(event.position, into: key)
                var k = MDB_val(mv_size: 8, mv_data: key)
                var v = MDB_val(mv_size: PeerRecord.encode(event, into: record), mv_data: record)
                try LMDBPeer.check(mdb_put(transaction, events, &k, &v, UInt32(MDB_NOOVERWRITE)), "mdb_put events")
                var k2 = MDB_val(
                    mv_size: PeerRecord.encodeStreamKey(event.stream, version: event.version, into: streamKey), mv_data: streamKey)
                var v2 = MDB_val(mv_size: 8, mv_data: key)
                try LMDBPeer.check(mdb_put(transaction, streams, &k2, &v2, UInt32(MDB_NOOVERWRITE)), "mdb_put streams")
            } catch {
                mdb_txn_abort(transaction)
                throw error
            }
            try LMDBPeer.check(mdb_txn_commit(transaction), "mdb_txn_commit")
        }

        public func close() throws {}
    }
}
