import Workload

/// One system under test as the phase runner drives it: the `peer_ops` of
/// peers/src/common.h. EventLog and each peer conform; the runner is
/// generic over it (`SystemRound<S>`), so a timed loop calls a concrete
/// type, never an existential.
///
/// Not thread-safe: one phase at a time, from one thread (the C phases
/// go through `ConcurrentStore`).
public protocol Store: AnyObject {
    /// Opens the store in `directory` (created by the caller, empty for a
    /// fresh store), with the settings `mode` calls for.
    init(directory: String, mode: OpenMode, config: StoreConfig) throws

    /// Appends `events[range]` as one transaction (a batch). Durable on
    /// return when opened `.durable`.
    func append(_ events: EventChunk.Events, _ range: Range<Int>) throws

    /// A1's final step, inside its timing: make everything appended durable.
    /// `close()` follows, also timed.
    func finishBulk() throws

    func close() throws

    /// R1: every event in position order, each folded into `sum`.
    func scanAll(into sum: inout ReadSum) throws

    /// Whether `readStream` works (EventLog: once it has a stream index).
    static var readsStreams: Bool { get }

    /// R2: the whole stream `name` in version order, each event folded into
    /// `sum`. Throws when a version is not the next one (0, 1, 2, …).
    /// - Returns: the number of events read.
    func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int

    /// R3: the event at `position`, folded into `sum`.
    /// - Returns: false when there is none.
    func read(position: UInt64, into sum: inout ReadSum) throws -> Bool
}

/// How a store is opened, per phase (WORKLOAD.md, "Phases").
public enum OpenMode: Sendable {
    /// A1: no per-transaction sync (SQLite `synchronous=OFF`, LMDB
    /// `MDB_NOSYNC`, RocksDB `sync=false`, EventLog `.none`).
    case bulk
    /// R1–R3: store A reopened for reading (peers as in A1; EventLog read-only).
    case reading
    /// A2, A3: durable per transaction (SQLite `synchronous=FULL`, LMDB
    /// default, RocksDB `sync=true`, EventLog `.always`).
    case durable
}

/// Variant settings of a system.
public struct StoreConfig: Sendable {
    /// The peers' "-tuned" sets (peers/README.md).
    public var tuned = false
    /// EventLog only: LZ4-compressed batches.
    public var lz4 = false
    /// EventLog only: `LogOptions.batchCacheBytes` (nil: the library's default).
    public var batchCacheBytes: Int?
    /// EventLog only: `LogOptions.compressionUnitBytes` (nil: the library's default).
    public var compressionUnitBytes: Int?
    /// EventLog only: `LogOptions.dictionaryUnitBytes` (nil: the library's default).
    public var dictionaryUnitBytes: Int?
    /// EventLog only: encryption at rest (one data key for the log, a fixed master key).
    public var encrypted = false
    /// EventLog's C phases only: where the log's group commit metrics go.
    public var groupCommitTally: GroupCommitTally?
    public init(tuned: Bool = false, lz4: Bool = false) {
        self.tuned = tuned
        self.lz4 = lz4
    }
}

/// The systems the harness knows, by the names the JSON and the peers' table use.
public enum SystemID: String, CaseIterable, Sendable, Comparable {
    case eventlog
    case sqlite
    case sqliteTuned = "sqlite-tuned"
    case lmdb
    case rocksdb
    case rocksdbTuned = "rocksdb-tuned"

    public var name: String { rawValue }
    public var isPeer: Bool { self != .eventlog }
    public var config: StoreConfig {
        StoreConfig(tuned: self == .sqliteTuned || self == .rocksdbTuned)
    }

    public static func < (a: SystemID, b: SystemID) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The durability each of its figures had.
    public var bulkDurability: String {
        switch self {
        case .eventlog: return ".none; sync() + close() at the end (timed)"
        case .sqlite, .sqliteTuned:
            return "synchronous=OFF; at the end synchronous=FULL + wal_checkpoint(TRUNCATE) + fsync (timed)"
        case .lmdb: return "MDB_NOSYNC; mdb_env_sync(force) at the end (timed)"
        case .rocksdb, .rocksdbTuned: return "sync=false; FlushWAL(sync) at the end (timed)"
        }
    }

    public var durableDurability: String {
        switch self {
        case .eventlog: return ".always: fdatasync per append, shared by concurrent appenders"
        case .sqlite, .sqliteTuned: return "WAL, synchronous=FULL"
        case .lmdb: return "default: sync per commit (data, then meta page)"
        case .rocksdb, .rocksdbTuned: return "WriteOptions.sync=true"
        }
    }

    public var settings: String {
        switch self {
        case .eventlog: return "128 MiB segments, no compression (A1-lz4: LZ4)"
        case .sqlite: return "events(position INTEGER PRIMARY KEY, …) + UNIQUE(stream, version), WAL, 2 MiB cache, no mmap"
        case .sqliteTuned: return "as sqlite + mmap_size=1 GiB"
        case .lmdb: return "events (BE64 position, MDB_APPEND) + streams (stream‖0‖BE32 version → position), 16 GiB map"
        case .rocksdb: return "'e'‖BE64 → record, 's'‖stream‖0‖BE32 → position; defaults + increase_parallelism(2)"
        case .rocksdbTuned: return "as rocksdb + bloom 10 bits, 256 MiB block cache, LZ4, dynamic level bytes, bytes_per_sync 1 MiB"
        }
    }

    /// Parses `a,b,c` (names as above).
    public static func parseList(_ text: String) -> [SystemID]? {
        var systems: [SystemID] = []
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces).lowercased()
            if name == "all" {
                systems.append(contentsOf: allCases)
                continue
            }
            guard let system = SystemID(rawValue: name) else { return nil }
            systems.append(system)
        }
        var seen = Set<SystemID>()
        let unique = systems.filter { seen.insert($0).inserted }.sorted()
        return unique.isEmpty ? nil : unique
    }
}

/// The consumer's work per event read, the same as `rsum_add` in
/// peers/src/common.h: count, logical bytes, and a fold of (payload length,
/// first and last payload byte).
public struct ReadSum: Equatable, Sendable {
    public var events: UInt64 = 0
    public var bytes: UInt64 = 0
    public var sum: UInt64 = 0

    public init() {}
    public init(events: UInt64, bytes: UInt64, sum: UInt64) {
        self.events = events
        self.bytes = bytes
        self.sum = sum
    }

    @inline(__always)
    public mutating func add(streamCount: Int, typeCount: Int, data: UnsafeRawBufferPointer) {
        events &+= 1
        bytes &+= UInt64(streamCount &+ typeCount &+ data.count)
        let first = data.isEmpty ? 0 : data[0]
        let last = data.isEmpty ? 0 : data[data.count &- 1]
        sum &+= UInt64(data.count) &+ UInt64(first) &+ UInt64(last)
    }

    @inline(__always)
    public mutating func add(_ other: ReadSum) {
        events &+= other.events
        bytes &+= other.bytes
        sum &+= other.sum
    }
}

/// Writes `order-<k>` into `buffer` (≥ 16 bytes); returns its length.
@inline(__always)
func writeStreamName(_ k: UInt32, into buffer: UnsafeMutableRawPointer) -> Int {
    let prefix: StaticString = "order-"
    buffer.copyMemory(from: prefix.utf8Start, byteCount: 6)
    var digits = 1
    var rest = k
    while rest >= 10 {
        rest /= 10
        digits += 1
    }
    var v = k
    var i = 6 + digits - 1
    while i >= 6 {
        buffer.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ v % 10), toByteOffset: i, as: UInt8.self)
        v /= 10
        i -= 1
    }
    return 6 + digits
}
