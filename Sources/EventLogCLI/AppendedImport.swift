import EventLog

/// `eventlog import DIR --append`: the export's events appended after the
/// end of an existing log, each exported batch as one atomic append.
///
/// What an append can keep, it keeps: each event's stream, type, data,
/// timestamp, metadata (event id included), key and tombstone flag, and
/// the batch boundaries. What belongs to the exported log's numbering does
/// not come over: the events get new positions (the log's next ones: no
/// gap), each stream's next versions in this log (the exported versions are
/// not checked: the appends expect nothing), and the header's log id,
/// start, index interval and settings, the stream states, the cursors and
/// the parked events are read, checked and left out. A stream marker
/// (`$deleted`, `$truncated`, `$limits`) is refused: it names versions of
/// the exported stream, which mean other events here.
///
/// An exported batch whose event ids repeat this log's last append to its
/// streams is recognised by the log as a retry of it (Format.md §14.4) and
/// refused (`idempotencyConflict`): it is already here, from an earlier
/// import of the same export. A batch is appended once its last record
/// was read; a failure leaves the batches before it appended and none after.
struct AppendedImport: ImportTarget {
    let log: Log
    /// The events of the open batch.
    private var pending: [NewEvent] = []
    private(set) var batches = 0
    private(set) var events = 0
    /// The log's end before the first append, and after the last.
    let startPosition: UInt64
    private(set) var endPosition: UInt64

    init(log: Log) {
        self.log = log
        startPosition = log.endPosition
        endPosition = startPosition
    }

    mutating func begin(_ header: ExportFormat.Header) throws(EventLogError) {}

    mutating func beginBatch(at position: UInt64, firstTimestamp: Timestamp) throws(EventLogError) {
        pending.removeAll(keepingCapacity: true)
    }

    mutating func appendRecord(
        _ record: ExportReader.Record, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer?
    ) throws(EventLogError) {
        let streamName = try Self.text(stream, "stream name")
        let typeName = try Self.text(type, "event type")
        guard !record.isMarker else {
            throw .invalidArgument(
                "the stream marker \(typeName) of stream \(streamName) cannot be appended: it names versions of the "
                    + "exported stream, which are other events in this log (an import into a new log keeps it)")
        }
        var keyText: String?
        if let key { keyText = try Self.text(key, "key") }
        pending.append(NewEvent(
            stream: streamName, type: typeName, data: Array(data), metadata: record.metadata ?? EventMetadata(),
            timestamp: record.timestamp, key: keyText, isTombstone: record.isTombstone))
    }

    private static func text(_ bytes: UnsafeRawBufferPointer, _ what: String) throws(EventLogError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidArgument("the \(what) is not valid UTF-8") }
        return text
    }

    mutating func endBatch() throws(EventLogError) {
        let result = try library { [log, pending] in try log.append(pending, expecting: [:]) }
        if result.wasRetry {
            throw .idempotencyConflict(
                stream: result.streams.first?.stream ?? pending.first?.stream ?? "",
                reason: "the batch repeats this log's last append to its streams (the same event ids, at positions "
                    + "\(result.positions.lowerBound)..<\(result.positions.upperBound)): it is already in the log, "
                    + "from an earlier import of this export?")
        }
        batches += 1
        events += pending.count
        endPosition = result.positions.upperBound
    }

    mutating func finish(endPosition: UInt64, streams: [StreamSnapshot]?, consumers: ConsumerSnapshot) throws(EventLogError) {
        try library { [log] in try log.sync() }
    }

    /// What went in before a failure, for its message.
    var progress: String {
        batches == 0
            ? "nothing was appended"
            : "\(batches) batch\(batches == 1 ? "" : "es") (\(events) event\(events == 1 ? "" : "s")) went in before it, at positions "
                + "\(startPosition)..<\(endPosition); nothing after it was appended"
    }
}
