import struct Foundation.UUID

extension Log {
    /// The state of every stream as the stream table keeps it, sorted by
    /// name: what an export carries so that an import rebuilds the streams
    /// exactly (`LogImporter.finish(endPosition:streams:)`), including what
    /// only the table remembers once retention or scavenging removed the
    /// events. Reads every stream table run whole: time in the number of streams.
    public func streamSnapshots() throws -> [StreamSnapshot] {
        try ImportedStreamTable.snapshots(of: streams.table)
    }

    /// The log's settings and creation parameters an export records: its
    /// index interval (fixed for the life of the log, Format.md §3).
    public var indexInterval: Int { Int(batches.metadata.indexInterval) }

    /// The consumers' durable state as the cursor journal keeps it (Format.md
    /// §15): every cursor with its position and when it was last set, and
    /// every event a consumer group parked, what an export carries so that an
    /// import restores them (`LogImporter.finish(endPosition:streams:consumers:)`).
    /// Cursors that damaged journal records name are left out, with what
    /// they name (their state is unknown); so is everything when the
    /// journal's header is damaged. A read-only log gives what was committed
    /// when it was opened or last refreshed.
    public func consumerSnapshot() -> ConsumerSnapshot {
        let path = consumers.store.path
        return consumers.store.state.withLock { state in
            let damaged = state.damagedCursors
            var snapshot = ConsumerSnapshot()
            snapshot.cursors = state.cursors.filter { damaged[$0.key] == nil }.sorted { $0.key < $1.key }.map {
                ConsumerSnapshot.Cursor(name: $0.key, position: $0.value.position, updatedAt: $0.value.updatedAt)
            }
            for (cursor, events) in state.parked.sorted(by: { $0.key < $1.key }) where damaged[cursor] == nil {
                for (position, deliveries) in events.sorted(by: { $0.key < $1.key }) {
                    snapshot.parked.append(ConsumerSnapshot.Parked(cursor: cursor, position: position, deliveries: deliveries))
                }
            }
            snapshot.damagedCursors = damaged.sorted { $0.key < $1.key }.map {
                DamagedCursor(name: $0.key, file: path, offset: $0.value, positionBeforeDamage: state.cursors[$0.key]?.position)
            }
            snapshot.damagedOffsets = state.damage.map(\.offset)
            return snapshot
        }
    }
}

/// The consumers' durable state of a log (`Log.consumerSnapshot()`): what
/// `eventlog export` writes as `cursor` and `parked` lines and
/// `LogImporter.finish(endPosition:streams:consumers:)` writes back as the
/// new log's cursor journal (Format.md §15).
public struct ConsumerSnapshot: Sendable, Hashable {
    /// A named cursor: the next position its consumer reads, and when it was last set.
    public struct Cursor: Sendable, Hashable {
        /// The cursor's name (a consumer group's: `group:` + the group's name).
        public var name: String
        /// The next position its consumer reads: every event before it is consumed.
        public var position: UInt64
        /// When the cursor was last committed, created or reset (microseconds since 1970).
        public var updatedAt: Timestamp

        /// A cursor as `Log.consumerSnapshot()` reports it, or as an import restores it.
        public init(name: String, position: UInt64, updatedAt: Timestamp) {
            self.name = name
            self.position = position
            self.updatedAt = updatedAt
        }
    }

    /// An event a consumer group parked (a dead letter), under the group's
    /// cursor name (`group:` + the group's name).
    public struct Parked: Sendable, Hashable {
        /// The cursor name of the group that parked it (`group:` + the group's name).
        public var cursor: String
        /// The parked event's position.
        public var position: UInt64
        /// How many times it was handed out before it was parked.
        public var deliveries: UInt32

        /// A parked event as `Log.consumerSnapshot()` reports it, or as an import restores it.
        public init(cursor: String, position: UInt64, deliveries: UInt32) {
            self.cursor = cursor
            self.position = position
            self.deliveries = deliveries
        }
    }

    /// Sorted by name.
    public var cursors: [Cursor] = []
    /// Sorted by cursor name, then position.
    public var parked: [Parked] = []
    /// The cursors damaged journal records name: left out of `cursors` and `parked`.
    public var damagedCursors: [DamagedCursor] = []
    /// Where each damaged region of the journal starts (a damaged header: 0,
    /// and no cursor could be read). Empty for a sound journal.
    public var damagedOffsets: [Int64] = []

    /// A snapshot of these cursors and parked events (give each list in the
    /// order its property states), with no damage.
    public init(cursors: [Cursor] = [], parked: [Parked] = []) {
        self.cursors = cursors
        self.parked = parked
    }
}

/// Builds a new log from records given with everything a log assigns
/// (positions, timestamps, versions, batch boundaries): the library side of
/// `eventlog import`, so that a log moves between machines and format
/// versions exactly (positions, versions, timestamps, event ids, keys,
/// tombstones, stream markers, the gaps scavenging left).
///
///     let importer = try LogImporter(at: path, logID: id, startPosition: 0)
///     try importer.beginBatch(at: 0, firstTimestamp: t)
///     try importer.appendRecord(ImportedRecord(...))
///     try importer.endBatch()
///     try importer.finish(endPosition: 1, streams: snapshots)
///
/// The directory must hold no log (it is created when missing). The
/// importer holds the writer lock from creation to `finish`. Batches come in
/// position order; a batch may start after the end of the one before (a
/// gap: positions scavenging or retention removed), never before it. Files
/// are written straight into the directory: segments as they fill, then at
/// `finish` the last segment, the stream table, the start and settings, and
/// the log metadata last, so a log directory without `eventlog.meta` is an
/// import that did not finish (an open refuses it: remove the directory and
/// import again). `finish` then opens the log once as a writer and closes
/// it, which builds its index files and writes the clean-shutdown marker.
///
/// With `LogOptions.encryption`, the new log is encrypted (Format.md §5.1,
/// §16): its key store is created first, with the scope the options name,
/// and every event is sealed as a writer seals it, under the data keys of
/// its scope (created as they are first needed); events given as forgotten
/// stay forgotten. The master key must be the one the log is opened with.
///
/// One owner, not thread-safe; every call may block on the disk.
public final class LogImporter {
    /// The directory of the log being built.
    public let path: String
    private let directory: DirectoryOperations
    private let options: LogOptions
    private let logIDBytes: [UInt8]
    private let startPosition: UInt64
    private let settings: LogSettings?
    private var writer: LogImportWriter
    private var lock: FileHandle?
    private var finished = false
    /// Batches ended so far (`endBatch()`).
    public private(set) var batchCount = 0
    /// Records (events and stream markers) appended so far.
    public private(set) var recordCount = 0

    /// Starts an import into `path` (created when missing; it must hold no
    /// log: no log metadata and no segment). `options` give the segment size,
    /// the compression of the new batches and the index interval; the log
    /// gets `logID` and starts at `startPosition` (Format.md §3.1), with
    /// `settings` (nil: the defaults, no `eventlog.settings`).
    public init(
        at path: String, logID: UUID, startPosition: UInt64, settings: LogSettings? = nil, options: LogOptions = LogOptions()
    ) throws {
        try options.validate()
        if let settings { try settings.validate() }
        self.path = path
        self.options = options
        self.startPosition = startPosition
        self.settings = settings
        let directory = DirectoryOperations(path: path, faults: options.storageFaults, modes: options.createModes)
        self.directory = directory
        var id = logID.uuid
        let idBytes = withUnsafeBytes(of: &id) { Array($0) }
        logIDBytes = idBytes
        var ring: KeyRing?
        do {
            try DirectoryOperations.createIfMissing(path, modes: directory.modes)
            if let (path, mode) = directory.writableByOthers(among: []) {
                throw EventLogError.insecurePermissions(path: path, mode: UInt32(mode))
            }
            let lock = try Opener.lockForWriting(directory)
            self.lock = lock
            let names = try directory.list()
            if names.contains(FileNames.metadata) || names.contains(where: { FileNames.segmentBase($0) != nil }) {
                throw EventLogError.invalidArgument(
                    "\(path) already holds a log (or an import that did not finish): import creates a new log")
            }
            // An encrypted log's key store comes first (Format.md §16), replacing any an unfinished import left.
            if let encryption = options.encryption {
                ring = try KeyRing.create(in: directory, logID: idBytes, encryption: encryption)
            }
        } catch {
            throw EventLogError.wrapping(error)
        }
        writer = LogImportWriter(
            directory: directory, logID: idBytes, startPosition: startPosition, segmentBytes: options.segmentBytes,
            compression: options.compression, unitBytes: options.compressionUnitBytes, dictionaryUnitBytes: options.dictionaryUnitBytes,
            ring: ring)
    }

    /// Where the next batch may start: after the last batch given (the start position first).
    public var endPosition: UInt64 { writer.end }

    /// Starts a batch at `basePosition` (at or after `endPosition`; after it
    /// leaves a gap) whose first record was stamped `firstTimestamp` (in a
    /// batch scavenging cut, the original first record's, which may precede
    /// every record left: Format.md §5). Its records follow, at consecutive positions.
    public func beginBatch(at basePosition: UInt64, firstTimestamp: Timestamp) throws {
        try checkOpen()
        try writer.beginBatch(at: basePosition, firstTimestamp: firstTimestamp)
    }

    /// The position the next record of the open batch gets (nil: no batch is open).
    public var nextPosition: UInt64? { writer.nextPosition }

    /// Adds a record to the open batch, at its next position: an event
    /// (checked as an append checks it: names, type, key, limits) or, with
    /// `isMarker`, a stream marker (its type and data must be one Format.md
    /// §13.1 defines). Its version is stored as given.
    ///
    /// `isForgotten`: an event whose data key was forgotten in the exported
    /// log (`Event.isForgotten`; it has no data and no metadata). An
    /// encrypted log seals it under a data key its key store records as
    /// forgotten, so it reads as forgotten here too; a plain log stores it
    /// with its data and metadata empty (it cannot mark it forgotten).
    public func appendRecord(
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, metadata: EventMetadata?,
        timestamp: Timestamp, version: UInt64, key: UnsafeRawBufferPointer? = nil, isTombstone: Bool = false, isMarker: Bool = false,
        isForgotten: Bool = false
    ) throws {
        try checkOpen()
        if isForgotten {
            guard !isMarker, data.isEmpty, metadata == nil || metadata?.isEmpty == true else {
                throw EventLogError.invalidArgument("a forgotten event has no data and no metadata, and is not a stream marker")
            }
        }
        try BatchBuilder.checkStreamName(stream)
        if let key {
            guard key.count >= 1, key.count <= Limits.maxKeyBytes else {
                if key.isEmpty { throw EventLogError.invalidArgument("an event's key is empty (leave it out: the key is then the stream name)") }
                throw EventLogError.limitExceeded(limit: "key bytes", value: key.count, maximum: Limits.maxKeyBytes)
            }
            guard BatchBuilder.isValidUTF8(key) else { throw EventLogError.invalidArgument("an event's key is not valid UTF-8") }
        }
        guard type.count <= Limits.maxTypeBytes else {
            throw EventLogError.limitExceeded(limit: "event type bytes", value: type.count, maximum: Limits.maxTypeBytes)
        }
        guard BatchBuilder.isValidUTF8(type) else { throw EventLogError.invalidArgument("event type is not valid UTF-8") }
        if isMarker {
            guard StreamMarker(type: type, data: data) != nil else {
                throw EventLogError.invalidArgument("a stream marker's type and data must be one the format defines ($deleted, $truncated, $limits)")
            }
            guard key == nil, !isTombstone, metadata == nil || metadata?.isEmpty == true else {
                throw EventLogError.invalidArgument("a stream marker has no key, tombstone or metadata")
            }
        } else if type.first == UInt8(ascii: "$") {
            throw EventLogError.invalidArgument("event types starting with $ are reserved for stream markers")
        }
        try writer.appendRecord(
            timestamp: timestamp, version: version, isMarker: isMarker, stream: stream, type: type, metadata: metadata,
            data: data, key: key, isTombstone: isTombstone, isForgotten: isForgotten)
        recordCount += 1
    }

    /// `appendRecord(stream:type:data:metadata:timestamp:version:key:isTombstone:isMarker:isForgotten:)` of an `Event`
    /// (its position must be the open batch's next one; a forgotten event stays forgotten).
    public func appendRecord(_ event: Event, isMarker: Bool = false) throws {
        guard event.position == writer.nextPosition else {
            throw EventLogError.invalidArgument("event at position \(event.position) where the batch's next position is \(writer.nextPosition.map(String.init) ?? "none")")
        }
        var stream = event.stream
        var type = event.type
        let key = event.key
        var result: Result<Void, EventLogError> = .success(())
        stream.withUTF8 { s in
            type.withUTF8 { t in
                event.data.withUnsafeBytes { d in
                    func add(_ k: UnsafeRawBufferPointer?) {
                        do {
                            try appendRecord(
                                stream: UnsafeRawBufferPointer(s), type: UnsafeRawBufferPointer(t), data: d,
                                metadata: isMarker || event.isForgotten ? nil : event.metadata, timestamp: event.timestamp,
                                version: event.version, key: k, isTombstone: event.isTombstone, isMarker: isMarker,
                                isForgotten: event.isForgotten)
                        } catch {
                            result = .failure(.wrapping(error))
                        }
                    }
                    if var key { key.withUTF8 { add(UnsafeRawBufferPointer($0)) } } else { add(nil) }
                }
            }
        }
        try result.get()
    }

    /// Ends the open batch.
    ///
    /// - Throws: `EventLogError.invalidArgument` when no batch is open or the
    ///   batch holds no record; `closed` after `finish`; `io` when a full
    ///   segment cannot be written.
    public func endBatch() throws {
        try checkOpen()
        try writer.endBatch()
        batchCount += 1
    }

    /// Ends the import: the log ends at `endPosition` (at or after the last
    /// record; after it, the positions between were removed). With
    /// `streams`, the stream table is exactly those states (a run from 0 to
    /// the end); without, the open replays the imported records into it
    /// (Format.md §14.3), which knows of no stream before the start. The
    /// cursor journal holds `consumers`' cursors (each at most `endPosition`,
    /// keeping when it was set) and parked events (each below `endPosition`).
    /// Writes and syncs every file, then opens the log as a writer and
    /// closes it (index files, stream index files, clean-shutdown marker).
    public func finish(
        endPosition: UInt64, streams: [StreamSnapshot]?, consumers: ConsumerSnapshot = ConsumerSnapshot()
    ) throws {
        try checkOpen()
        finished = true
        do {
            var rows: [(UInt64, StreamTableRow)] = []
            if let streams { rows = try ImportedStreamTable.rows(streams, hashMask: options.streamHashMask) }
            let journal = try Self.journal(consumers, endPosition: endPosition)
            try writer.finish(endPosition: endPosition)
            if streams != nil, endPosition > 0 {
                try ImportedStreamTable.write(rows, to: endPosition, in: directory)
            } else if streams == nil, startPosition > 0 {
                try ImportedStreamTable.write([], to: startPosition, in: directory)
            }
            try LogStart(startPosition: startPosition, writtenAt: currentTimestamp()).write(in: directory)
            if let settings { try directory.writeAtomically(FileNames.settings, bytes: LogSettingsFile.encode(settings)) }
            // Always, before eventlog.meta: a log with segments has a journal (Format.md §15, "A missing journal").
            let bytes = ConsumerStore.journalBytes(
                cursors: journal?.cursors ?? [:], parked: journal?.parked ?? [:], leaving: [], logID: logIDBytes)
            try directory.writeAtomically(FileNames.cursorJournal, bytes: bytes.bytes)
            let metadata = LogMetadata(
                logID: logIDBytes, createdAt: writer.createdAt, segmentBytes: UInt32(options.segmentBytes),
                indexInterval: UInt32(options.indexInterval), compression: options.compression)
            try directory.writeAtomically(FileNames.metadata, bytes: metadata.encode())
            var openOptions = options
            openOptions.heldWriterLock = lock
            openOptions.maintenanceInterval = nil
            openOptions.createIfMissing = false
            openOptions.readOnly = false
            lock = nil
            let log = try Log.open(at: path, options: openOptions)
            try log.close()
        } catch {
            throw EventLogError.wrapping(error)
        }
    }

    /// The journal's state for `consumers`, checked: names of 1 to 255
    /// bytes, each cursor once, positions within the log. Nil when there
    /// is nothing to write (the journal is written empty).
    private static func journal(
        _ consumers: ConsumerSnapshot, endPosition: UInt64
    ) throws(EventLogError) -> (cursors: [String: ConsumerStore.Cursor], parked: [String: [UInt64: UInt32]])? {
        guard !consumers.cursors.isEmpty || !consumers.parked.isEmpty else { return nil }
        var cursors: [String: ConsumerStore.Cursor] = [:]
        for cursor in consumers.cursors {
            try Consumers.checkCursorName(cursor.name)
            guard cursor.position <= endPosition else {
                throw .invalidArgument("cursor \(cursor.name) at position \(cursor.position) is past the log's end \(endPosition)")
            }
            guard cursors.updateValue(ConsumerStore.Cursor(position: cursor.position, updatedAt: cursor.updatedAt), forKey: cursor.name) == nil
            else { throw .invalidArgument("cursor \(cursor.name) is given twice") }
        }
        var parked: [String: [UInt64: UInt32]] = [:]
        for event in consumers.parked {
            try Consumers.checkCursorName(event.cursor)
            guard event.position < endPosition else {
                throw .invalidArgument("a parked event of \(event.cursor) at position \(event.position) is not below the log's end \(endPosition)")
            }
            guard parked[event.cursor, default: [:]].updateValue(event.deliveries, forKey: event.position) == nil else {
                throw .invalidArgument("the parked event of \(event.cursor) at position \(event.position) is given twice")
            }
        }
        return (cursors, parked)
    }

    private func checkOpen() throws(EventLogError) {
        if finished { throw EventLogError.closed }
    }
}
