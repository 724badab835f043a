import CRocksDB
import Workload

/// RocksDB peer through its C API (peers/README.md), one column family:
/// `e` ‖ BE64 position → record; `s` ‖ stream ‖ 0x00 ‖ BE32 version → BE64
/// position. Defaults + `increase_parallelism(2)` (snappy, 64 MiB memtable,
/// default block cache, no bloom filter); A1 writes with `sync=false` and
/// ends with `FlushWAL(sync)`, A2/A3 with `sync=true`. R2 is a bounded
/// iterator over the stream's `s` prefix plus one Get per event.
/// "rocksdb-tuned" adds a 10-bit full bloom filter, a 256 MiB block cache,
/// LZ4, `level_compaction_dynamic_level_bytes` and `bytes_per_sync=1 MiB`.
public final class RocksDBPeer: Store {
    private var db: OpaquePointer?
    private let options: OpaquePointer
    private var tableOptions: OpaquePointer?
    private var cache: OpaquePointer?
    private let writeOptions: OpaquePointer
    private let readOptions: OpaquePointer
    private let batch: OpaquePointer
    private let record = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
    private let key = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
    private let streamKey = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    /// Iterator bounds: RocksDB keeps a pointer to them while iterating.
    private let lowerBound = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    private let upperBound = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)

    public init(directory: String, mode: OpenMode, config: StoreConfig) throws {
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_increase_parallelism(options, 2)
        if config.tuned {
            let table = rocksdb_block_based_options_create()
            rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom_full(10))
            let cache = rocksdb_cache_create_lru(256 << 20)
            rocksdb_block_based_options_set_block_cache(table, cache)
            rocksdb_options_set_block_based_table_factory(options, table)
            rocksdb_options_set_compression(options, Int32(rocksdb_lz4_compression))
            rocksdb_options_set_level_compaction_dynamic_level_bytes(options, 1)
            rocksdb_options_set_bytes_per_sync(options, 1 << 20)
            tableOptions = table
            self.cache = cache
        }
        writeOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeOptions, mode == .durable ? 1 : 0)
        readOptions = rocksdb_readoptions_create()
        batch = rocksdb_writebatch_create()
        var error: UnsafeMutablePointer<CChar>?
        db = rocksdb_open(options, directory, &error)
        if let failure = Self.take(error) {
            releaseOptions()
            throw BenchError("rocksdb_open \(directory): \(failure)")
        }
    }

    deinit {
        if db != nil { rocksdb_close(db) }
        releaseOptions()
    }

    private func releaseOptions() {
        guard !released else { return }
        released = true
        rocksdb_writebatch_destroy(batch)
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_options_destroy(options)
        if let tableOptions { rocksdb_block_based_options_destroy(tableOptions) }
        if let cache { rocksdb_cache_destroy(cache) }
        for buffer in [record, key, streamKey, lowerBound, upperBound] { buffer.deallocate() }
    }
    private var released = false

    /// The message of a RocksDB error (freed), or nil.
    @inline(__always)
    private static func take(_ error: UnsafeMutablePointer<CChar>?) -> String? {
        guard let error else { return nil }
        defer { rocksdb_free(error) }
        return String(cString: error)
    }

    public func append(_ events: EventChunk.Events, _ range: Range<Int>) throws {
        try Self.write(events, range, db: db, options: writeOptions, batch: batch, record: record, key: key, streamKey: streamKey)
    }

    /// Puts `events[range]` (record and stream index entry each) into
    /// `batch` through the scratch buffers and writes it as one write.
    @inline(__always)
    static func write(
        _ events: EventChunk.Events, _ range: Range<Int>, db: OpaquePointer?, options: OpaquePointer?, batch: OpaquePointer?,
        record: UnsafeMutableRawPointer, key: UnsafeMutableRawPointer, streamKey: UnsafeMutableRawPointer
    ) throws {
        rocksdb_writebatch_clear(batch)
        let keyBytes = key.assumingMemoryBound(to: CChar.self)
        let streamKeyBytes = streamKey.assumingMemoryBound(to: CChar.self)
        for j in range {
            let event = events[j]
            key.storeBytes(of: UInt8(ascii: "e"), as: UInt8.self)
            PeerRecord.storePosition(event.position, into: key + 1)
            let length = PeerRecord.encode(event, into: record)
            rocksdb_writebatch_put(batch, keyBytes, 9, record.assumingMemoryBound(to: CChar.self), length)
            streamKey.storeBytes(of: UInt8(ascii: "s"), as: UInt8.self)
            let streamKeyLength = 1 + PeerRecord.encodeStreamKey(event.stream, version: event.version, into: streamKey + 1)
            rocksdb_writebatch_put(batch, streamKeyBytes, streamKeyLength, keyBytes + 1, 8)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(db, options, batch, &error)
        if let failure = take(error) { throw BenchError("rocksdb_write: \(failure)") }
    }

    public func finishBulk() throws {
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_flush_wal(db, 1, &error)  // 1: fsync the WAL
        if let failure = Self.take(error) { throw BenchError("rocksdb_flush_wal: \(failure)") }
    }

    public func close() throws {
        guard db != nil else { return }
        rocksdb_close(db)
        db = nil
    }

    public func scanAll(into sum: inout ReadSum) throws {
        let options = rocksdb_readoptions_create()
        defer { rocksdb_readoptions_destroy(options) }
        upperBound.storeBytes(of: UInt8(ascii: "f"), as: UInt8.self)
        lowerBound.storeBytes(of: UInt8(ascii: "e"), as: UInt8.self)
        rocksdb_readoptions_set_iterate_upper_bound(options, upperBound.assumingMemoryBound(to: CChar.self), 1)
        let iterator = rocksdb_create_iterator(db, options)
        defer { rocksdb_iter_destroy(iterator) }
        rocksdb_iter_seek(iterator, lowerBound.assumingMemoryBound(to: CChar.self), 1)
        while rocksdb_iter_valid(iterator) != 0 {
            var length = 0
            let value = rocksdb_iter_value(iterator, &length)
            let view = try PeerRecord.decode(value, count: length)
            sum.add(streamCount: view.streamCount, typeCount: view.typeCount, data: view.data)
            rocksdb_iter_next(iterator)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let failure = Self.take(error) { throw BenchError("rocksdb scan: \(failure)") }
    }

    /// Gets the event whose BE64 position is at `position8`; folds it into `sum`.
    @inline(__always)
    private func getEvent(_ position8: UnsafeRawPointer, into sum: inout ReadSum) throws -> UInt32? {
        key.storeBytes(of: UInt8(ascii: "e"), as: UInt8.self)
        (key + 1).copyMemory(from: position8, byteCount: 8)
        var error: UnsafeMutablePointer<CChar>?
        let slice = rocksdb_get_pinned(db, readOptions, key.assumingMemoryBound(to: CChar.self), 9, &error)
        if let failure = Self.take(error) { throw BenchError("rocksdb get: \(failure)") }
        guard let slice else { return nil }
        defer { rocksdb_pinnableslice_destroy(slice) }
        var length = 0
        let value = rocksdb_pinnableslice_value(slice, &length)
        let view = try PeerRecord.decode(value, count: length)
        sum.add(streamCount: view.streamCount, typeCount: view.typeCount, data: view.data)
        return view.version
    }

    public static var readsStreams: Bool { true }

    public func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int {
        lowerBound.storeBytes(of: UInt8(ascii: "s"), as: UInt8.self)
        (lowerBound + 1).copyMemory(from: name.baseAddress!, byteCount: name.count)
        lowerBound.storeBytes(of: 0, toByteOffset: 1 + name.count, as: UInt8.self)
        upperBound.copyMemory(from: lowerBound, byteCount: 1 + name.count)
        upperBound.storeBytes(of: 1, toByteOffset: 1 + name.count, as: UInt8.self)
        let options = rocksdb_readoptions_create()
        defer { rocksdb_readoptions_destroy(options) }
        rocksdb_readoptions_set_iterate_upper_bound(options, upperBound.assumingMemoryBound(to: CChar.self), 2 + name.count)
        let iterator = rocksdb_create_iterator(db, options)
        defer { rocksdb_iter_destroy(iterator) }
        var count = 0
        rocksdb_iter_seek(iterator, lowerBound.assumingMemoryBound(to: CChar.self), 2 + name.count)
        while rocksdb_iter_valid(iterator) != 0 {
            var length = 0
            guard let value = rocksdb_iter_value(iterator, &length), length == 8,
                  let version = try getEvent(UnsafeRawPointer(value), into: &sum)
            else { throw BenchError("rocksdb R2: dangling index entry in \(String(decoding: name, as: UTF8.self))") }
            guard version == UInt32(count) else {
                throw BenchError("rocksdb R2: version gap in \(String(decoding: name, as: UTF8.self)) at \(count)")
            }
            count += 1
            rocksdb_iter_next(iterator)
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &error)
        if let failure = Self.take(error) { throw BenchError("rocksdb stream read: \(failure)") }
        return count
    }

    public func read(position: UInt64, into sum: inout ReadSum) throws -> Bool {
        var big = position.bigEndian
        return try withUnsafeBytes(of: &big) { try getEvent($0.baseAddress!, into: &sum) } != nil
    }
}

/// The C phases: one DB, `WriteOptions.sync = true`; each thread writes one
/// event (its record and its stream index entry) per `rocksdb_write` with a
/// batch and buffers of its own. RocksDB groups concurrent writes itself:
/// one thread leads a write group, appends all their batches to the WAL and
/// syncs it once.
extension RocksDBPeer: ConcurrentStore {
    public convenience init(concurrentAt directory: String, config: StoreConfig) throws {
        try self.init(directory: directory, mode: .durable, config: config)
    }

    public func makeAppender() throws -> Appender { Appender(db: db) }

    public final class Appender: ConcurrentAppender {
        private let db: OpaquePointer?
        private let writeOptions = rocksdb_writeoptions_create()
        private let batch = rocksdb_writebatch_create()
        private let record = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
        private let key = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        private let streamKey = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)

        init(db: OpaquePointer?) {
            self.db = db
            rocksdb_writeoptions_set_sync(writeOptions, 1)
        }

        deinit {
            rocksdb_writebatch_destroy(batch)
            rocksdb_writeoptions_destroy(writeOptions)
            for buffer in [record, key, streamKey] { buffer.deallocate() }
        }

        @inline(__always)
        public func appendOne(_ events: EventChunk.Events, _ j: Int) throws {
            try RocksDBPeer.write(
                events, j..<(j + 1), db: db, options: writeOptions, batch: batch, record: record, key: key, streamKey: streamKey)
        }

        public func close() throws {}
    }
}
