import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes a new log's files from records given with their positions,
/// timestamps and versions (`LogImporter`, `eventlog import`): the log
/// metadata, start and settings, then segment files holding the batches as
/// given, each at the position it names. Positions may leave gaps, as
/// scavenging leaves them (Format.md §4.1): a segment whose batches leave a
/// gap, or that ends before the next one starts, is written as a
/// **rewritten segment** (its header declares its end), the only kind that
/// may hold one; every other segment is an ordinary one, and the last is
/// always ordinary (the active segment), empty when the log ends after a gap.
///
/// The segment being filled is kept in memory (at most about
/// `segmentBytes`): its header, which declares the end when it has a gap,
/// must be known before its first frame is chained to it. Frames carry no
/// synced lag (no claim, §5). Index files, stream index files and the stream
/// table are left to the open that follows (`Log.open` rebuilds missing ones
/// from the segments), except the run the caller may write.
///
/// For an encrypted log (`ring`), every event is sealed as a writer seals
/// it (Format.md §5.1: each batch with events is a sealed batch, under the
/// data keys of its events' scopes, which the key ring creates and syncs
/// before the batch is written); an event the export calls forgotten is
/// sealed under a key the key store records as forgotten
/// (`KeyRing.shreddedKey()`), so it reads as forgotten again. Stream
/// markers are not sealed.
///
/// One owner, not thread-safe. Nothing here checks the records' streams
/// against each other: the caller gives versions as they are to be stored.
struct LogImportWriter: ~Copyable {
    let directory: DirectoryOperations
    let logID: [UInt8]
    let segmentBytes: Int
    let compression: Compression
    /// The LZ4 unit size of a segment's first batch (`LogOptions.compressionUnitBytes`).
    let unitBytes: Int
    /// The LZ4 unit size of the batches after it, compressed against the
    /// segment's dictionary (`LogOptions.dictionaryUnitBytes`, Format.md
    /// §5.4); 0: every batch in units of `unitBytes`, alone.
    let dictionaryUnitBytes: Int
    /// An encrypted log's key ring: events are sealed under its data keys; nil for a plain log.
    let ring: KeyRing?
    let createdAt: Timestamp

    /// The base of the segment being filled: the end of the one before (the log start for the first).
    private(set) var segmentBase: UInt64
    /// Where the next batch may start: after the last batch given (the log start first).
    private(set) var end: UInt64
    /// The batches of the segment being filled: their records areas back to back in `areas`.
    private var batches: [PendingBatch] = []
    private var areas = ByteBuffer(capacity: 0)
    /// The batch being built: its records from `batchStart` in `areas`.
    private var open: PendingBatch?
    /// The open batch's sealer (an encrypted log's).
    private var sealer: BatchSealer?
    /// The key forgotten events are sealed under (made with the first of them).
    private var shredded: (id: UInt32, key: SymmetricKey)?
    private(set) var segmentsWritten = 0
    private(set) var bytesWritten = 0

    struct PendingBatch {
        var basePosition: UInt64
        var firstTimestamp: Timestamp
        var maxTimestamp: Timestamp = .min
        var recordCount: UInt32 = 0
        var areaStart: Int
        var areaEnd: Int
        /// Its records are sealed (Format.md §5.1).
        var isSealed = false
    }

    init(
        directory: DirectoryOperations, logID: [UInt8], startPosition: UInt64, segmentBytes: Int, compression: Compression,
        unitBytes: Int, dictionaryUnitBytes: Int, ring: KeyRing? = nil
    ) {
        self.directory = directory
        self.ring = ring
        self.unitBytes = unitBytes
        self.dictionaryUnitBytes = dictionaryUnitBytes
        self.logID = logID
        self.segmentBytes = segmentBytes
        self.compression = compression
        self.segmentBase = startPosition
        self.end = startPosition
        self.createdAt = currentTimestamp()
    }

    // MARK: Batches

    /// Starts a batch at `basePosition` (at or after `end`: a gap is allowed)
    /// whose records store their timestamps relative to `firstTimestamp`.
    mutating func beginBatch(at basePosition: UInt64, firstTimestamp: Timestamp) throws(EventLogError) {
        guard open == nil else { throw .invalidArgument("a batch is already open (end it first)") }
        guard basePosition >= end else {
            throw .invalidArgument("a batch at position \(basePosition) is below the log's end \(end): positions only grow")
        }
        open = PendingBatch(basePosition: basePosition, firstTimestamp: firstTimestamp, areaStart: areas.count, areaEnd: areas.count)
        sealer = ring.map { BatchSealer(ring: $0) }
    }

    /// The position the next record of the open batch gets.
    var nextPosition: UInt64? { open.map { $0.basePosition &+ UInt64($0.recordCount) } }

    /// Encodes one record into the open batch (its position is the next one):
    /// sealed, in an encrypted log, unless it is a stream marker; a
    /// forgotten event (no data, no metadata) sealed under the forgotten
    /// key. The caller checked the names, the key, the type and the marker
    /// (`Record`'s rules, Format.md §6).
    mutating func appendRecord(
        timestamp: Timestamp, version: UInt64, isMarker: Bool, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
        metadata: EventMetadata?, data: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer?, isTombstone: Bool,
        isForgotten: Bool = false
    ) throws(EventLogError) {
        guard var batch = open else { throw .invalidArgument("no batch is open for a record") }
        guard Int(batch.recordCount) < Limits.maxBatchRecords else {
            throw .limitExceeded(limit: "events in a batch", value: Int(batch.recordCount) + 1, maximum: Limits.maxBatchRecords)
        }
        var metadataLength = 0
        var stored: EventMetadata?
        if let metadata, !metadata.isEmpty {
            metadataLength = try MetadataCoding.encodedLength(metadata)
            stored = metadata
        }
        let sealed = sealer != nil && !isMarker
        let bound = try Record.checkedBound(
            streamBytes: stream.count, typeBytes: type.count, metadataLength: metadataLength, dataBytes: data.count, keyBytes: key?.count)
            + (sealed ? BatchSealer.recordBoundExtra : 0)
        guard BatchHeader.size + (batch.areaEnd - batch.areaStart) + bound <= Limits.maxBatchBytes else {
            throw .limitExceeded(limit: "batch bytes", value: BatchHeader.size + batch.areaEnd - batch.areaStart + bound, maximum: Limits.maxBatchBytes)
        }
        let position = batch.basePosition &+ UInt64(batch.recordCount)
        let forgottenKey = sealed && isForgotten ? try self.forgottenKey() : nil
        if sealed, var sealing = sealer.take() {
            let group = forgottenKey.map { sealing.forgottenGroup(under: $0) } ?? sealing.group(forStream: stream)
            let parts = Record.encodeSealed(
                into: &areas, firstTimestamp: batch.firstTimestamp, timestamp: timestamp, version: version, stream: stream,
                type: type, metadata: stored, metadataLength: metadataLength, data: data, key: key, isTombstone: isTombstone,
                group: group)
            sealing.add(parts, position: position, group: group)
            sealer = sealing
            batch.isSealed = true
        } else {
            Record.encode(
                into: &areas, position: position, firstTimestamp: batch.firstTimestamp,
                timestamp: timestamp, version: version, isMarker: isMarker, stream: stream, type: type, metadata: stored,
                metadataLength: metadataLength, data: data, key: key, isTombstone: isTombstone)
        }
        batch.recordCount += 1
        batch.maxTimestamp = max(batch.maxTimestamp, timestamp)
        batch.areaEnd = areas.count
        open = batch
    }

    /// The key forgotten events are sealed under: made (and recorded as
    /// forgotten in the key store) for the first of them, then the same.
    private mutating func forgottenKey() throws(EventLogError) -> (id: UInt32, key: SymmetricKey) {
        if let shredded { return shredded }
        guard let ring else { throw .invalidArgument("a plain log seals nothing") }
        let key = try ring.shreddedKey()
        shredded = key
        return key
    }

    /// Ends the open batch: it joins the segment being filled, or, when it
    /// does not fit there, starts the next segment (the full one is written).
    mutating func endBatch() throws(EventLogError) {
        guard var batch = open else { throw .invalidArgument("no batch is open") }
        open = nil
        guard batch.recordCount > 0 else { throw .invalidArgument("a batch holds no record (a batch holds 1 or more)") }
        if batch.isSealed, var sealing = sealer.take() {
            // Data keys it needs and does not have yet are created and synced here, before the batch is written.
            try sealing.seal(&areas, basePosition: batch.basePosition, recordCount: batch.recordCount, firstTimestamp: batch.firstTimestamp)
            batch.areaEnd = areas.count
            guard BatchHeader.size + batch.areaEnd - batch.areaStart <= Limits.maxBatchBytes else {
                throw .limitExceeded(limit: "batch bytes", value: BatchHeader.size + batch.areaEnd - batch.areaStart, maximum: Limits.maxBatchBytes)
            }
        }
        sealer = nil
        let frameBound = BatchHeader.size + batch.areaEnd - batch.areaStart
        let filled = SegmentHeader.size + BatchHeader.size * batches.count + areas.count - (batch.areaEnd - batch.areaStart)
        // Positions within a segment are u32 relative to its base (Format.md §9).
        let tooFar = batch.basePosition &+ UInt64(batch.recordCount) &- segmentBase > UInt64(UInt32.max)
        // A full segment ends where this batch starts (a gap before it is the full one's);
        // so does a gap of more than 2³² − 1 positions at a segment's start (an empty rewritten segment covers it).
        let startsNewSegment = batches.isEmpty
            ? batch.basePosition &- segmentBase > UInt64(UInt32.max)
            : filled + frameBound > segmentBytes || tooFar
        if startsNewSegment {
            let area = Array(UnsafeRawBufferPointer(start: areas.base + batch.areaStart, count: batch.areaEnd - batch.areaStart))
            areas.count = batch.areaStart
            try writeSegment(endingAt: batch.basePosition, active: false)
            var moved = batch
            moved.areaStart = areas.count
            area.withUnsafeBytes { areas.append($0) }
            moved.areaEnd = areas.count
            batches.append(moved)
        } else {
            batches.append(batch)
        }
        end = batch.basePosition &+ UInt64(batch.recordCount)
    }

    /// Writes what is left: the segment being filled, ending at `endPosition`
    /// (at or after the last batch's end), and, when it had to declare its
    /// end (a gap), an empty active segment at `endPosition`. Syncs every file and the directory.
    mutating func finish(endPosition: UInt64) throws(EventLogError) {
        guard open == nil else { throw .invalidArgument("the last batch was not ended") }
        guard endPosition >= end else {
            throw .invalidArgument("the end position \(endPosition) is below the last record's position \(end - 1)")
        }
        if batches.isEmpty && segmentBase == endPosition {
            // Nothing since the last segment: the open that follows creates the active segment at the end.
            if segmentsWritten > 0 || endPosition > 0 { try writeEmptyActive(at: endPosition) }
        } else {
            let declares = try writeSegment(endingAt: endPosition, active: true)
            if declares { try writeEmptyActive(at: endPosition) }
        }
        do { try directory.sync() } catch { throw .io(error) }
    }

    // MARK: Segment files

    /// Writes the segment being filled as a file covering `[segmentBase, endPosition)`.
    /// Returns true when it declares its end (a rewritten segment: it has a
    /// gap, or its last batch ends before `endPosition`); then, with
    /// `active`, the caller adds an empty active segment after it.
    @discardableResult
    private mutating func writeSegment(endingAt endPosition: UInt64, active: Bool) throws(EventLogError) -> Bool {
        var expected = segmentBase
        var hasGap = false
        for batch in batches {
            if batch.basePosition != expected { hasGap = true }
            expected = batch.basePosition &+ UInt64(batch.recordCount)
        }
        if expected != endPosition { hasGap = true }
        let header = SegmentHeader(
            logID: logID, basePosition: segmentBase, createdAt: createdAt, declaredEnd: hasGap ? endPosition : nil)
        let name = FileNames.segment(segmentBase)
        do throws(IOError) {
            let file = try FileHandle.open(directory.file(name), create: directory.modes, faults: directory.faults)
            try file.setLength(0)
            var pending = ByteBuffer(capacity: 1 << 20)
            var written = 0
            func flush(_ pending: inout ByteBuffer) throws(IOError) {
                guard pending.count > 0 else { return }
                try file.write(UnsafeRawBufferPointer(start: pending.base, count: pending.count), at: Int64(written))
                try file.startWriteback(at: Int64(written), length: Int64(pending.count))
                written += pending.count
                pending.count = 0
            }
            header.encode().withUnsafeBytes { pending.append($0) }
            var previousCRC = header.checksum
            // The segment's dictionary (Format.md §5.4): its first batch's
            // records give it, as a writer's do; the batches after it are
            // compressed against it.
            var dictionary: LZ4DictionaryCompressor?
            for (i, batch) in batches.enumerated() {
                let records = UnsafeRawBufferPointer(start: areas.base + batch.areaStart, count: batch.areaEnd - batch.areaStart)
                previousCRC = emit(batch, records: records, previousCRC: previousCRC, dictionary: dictionary, into: &pending)
                // A sealed first batch gives no dictionary (Format.md §5.4).
                if i == 0, compression == .lz4, dictionaryUnitBytes > 0, !batch.isSealed {
                    dictionary = LZ4DictionaryCompressor(records: records)
                }
                if pending.count >= 1 << 20 { try flush(&pending) }
            }
            try flush(&pending)
            bytesWritten += written
            if active && !hasGap && written < segmentBytes {
                // The active segment keeps its sparse capacity, as a writer creates it (Format.md §4).
                try file.setLength(Int64(segmentBytes))
            }
            try file.datasync()
        } catch {
            throw .io(error)
        }
        segmentsWritten += 1
        segmentBase = endPosition
        batches.removeAll(keepingCapacity: true)
        areas.count = 0
        return hasGap
    }

    /// An active segment holding no batch, at `base`: a header, synced, and sparse capacity.
    private mutating func writeEmptyActive(at base: UInt64) throws(EventLogError) {
        let header = SegmentHeader(logID: logID, basePosition: base, createdAt: createdAt)
        do throws(IOError) {
            let file = try FileHandle.open(directory.file(FileNames.segment(base)), create: directory.modes, faults: directory.faults)
            try file.setLength(0)
            try file.write(header.encode(), at: 0)
            try file.setLength(Int64(segmentBytes))
            try file.datasync()
        } catch {
            throw .io(error)
        }
        segmentsWritten += 1
        bytesWritten += SegmentHeader.size
        segmentBase = base
    }

    /// Appends `batch`'s frame to `out` (compressed when the log compresses
    /// and LZ4 saves at least 1/16, Format.md §5: against `dictionary` when
    /// there is one, §5.4), made in place: its records copied once; returns its CRC.
    private mutating func emit(
        _ batch: PendingBatch, records: UnsafeRawBufferPointer, previousCRC: UInt32, dictionary: LZ4DictionaryCompressor?,
        into out: inout ByteBuffer
    ) -> UInt32 {
        var made = BatchHeader(
            length: 0, crc: 0, basePosition: batch.basePosition, firstTimestamp: batch.firstTimestamp,
            maxTimestamp: batch.maxTimestamp, recordCount: batch.recordCount, previousCRC: previousCRC,
            recordsLength: UInt32(records.count), attributes: 0, syncedLag: 0)
        // A sealed batch's units are compressed alone: its bytes are ciphertext (Format.md §5.4).
        let start = out.count
        out.reserve(BatchHeader.size + records.count)
        out.count = start + BatchHeader.size
        if compression == .lz4, let codec = LZ4Units.compress(
            records, recordCount: Int(batch.recordCount), appendingTo: &out, unitBytes: unitBytes,
            dictionaryUnitBytes: dictionaryUnitBytes, against: batch.isSealed ? nil : dictionary) {
            made.attributes = codec
        } else {
            out.append(records)
        }
        if batch.isSealed { made.attributes |= BatchHeader.sealedFlag }
        let frameBase = out.base + start
        let frameCount = out.count - start
        made.length = UInt32(frameCount)
        made.store(frameBase)
        made.crc = BatchHeader.frameChecksum(frameBase, count: frameCount)
        made.store(frameBase)
        return made.crc
    }
}
