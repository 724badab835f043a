import CSystemCalls
/// Builds one batch inside `Log.appendBatch`: each `append` encodes an event
/// straight into the writer's reused buffer, so building a batch allocates
/// nothing per event.
///
/// The events become visible and durable together when the closure returns,
/// or not at all when it throws. It runs under the writer lock: keep it
/// short, and do not call the log from inside it.
///
/// An `append` that throws (a broken limit) leaves the batch exactly as it
/// was: every check runs before anything is encoded, so a caller may catch
/// the error, stop adding, and still commit the events before it.
///
/// Its public methods are declared plain `throws`, like the rest of the
/// public API (README, "Errors"); what they throw is always an
/// `EventLogError`. The library's own callers use the typed twins
/// (`setExpectation`, `appendRecord`, `appendEvent`).
public struct BatchBuilder: ~Copyable {
    var buffer: ByteBuffer
    /// The streams of the batch: versions assigned, expectations to check.
    var streams: BatchStreams
    let table: StreamTable
    /// Position of the first event of the batch.
    public let basePosition: UInt64
    let now: Timestamp
    var firstTimestamp: Timestamp = 0
    var maxTimestamp: Timestamp = .min
    var count: UInt32 = 0
    /// An encrypted log's sealer: events are encoded sealed (Format.md §5.1); nil for a plain log.
    var sealer: BatchSealer?
    /// Events name their type by an index into the batch's type table
    /// (Format.md §5.3): in a log that stores its batches as is (neither
    /// compressed nor encrypted). Markers keep their type in the record.
    let usesTypeTable: Bool
    /// Where the records start in `buffer`: after the header and the room
    /// kept for the type table, as long as the writer's last table (the
    /// types of a log's batches seldom change, so the table usually fits
    /// the room exactly and the records never move).
    let recordsStart: Int
    /// Hands each complete LZ4 unit to the writer's helper thread while the
    /// batch is built (`UnitFeed`); nil when the log does not compress so.
    var unitFeed: UnitFeed?

    init(
        buffer: consuming ByteBuffer, streams: consuming BatchStreams, table: StreamTable, basePosition: UInt64, now: Timestamp,
        sealer: BatchSealer? = nil, usesTypeTable: Bool = false, unitFeed: UnitFeed? = nil
    ) {
        self.sealer = sealer
        self.unitFeed = sealer == nil ? unitFeed : nil
        self.usesTypeTable = usesTypeTable && sealer == nil
        self.buffer = buffer
        self.streams = streams  // reset by the writer after its last batch
        self.table = table
        self.basePosition = basePosition
        self.now = now
        // Room for the header (filled in last) and the type table.
        self.recordsStart = BatchHeader.size + (self.usesTypeTable ? self.streams.lastTableLength : 0)
        self.buffer.count = 0
        self.buffer.reserve(recordsStart)
        self.buffer.count = recordsStart
    }

    /// Expects `stream` to be at `expected` before this batch (optimistic
    /// concurrency). Checked when the batch is committed: a mismatch fails
    /// the whole batch with `wrongExpectedVersion`, and nothing is written.
    /// Expecting a stream twice keeps the second expectation.
    ///
    /// - Throws: `EventLogError.invalidArgument` or `limitExceeded` for a
    ///   stream name that is empty, too long or not UTF-8; the batch is
    ///   left as it was.
    public mutating func expect(_ stream: String, _ expected: ExpectedVersion) throws {
        _ = try setExpectation(stream, expected)
    }

    /// `expect(_:_:)`; true when the stream had no expectation in the batch yet.
    mutating func setExpectation(_ stream: String, _ expected: ExpectedVersion) throws(EventLogError) -> Bool {
        var name = stream
        var result: Result<Bool, EventLogError> = .success(false)
        name.withUTF8 { bytes in
            do throws(EventLogError) {
                try Self.checkStreamName(UnsafeRawBufferPointer(bytes))
                let slot = try streams.slot(for: UnsafeRawBufferPointer(bytes), table: table)
                let first = streams.slots[slot].expectation == nil
                streams.slots[slot].expectation = expected
                result = .success(first)
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    static func checkStreamName(_ stream: UnsafeRawBufferPointer) throws(EventLogError) {
        guard stream.count >= 1, stream.count <= Limits.maxStreamNameBytes else {
            if stream.count == 0 { throw .invalidArgument("stream name is empty") }
            throw .limitExceeded(limit: "stream name bytes", value: stream.count, maximum: Limits.maxStreamNameBytes)
        }
        // Stored as UTF-8 and hashed as given: bytes that are not UTF-8 would
        // be read back (and named in the table) as something else.
        guard isValidUTF8(stream) else { throw .invalidArgument("stream name is not valid UTF-8") }
    }

    /// True when `bytes` are well-formed UTF-8 (no overlong forms, no
    /// surrogates, nothing cut short). Checked in place: no allocation.
    @inline(__always)
    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return true }
        var iterator = bytes.makeIterator()
        var decoder = Unicode.UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// Starts loading the states of the streams the next `count` appends
    /// will go to (`name(i)` gives the i-th one's name), all at once.
    ///
    /// Optional, and changes nothing in the batch: with many streams in the
    /// log, each append otherwise waits on memory twice (its stream's hash
    /// slot, then its state), one stream after another; asked for ahead,
    /// those waits overlap. The names are hashed here once: the next
    /// `count` appends, in the same order, use those hashes instead of
    /// hashing again (appends in another order, or to other streams, are
    /// as correct, and only as fast as without a prefetch). `Log.append(_:)`
    /// of an array does it itself; worth it in `appendBatch` for batches of
    /// tens of events or more over thousands of streams.
    ///
    ///     // `events`: the application's events as borrowed bytes
    ///     // (`stream`, `type`, `data`: `UnsafeRawBufferPointer`s).
    ///     try log.appendBatch { batch in
    ///         batch.prefetchStreams(count: events.count) { events[$0].stream }
    ///         for event in events { try batch.append(stream: event.stream, type: event.type, data: event.data) }
    ///     }
    public mutating func prefetchStreams(count: Int, _ name: (Int) -> UnsafeRawBufferPointer) {
        let table = self.table
        // The names themselves first: hashing them then waits on none.
        for i in 0..<max(0, count) { if let base = name(i).baseAddress { eventlog_prefetch(base, 1) } }
        streams.prefetch(count: max(0, count), table: table, firstRecord: Int(self.count)) { table.hash(name($0)) }
    }

    /// `prefetchStreams(count:_:)` of the streams of `events`.
    mutating func prefetchStreams(of events: [NewEvent]) {
        guard events.count > 1 else { return }
        let table = self.table
        streams.prefetch(count: events.count, table: table, firstRecord: Int(count)) { table.hash(events[$0].stream) }
    }

    /// The position the next appended event will get.
    public var nextPosition: UInt64 { basePosition &+ UInt64(count) }
    /// Events appended so far.
    public var eventCount: Int { Int(count) }

    /// Appends an event given as borrowed bytes (no copies beyond the encoding).
    /// Its version in its stream is assigned here: the stream's next one.
    /// - Parameters:
    ///   - stream: the stream name's UTF-8 bytes, 1 to `Limits.maxStreamNameBytes`.
    ///   - type: the event type's UTF-8 bytes, at most `Limits.maxTypeBytes`.
    ///   - data: the payload.
    ///   - metadata: its metadata, if any.
    ///   - timestamp: when nil, the time the batch was started.
    ///   - key: the key's UTF-8 bytes for key compaction; nil: the stream name.
    ///   - isTombstone: a tombstone for its key.
    /// - Returns: the event's position.
    /// - Throws: `EventLogError.limitExceeded` for a broken limit;
    ///   `invalidArgument` when the stream name, the key or the type is not
    ///   valid UTF-8 (or the type starts with `$`); `streamDeleted` for a
    ///   hard-deleted stream. The batch is left as it was.
    @discardableResult
    public mutating func append(
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        metadata: EventMetadata? = nil, timestamp: Timestamp? = nil, key: UnsafeRawBufferPointer? = nil, isTombstone: Bool = false
    ) throws -> UInt64 {
        try appendRecord(
            stream: stream, type: type, data: data, metadata: metadata, timestamp: timestamp, marker: nil, key: key,
            isTombstone: isTombstone)
    }

    /// The append of earlier versions of this API, which took the version:
    /// versions are assigned by the log now, and `version` is ignored.
    /// Otherwise `append(stream:type:data:metadata:timestamp:key:isTombstone:)`.
    @available(*, deprecated, message: "versions are assigned by the log; drop the version argument")
    @discardableResult
    public mutating func append(
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        metadata: EventMetadata? = nil, timestamp: Timestamp? = nil, version: UInt64
    ) throws -> UInt64 {
        try appendRecord(stream: stream, type: type, data: data, metadata: metadata, timestamp: timestamp, marker: nil)
    }

    /// Appends a record: an event, or a stream marker (which takes no version).
    mutating func appendRecord(
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        metadata: EventMetadata?, timestamp: Timestamp?, marker: StreamMarker?, key: UnsafeRawBufferPointer? = nil,
        isTombstone: Bool = false
    ) throws(EventLogError) -> UInt64 {
        try Self.checkStreamName(stream)
        if let key {
            guard key.count >= 1, key.count <= Limits.maxKeyBytes else {
                if key.isEmpty { throw .invalidArgument("an event's key is empty (leave it out: the key is then the stream name)") }
                throw .limitExceeded(limit: "key bytes", value: key.count, maximum: Limits.maxKeyBytes)
            }
            guard Self.isValidUTF8(key) else { throw .invalidArgument("an event's key is not valid UTF-8") }
        }
        if marker == nil, type.first == UInt8(ascii: "$") {
            throw .invalidArgument("event types starting with $ are reserved for stream markers")
        }
        guard type.count <= Limits.maxTypeBytes else {
            throw .limitExceeded(limit: "event type bytes", value: type.count, maximum: Limits.maxTypeBytes)
        }
        guard Self.isValidUTF8(type) else { throw .invalidArgument("event type is not valid UTF-8") }
        guard Int(count) < Limits.maxBatchRecords else {
            throw .limitExceeded(limit: "events in a batch", value: Int(count) + 1, maximum: Limits.maxBatchRecords)
        }
        var metadataLength = 0
        var storedMetadata: EventMetadata? = nil
        if let metadata, !metadata.isEmpty {
            metadataLength = try MetadataCoding.encodedLength(metadata)
            storedMetadata = metadata
        }
        let sealed = sealer != nil && marker == nil
        let indexesType = usesTypeTable && marker == nil
        let recordBound = try Record.checkedBound(
            streamBytes: stream.count, typeBytes: type.count, metadataLength: metadataLength, dataBytes: data.count, keyBytes: key?.count)
            + (sealed ? BatchSealer.recordBoundExtra : 0)
            + (indexesType ? streams.types.encodedLength + TypeTableBuilder.growthBound(type) : 0)
        // (The room kept for the type table is not part of the batch: the table's length is, in the bound.)
        let written = buffer.count - (recordsStart - BatchHeader.size)
        guard written + recordBound <= Limits.maxBatchBytes else {
            throw .limitExceeded(limit: "batch bytes", value: written + recordBound, maximum: Limits.maxBatchBytes)
        }
        let slot = try streams.slot(for: stream, table: table, record: Int(count))
        if streams.slots[slot].deletion == .hard {
            throw .streamDeleted(stream: streams.name(of: slot, table: table))
        }
        // Every check is done: from here on the batch changes.
        let version = streams.slots[slot].nextVersion
        if marker == nil {
            streams.slots[slot].nextVersion += 1
            streams.slots[slot].count += 1
            if let id = metadata?.eventID {
                streams.slots[slot].ids.add(id)
            } else {
                streams.slots[slot].allHaveIDs = false
            }
        }
        streams.items.append(BatchStreams.Item(
            slot: Int32(slot), recordOffset: UInt32(buffer.count - recordsStart), version: version,
            eventID: metadata?.eventID, marker: marker))
        let time = timestamp ?? now
        if count == 0 { firstTimestamp = time }
        if time > maxTimestamp { maxTimestamp = time }
        let position = basePosition &+ UInt64(count)
        if sealed, var sealing = sealer.take() {
            let group = sealing.group(forStream: stream)
            let parts = Record.encodeSealed(
                into: &buffer, firstTimestamp: firstTimestamp, timestamp: time, version: version, stream: stream, type: type,
                metadata: storedMetadata, metadataLength: metadataLength, data: data, key: key, isTombstone: isTombstone,
                group: group)
            sealing.add(parts, position: position, group: group)
            sealer = sealing
        } else {
            let typeIndex = indexesType ? streams.types.index(of: type) : nil
            if unitFeed != nil, buffer.count + recordBound > buffer.capacity {
                // The records written so far move: the helper lets go of them first.
                unitFeed?.willMove()
                buffer.reserve(recordBound)
                unitFeed?.moved(to: buffer.base + recordsStart)
            }
            Record.encode(
                into: &buffer, position: position, firstTimestamp: firstTimestamp, timestamp: time, version: version,
                isMarker: marker != nil, stream: stream, type: type, metadata: storedMetadata,
                metadataLength: metadataLength, data: data, key: key, isTombstone: isTombstone,
                typeIndex: typeIndex)
            unitFeed?.recordEncoded(area: buffer.base + recordsStart, length: buffer.count - recordsStart)
        }
        count += 1
        return position
    }

    /// Puts the batch's type table (Format.md §5.3) at the start of its
    /// records area when records name their type by index and the table
    /// makes the batch smaller; true when it did (the frame then sets
    /// attribute bit 4). Else the records get their types back
    /// (`nameTypesInRecords`: a batch of one event, or of types that do not
    /// repeat). Either way the records end up right after the header or
    /// the table, moved only when the room kept for the table (`recordsStart`)
    /// is not its length; the items' record offsets become offsets in the
    /// records area. To call once, when the batch is complete.
    mutating func insertTypeTable() -> Bool {
        let length = streams.types.encodedLength
        let room = recordsStart - BatchHeader.size
        if length > 0 && !streams.types.pays && nameTypesInRecords() { return false }
        if length != room {
            let records = buffer.count - recordsStart
            buffer.reserve(max(0, length - room))
            (buffer.base + BatchHeader.size + length).copyMemory(from: buffer.base + recordsStart, byteCount: records)
            buffer.count = BatchHeader.size + length + records
        }
        for i in streams.items.indices { streams.items[i].recordOffset += UInt32(length) }
        guard length > 0 else { return false }
        streams.types.write(to: buffer.base + BatchHeader.size)
        streams.lastTableLength = length
        return true
    }

    /// Encodes the batch's records again, each naming its type itself
    /// (`Record.appendNamingType`), right after the header: from a copy of
    /// them, with the type table written after the copy to look the types
    /// up in. Sets the items' record offsets. True when done; false (the
    /// records left as they were) if a record did not read back.
    private mutating func nameTypesInRecords() -> Bool {
        let recordsLength = buffer.count - recordsStart
        let tableLength = streams.types.encodedLength
        var copy = streams.recordsCopy
        streams.recordsCopy = []
        defer { streams.recordsCopy = copy }
        copy.removeAll(keepingCapacity: true)
        copy.append(contentsOf: UnsafeRawBufferPointer(start: buffer.base + recordsStart, count: recordsLength))
        copy.append(contentsOf: repeatElement(0, count: tableLength))
        return copy.withUnsafeMutableBytes { copied in
            let base = copied.baseAddress!
            streams.types.write(to: base + recordsLength)
            let table = TypeTable(bytes: UnsafeRawBufferPointer(start: base + recordsLength, count: tableLength), count: streams.types.count)
            let records = UnsafeRawBufferPointer(start: base, count: recordsLength)
            buffer.count = BatchHeader.size
            var at = 0
            for i in 0..<Int(count) {
                let start = buffer.count - BatchHeader.size
                do throws(RecordDefect) {
                    try Record.appendNamingType(
                        records, at: &at, into: &buffer, position: basePosition &+ UInt64(i), firstTimestamp: firstTimestamp,
                        type: table.type)
                } catch {
                    // Not one `encode` wrote: put the records back as they
                    // were, and the offsets of those done (which did read).
                    buffer.count = recordsStart
                    buffer.append(records)
                    var old = 0
                    for j in 0..<i {
                        streams.items[j].recordOffset = UInt32(old)
                        do throws(RecordDefect) { try Record.skip(records, at: &old) } catch { break }
                    }
                    return false
                }
                streams.items[i].recordOffset = UInt32(start)
            }
            return true
        }
    }

    /// Seals the batch's sealed records (`BatchSealer.seal`) when it has
    /// any; true when it did (the frame is then marked sealed).
    mutating func sealIfNeeded() throws(EventLogError) -> Bool {
        guard var sealing = sealer.take(), !sealing.isEmpty else { return false }
        try sealing.seal(&buffer, basePosition: basePosition, recordCount: count, firstTimestamp: firstTimestamp)
        guard buffer.count <= Limits.maxBatchBytes else {
            throw .limitExceeded(limit: "batch bytes", value: buffer.count, maximum: Limits.maxBatchBytes)
        }
        return true
    }

    /// Appends a `NewEvent`: its stream, type, data, metadata, timestamp,
    /// key and tombstone flag, as
    /// `append(stream:type:data:metadata:timestamp:key:isTombstone:)` takes
    /// them (which copies nothing but the encoding).
    ///
    /// - Returns: the event's position.
    /// - Throws: as `append(stream:type:data:metadata:timestamp:key:isTombstone:)`;
    ///   the batch is left as it was.
    @discardableResult
    public mutating func append(_ event: NewEvent) throws -> UInt64 {
        try appendEvent(event)
    }

    /// `append(_:)`, for the library's typed-throws code.
    @discardableResult
    mutating func appendEvent(_ event: NewEvent) throws(EventLogError) -> UInt64 {
        var stream = event.stream
        var type = event.type
        var result: Result<UInt64, EventLogError> = .failure(.closed)
        stream.withUTF8 { streamBytes in
            type.withUTF8 { typeBytes in
                event.data.withUnsafeBytes { data in
                    func append(key: UnsafeRawBufferPointer?) {
                        do throws(EventLogError) {
                            result = .success(try self.appendRecord(
                                stream: UnsafeRawBufferPointer(streamBytes), type: UnsafeRawBufferPointer(typeBytes),
                                data: data, metadata: event.metadata, timestamp: event.timestamp, marker: nil, key: key,
                                isTombstone: event.isTombstone))
                        } catch {
                            result = .failure(error)
                        }
                    }
                    if var key = event.key {
                        key.withUTF8 { append(key: UnsafeRawBufferPointer($0)) }
                    } else {
                        append(key: nil)
                    }
                }
            }
        }
        return try result.get()
    }

    /// Appends a stream marker to the batch.
    mutating func appendMarker(_ marker: StreamMarker, stream: String) throws(EventLogError) {
        var name = stream
        var type = marker.type
        let data = marker.data
        var result: Result<UInt64, EventLogError> = .failure(.closed)
        name.withUTF8 { streamBytes in
            type.withUTF8 { typeBytes in
                data.withUnsafeBytes { dataBytes in
                    do throws(EventLogError) {
                        result = .success(try appendRecord(
                            stream: UnsafeRawBufferPointer(streamBytes), type: UnsafeRawBufferPointer(typeBytes),
                            data: dataBytes, metadata: nil, timestamp: nil, marker: marker))
                    } catch {
                        result = .failure(error)
                    }
                }
            }
        }
        _ = try result.get()
    }

    consuming func finish() -> ByteBuffer { buffer }
}
