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
        return row
    }

    /// Bytes a state takes in memory, about: the value, its name's storage
    /// when not inline, and its hash slot (counted against `LogOptions.streamMemoryBytes`).
    var memoryBytes: Int { MemoryLayout<StreamState>.stride + (name.utf8.count > 15 ? name.utf8.count + 16 : 0) + 32 }

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

extension StreamState {
    /// What a marker does to the stream.
    mutating func apply(_ marker: StreamMarker) {
        switch marker {
        case .delete(let hard):
            deletion = hard ? .hard : .soft
            truncateBefore = max(truncateBefore, nextVersion)
        case .truncate(let before):
            truncateBefore = max(truncateBefore, before)
        }
    }
}
