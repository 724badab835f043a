import EventLog

/// Where `eventlog import` puts what it reads from an export
/// (`ImportCommand.importLines`, which checks the lines' order and counts
/// and calls these in the export's order): a new log built exactly
/// (`NewLogImport`), or the batches appended to an existing log
/// (`AppendedImport`, `import --append`).
///
/// A thrown `EventLogError` ends the import at the line being read; one by
/// which a stream refuses a write exits with 3, any other with 2.
protocol ImportTarget {
    /// The header line was read (the first line, once).
    mutating func begin(_ header: ExportFormat.Header) throws(EventLogError)
    /// A batch line: its records follow, at consecutive positions from `position`.
    mutating func beginBatch(at position: UInt64, firstTimestamp: Timestamp) throws(EventLogError)
    /// A record of the open batch; `stream`, `type`, `data` and `key` are its bytes.
    mutating func appendRecord(
        _ record: ExportReader.Record, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer?
    ) throws(EventLogError)
    /// The open batch's last record was given.
    mutating func endBatch() throws(EventLogError)
    /// The last line was read and its counts hold: the export is whole.
    /// `streams` is nil for an export without stream states.
    mutating func finish(endPosition: UInt64, streams: [StreamSnapshot]?, consumers: ConsumerSnapshot) throws(EventLogError)
}

/// `eventlog import DIR`: a new log, every record at its exported position
/// (`LogImporter`), created when the header is read.
struct NewLogImport: ImportTarget {
    let directory: String
    var options: LogOptions
    private(set) var importer: LogImporter?

    init(directory: String, options: LogOptions) {
        self.directory = directory
        self.options = options
    }

    mutating func begin(_ header: ExportFormat.Header) throws(EventLogError) {
        options.indexInterval = header.indexInterval
        let options = options
        importer = try library {
            try LogImporter(
                at: directory, logID: header.logID, startPosition: header.startPosition, settings: header.settings, options: options)
        }
    }

    private func opened() throws(EventLogError) -> LogImporter {
        guard let importer else { throw .invalidArgument("no header was read") }
        return importer
    }

    mutating func beginBatch(at position: UInt64, firstTimestamp: Timestamp) throws(EventLogError) {
        let importer = try opened()
        try library { try importer.beginBatch(at: position, firstTimestamp: firstTimestamp) }
    }

    mutating func appendRecord(
        _ record: ExportReader.Record, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        key: UnsafeRawBufferPointer?
    ) throws(EventLogError) {
        let importer = try opened()
        try library {
            try importer.appendRecord(
                stream: stream, type: type, data: data, metadata: record.metadata, timestamp: record.timestamp,
                version: record.version, key: key, isTombstone: record.isTombstone, isMarker: record.isMarker,
                isForgotten: record.isForgotten)
        }
    }

    mutating func endBatch() throws(EventLogError) {
        let importer = try opened()
        try library { try importer.endBatch() }
    }

    mutating func finish(endPosition: UInt64, streams: [StreamSnapshot]?, consumers: ConsumerSnapshot) throws(EventLogError) {
        let importer = try opened()
        try library { try importer.finish(endPosition: endPosition, streams: streams, consumers: consumers) }
    }
}
