/// One stream's state (Format.md §14): its versions, its place in the log,
/// its deletion and truncation, and its last append (for idempotent
/// retries). In memory for the streams the current generation changed
/// (`StreamGeneration`); for the others, in stream table runs on disk.
struct StreamState: Sendable {
    // The fields every append reads come first, on one cache line.
    var name: String
    /// Versions assigned so far: the next event gets this one.
    var nextVersion: UInt64 = 0
    var hash: UInt64
    var deletion: StreamDeletion = .none
    /// The next stream with the same hash in its generation (id + 1; 0: none).
    var collisionNext: UInt32 = 0
    var firstPosition: UInt64?
    var lastPosition: UInt64?
    var truncateBefore: UInt64 = 0
    /// The last append to the stream (for idempotent retries, Format.md
    /// §14.4): the position of its batch, the versions it gave this stream,
    /// the batch's record count (markers included; 0: unknown, a state read
    /// from a version 2 run) and the digest of the event ids it gave this
    /// stream (`EventIDDigest`; 0: unknown, or an event had no id).
    var lastAppendBatch: UInt64 = .max
    var lastAppendFirstVersion: UInt64 = 0
    var lastAppendCount: UInt32 = 0
    var lastAppendRecordCount: UInt32 = 0
    var lastAppendIDDigest: UInt64 = 0
    /// The stream's limits (`StreamLimits`, set by a `$limits` marker; 0: none).
    var maxAgeMicroseconds: UInt64 = 0
    var maxCount: UInt64 = 0

    init(name: String, hash: UInt64) {
        self.name = name
        self.hash = hash
    }

    /// A stream's state as a stream table run keeps it.
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
        lastAppendRecordCount = row.lastAppendRecordCount
        lastAppendIDDigest = row.lastAppendIDDigest
        maxAgeMicroseconds = row.maxAgeMicroseconds
        maxCount = row.maxCount
    }

    /// What a stream table run keeps of this state.
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
        row.lastAppendRecordCount = lastAppendRecordCount
        row.lastAppendIDDigest = lastAppendIDDigest
        row.maxAgeMicroseconds = maxAgeMicroseconds
        row.maxCount = maxCount
        return row
    }

    /// Bytes a state takes in memory, about: the value, its name's storage
    /// when not inline, and its hash slot (counted against `LogOptions.streamMemoryBytes`).
    var memoryBytes: Int { MemoryLayout<StreamState>.stride + (name.utf8.count > 15 ? name.utf8.count + 16 : 0) + 32 }

    /// The version of the last event, nil when none was ever written.
    var currentVersion: UInt64? { nextVersion == 0 ? nil : nextVersion - 1 }

    /// The version an expectation is checked against, of a state with these
    /// fields: a soft-deleted stream counts as having no events.
    @inline(__always) static func versionForExpectations(nextVersion: UInt64, deletion: StreamDeletion) -> UInt64? {
        deletion == .soft || nextVersion == 0 ? nil : nextVersion - 1
    }

    /// The lowest version a stream read returns, age left aside: the
    /// truncate-before, or with a max count the first of the last
    /// `maxCount` versions when that is higher.
    var readableFrom: UInt64 {
        guard maxCount > 0, nextVersion > maxCount else { return truncateBefore }
        return max(truncateBefore, nextVersion - maxCount)
    }

    /// Events older than this (a timestamp) are hidden from stream reads
    /// (`.min` when the stream has no max age): `now` minus the max age.
    func ageFloor(now: Timestamp) -> Timestamp {
        guard maxAgeMicroseconds > 0 else { return .min }
        let age = Timestamp(clamping: maxAgeMicroseconds)
        return now >= Timestamp.min + age ? now - age : .min
    }

    var limits: StreamLimits {
        StreamLimits(maxAgeMicroseconds: maxAgeMicroseconds, maxCount: maxCount)
    }

    /// The stream's info; with a max age, `count` and the first position
    /// are the versions' (`Streams.info(of:)` reads the stream to leave
    /// out the events the age hides).
    func info() -> StreamInfo {
        let readableFrom = readableFrom
        let count = nextVersion > readableFrom ? nextVersion - readableFrom : 0
        return StreamInfo(
            name: name, currentVersion: currentVersion, count: deletion == .none ? count : 0,
            firstPosition: count > 0 && deletion == .none ? firstPosition : nil, lastPosition: lastPosition,
            deletion: deletion, truncateBefore: truncateBefore, limits: limits)
    }
}

extension StreamState {
    /// What a marker does to the stream.
    mutating func apply(_ marker: StreamMarker) {
        switch marker {
        case .delete(let hard):
            deletion = hard ? .hard : .soft
            truncateBefore = max(truncateBefore, nextVersion)
        case .truncate(let before):
            truncateBefore = max(truncateBefore, before)
        case .limits(let maxAge, let maxCount):
            maxAgeMicroseconds = maxAge
            self.maxCount = maxCount
        }
    }
}
