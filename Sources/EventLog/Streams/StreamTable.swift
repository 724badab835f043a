import Synchronization

/// One stream's state: everything about a stream that lives in memory
/// (Format.md, "Stream table": about 120 bytes plus the name per stream).
/// Per-event entries live on disk, but for the active segment's.
struct StreamState: Sendable {
    // The fields every append reads come first, on one cache line.
    var name: String
    /// Versions assigned so far: the next event gets this one.
    var nextVersion: UInt64 = 0
    var hash: UInt64
    var deletion: StreamDeletion = .none
    /// The next stream with the same hash (id + 1; 0: none).
    var collisionNext: UInt32 = 0
    /// The stream's newest entry in the active segment (index + 1; 0: none),
    /// valid when `activeSegment` is the active segment's base.
    var activeTail: UInt32 = 0
    var activeSegment: UInt64 = .max
    var firstPosition: UInt64?
    var lastPosition: UInt64?
    var truncateBefore: UInt64 = 0
    /// The last append to the stream (for idempotent retries): the position
    /// of its batch, and the versions it gave this stream.
    var lastAppendBatch: UInt64 = .max
    var lastAppendFirstVersion: UInt64 = 0
    var lastAppendCount: UInt32 = 0

    init(name: String, hash: UInt64) {
        self.name = name
        self.hash = hash
    }

    /// A stream's state as the stream table file kept it.
    init(row: StreamTableRow, hash: UInt64) {
        self.init(name: row.name, hash: hash)
        nextVersion = row.nextVersion
        truncateBefore = row.truncateBefore
        deletion = row.deletion
        firstPosition = row.firstPosition
        lastPosition = row.lastPosition
        lastAppendBatch = row.lastAppendBatch
        lastAppendFirstVersion = row.lastAppendFirstVersion
        lastAppendCount = row.lastAppendCount
    }

    /// What the stream table file keeps of this state.
    var row: StreamTableRow {
        var row = StreamTableRow(name: name)
        row.nextVersion = nextVersion
        row.truncateBefore = truncateBefore
        row.deletion = deletion
        row.firstPosition = firstPosition
        row.lastPosition = lastPosition
        row.lastAppendBatch = lastAppendBatch
        row.lastAppendFirstVersion = lastAppendFirstVersion
        row.lastAppendCount = lastAppendCount
        return row
    }

    /// The version of the last event, nil when none was ever written.
    var currentVersion: UInt64? { nextVersion == 0 ? nil : nextVersion - 1 }

    /// The version an expectation is checked against: a soft-deleted stream
    /// counts as having no events.
    var versionForExpectations: UInt64? { deletion == .soft ? nil : currentVersion }

    func info() -> StreamInfo {
        let readableFrom = max(truncateBefore, 0)
        let count = nextVersion > readableFrom ? nextVersion - readableFrom : 0
        return StreamInfo(
            name: name, currentVersion: currentVersion, count: deletion == .none ? count : 0,
            firstPosition: count > 0 && deletion == .none ? firstPosition : nil, lastPosition: lastPosition,
            deletion: deletion, truncateBefore: truncateBefore)
    }
}

/// Every stream of the log, by name, with the lock that orders the writer's
/// changes against readers.
///
/// Discipline: only the writer (holding the writer lock) changes it, and
/// only inside `mutate`; it may read without the lock, since nothing else
/// writes. Readers read inside `read`. So readers never wait for more than
/// one batch's worth of updates, and never block the writer for longer than
/// a lookup.
final class StreamTable: @unchecked Sendable {
    private let lock = Mutex<Void>(())
    /// Stream ids index this array; ids never change or get reused.
    private(set) var streams: ContiguousArray<StreamState> = []
    /// Hash → the newest stream id with that hash; others chain through `collisionNext`.
    private var byHash = HashIndex()
    /// Hashes are masked with this (a test hook: 0 makes every stream collide).
    let hashMask: UInt64

    init(hashMask: UInt64 = .max) { self.hashMask = hashMask }

    @inline(__always) func hash(_ name: UnsafeRawBufferPointer) -> UInt64 { StreamHash.hash(name) & hashMask }

    func hash(_ name: String) -> UInt64 {
        var name = name
        return name.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// The id of the stream named `name` (whose hash is `hash`), if any. Writer or `read`.
    @inline(__always) func find(_ name: UnsafeRawBufferPointer, hash: UInt64) -> UInt32? {
        guard let first = byHash[hash] else { return nil }
        return streams.withUnsafeBufferPointer { states -> UInt32? in
            var candidate = first + 1
            while candidate != 0 {
                let id = candidate - 1
                if states[Int(id)].name.utf8Equals(name) { return id }
                candidate = states[Int(id)].collisionNext
            }
            return nil
        }
    }

    /// The id of the only stream whose hash is `hash`; nil when none or several have it.
    func onlyStream(withHash hash: UInt64) -> UInt32? {
        guard let id = byHash[hash], streams[Int(id)].collisionNext == 0 else { return nil }
        return id
    }

    func find(_ name: String) -> UInt32? {
        var name = name
        return name.withUTF8 { find(UnsafeRawBufferPointer($0), hash: hash(UnsafeRawBufferPointer($0))) }
    }

    @inline(__always) subscript(id: UInt32) -> StreamState { streams[Int(id)] }

    /// Reads one stream's state in place (no copy of it). Writer or `read`.
    @inline(__always) func withState<R>(_ id: UInt32, _ body: (borrowing StreamState) -> R) -> R {
        streams.withUnsafeBufferPointer { body($0[Int(id)]) }
    }

    var count: Int { streams.count }

    /// Runs the writer's changes under the lock.
    func mutate<R>(_ body: (inout Mutator) throws -> R) rethrows -> R {
        try lock.withLock { _ in
            var mutator = Mutator(table: self)
            return try body(&mutator)
        }
    }

    /// Runs a reader's lookups under the lock.
    func read<R>(_ body: (StreamTable) throws -> R) rethrows -> R {
        try lock.withLock { _ in try body(self) }
    }

    /// The writer's handle for changes (only exists inside `mutate`).
    struct Mutator: ~Copyable {
        let table: StreamTable

        /// Adds a stream; returns its id.
        func insert(_ state: StreamState) -> UInt32 {
            let id = UInt32(table.streams.count)
            var state = state
            state.collisionNext = table.byHash[state.hash].map { $0 + 1 } ?? 0
            table.streams.append(state)
            table.byHash.set(state.hash, id)
            return id
        }

        func update(_ id: UInt32, _ change: (inout StreamState) -> Void) {
            change(&table.streams[Int(id)])
        }

        /// Replaces the whole table (open, rebuild).
        func replaceAll(with states: [StreamState]) {
            table.streams = []
            table.byHash = HashIndex(capacity: states.count)
            table.streams.reserveCapacity(states.count)
            for s in states { _ = insert(s) }
        }
    }
}
