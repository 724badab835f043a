/// Writes a copy of a sealed segment without the records a caller rejects:
/// the file behind scavenging (Format.md §4, "Rewritten segments").
///
/// The copy is a **rewritten segment**: its header declares the segment's
/// end position, so the positions it covers stay the original's whatever
/// survives; each run of consecutive surviving records of a batch becomes
/// one batch, with the original batch's first timestamp, so every record is
/// copied byte for byte and keeps its own checksum (which is seeded with its
/// position and that timestamp). A compressed batch's survivors are
/// compressed again by the writer's rule (stored compressed only when LZ4
/// saves at least 1/16). Every frame read is verified whole first.
///
/// The caller names the new file, renames it over the segment and owns
/// everything after (Maintenance); this type only writes and syncs it.
enum SegmentRewriter {
    struct Outcome: Sendable, Equatable {
        /// Records copied and records left out (markers are never left out by the caller's rule, but counted the same).
        var keptRecords = 0
        var removedRecords = 0
        /// The data end (bytes of header and batches) of the old and the new file.
        var bytesBefore = 0
        var bytesAfter = SegmentHeader.size
    }

    /// Writes the copy of `segment` (sealed, published up to its data end)
    /// to `path`, keeping the records for which `keep` returns true, then
    /// fdatasyncs it. The file is created (replacing a leftover) with
    /// exactly the length of its data. With no `path`, writes nothing and
    /// only counts (the records `keep` rejects, and their bytes). Every
    /// frame is verified whole (its checksum) before its records are read.
    /// Throws `corruption` for a damaged frame or record of `segment`, `io`
    /// for a failed write, and what `keep` throws.
    ///
    /// `kept`, when given, learns where each kept record went, in order, as
    /// its frame is written: the frame's offset in the new file, and the
    /// record's own offset there when the frame is stored uncompressed (nil
    /// when compressed) — what a scan of the new file would find, so the
    /// caller can index it without reading it again.
    static func rewrite(
        _ segment: Segment, logID: [UInt8], to path: String?, modes: CreateModes, faults: StorageFaults?,
        paces: @escaping () -> Bool, unitBytes: Int = LZ4Units.targetBytes, dictionaryUnitBytes: Int = 0, kept: ((RecordHead, _ frameOffset: Int, _ recordOffset: Int?) throws -> Void)? = nil,
        keep: (RecordHead) throws -> Bool
    ) throws -> Outcome {
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd), bytes.count >= SegmentHeader.size else {
            throw EventLogError.corruption(file: segment.path, offset: 0, reason: "segment is shorter than its published data")
        }
        let old = try SegmentHeader.decode(
            UnsafeRawBufferPointer(rebasing: bytes[0..<SegmentHeader.size]), file: segment.path, logID: logID,
            expectedBase: segment.basePosition)
        let header = SegmentHeader(
            logID: logID, basePosition: segment.basePosition, createdAt: old.createdAt, declaredEnd: segment.endPosition)
        var output = Output(
            path: path, modes: modes, faults: faults, paces: paces, unitBytes: unitBytes, dictionaryUnitBytes: dictionaryUnitBytes,
            previousCRC: header.checksum)
        if path != nil { try output.open() }
        var outcome = Outcome(bytesBefore: segment.dataEnd)
        try output.append(header.encode())

        var scratch = ByteBuffer(capacity: 0)  // a compressed batch's records, decompressed
        var stage = LZ4DictionaryStage()  // the segment's dictionary copied, for its codec 3 batches
        // With `kept`: the current run's records (their start in the area, their heads).
        var runHeads: [(start: Int, head: RecordHead)] = []
        /// Writes `run` as a frame and tells `kept` where its records went.
        func emit(_ run: Run, records: UnsafeRawBufferPointer, of batch: BatchHeader, types: TypeTable = .none) throws {
            let frame = try output.emit(run, records: records, of: batch, types: types)
            guard let kept, let frame else { return }
            for (start, head) in runHeads {
                try kept(head, frame.offset, frame.compressed ? nil : frame.offset + BatchHeader.size + types.length + start - run.start)
            }
            runHeads.removeAll(keepingCapacity: true)
        }
        var offset = SegmentHeader.size
        var expected = segment.basePosition
        var chain = old.checksum
        while offset < segment.dataEnd {
            let check = BatchHeader.check(
                bytes, at: offset, end: segment.dataEnd, previousCRC: chain, expectedBase: expected,
                declaredEnd: segment.declaredEnd, guarded: true)
            let batch = try check.publishedBatch(file: segment.path, offset: offset)
            chain = batch.crc
            expected = batch.endPosition
            let stored = UnsafeRawBufferPointer(rebasing: bytes[(offset + BatchHeader.size)..<(offset + Int(batch.length))])
            let area: UnsafeRawBufferPointer
            if batch.codecValue == 0 {
                area = stored
            } else {
                let length = Int(batch.recordsLength)
                scratch.count = 0
                scratch.reserve(length)
                // Codec 3: against this segment's dictionary; the copy is
                // compressed again on its own (codec 2), as the new file
                // may start with another first batch (Format.md §5.4).
                let dictionary = batch.usesSegmentDictionary ? try segment.lz4Dictionary(forBatchAt: offset) : nil
                do { try LZ4Units.decompress(stored, of: batch, into: scratch.base, dictionary: dictionary, stage: &stage) } catch {
                    throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: error.reason)
                }
                scratch.count = length
                area = scratch.bytes
            }

            if batch.isSealed {
                // A sealed batch stays whole, or goes whole: its seal groups
                // cover all its payloads (Format.md §4.1, §5.1).
                try rewriteSealed(batch, area: area, at: offset, file: segment.path, outcome: &outcome, keep: keep) { heads in
                    var run = Run(start: 0, base: batch.basePosition)
                    run.count = batch.recordCount
                    run.maxTimestamp = batch.maxTimestamp
                    runHeads = heads
                    try emit(run, records: area, of: batch)
                }
                offset += Int(batch.length)
                continue
            }

            // Runs of consecutive kept records: area[run.start..<at], from
            // position run.base. A batch's type table goes with each of its
            // runs, whole (Format.md §5.3).
            let types: TypeTable
            do { types = try TypeTable.read(area, of: batch, guarded: false) } catch {
                throw EventLogError.corruption(file: segment.path, offset: Int64(offset + BatchHeader.size), reason: error.reason)
            }
            var run = Run(start: types.length, base: batch.basePosition)
            var at = types.length
            var position = batch.basePosition
            while position < batch.endPosition {
                let recordStart = at
                var view: RecordHead
                do {
                    view = try Record.head(area, at: &at, firstTimestamp: batch.firstTimestamp)
                    view.position = position
                } catch {
                    let place = batch.codecValue == 0 ? offset + BatchHeader.size + error.offset : offset
                    throw EventLogError.corruption(file: segment.path, offset: Int64(place), reason: error.reason)
                }
                if try keep(view) {
                    if run.count == 0 { run = Run(start: recordStart, base: position) }
                    run.count += 1
                    run.maxTimestamp = max(run.maxTimestamp, view.timestamp)
                    outcome.keptRecords += 1
                    if kept != nil { runHeads.append((recordStart, view)) }
                } else {
                    try emit(run, records: UnsafeRawBufferPointer(rebasing: area[run.start..<recordStart]), of: batch, types: types)
                    run.count = 0
                    outcome.removedRecords += 1
                }
                position += 1
            }
            try emit(run, records: UnsafeRawBufferPointer(rebasing: area[run.start..<at]), of: batch, types: types)
            offset += Int(batch.length)
        }
        outcome.bytesAfter = output.written
        if path != nil { try output.finish() }
        return outcome
    }

    /// Decides a sealed batch: its records' heads (with the key id of each
    /// sealed one's seal group) go to `keep`; when it keeps any, the whole
    /// batch is kept (`emitWhole` with every head), else it is left out.
    private static func rewriteSealed(
        _ batch: BatchHeader, area: UnsafeRawBufferPointer, at offset: Int, file: String, outcome: inout Outcome,
        keep: (RecordHead) throws -> Bool, emitWhole: ([(start: Int, head: RecordHead)]) throws -> Void
    ) throws {
        guard let table = SealTable(area: area) else {
            throw EventLogError.corruption(file: file, offset: Int64(offset), reason: "sealed batch has no seal table")
        }
        var heads: [(start: Int, head: RecordHead)] = []
        var anyKept = false
        var at = 0
        var position = batch.basePosition
        while position < batch.endPosition {
            let start = at
            var head: RecordHead
            do {
                head = try Record.head(UnsafeRawBufferPointer(rebasing: area[0..<table.recordsEnd]), at: &at, firstTimestamp: batch.firstTimestamp)
            } catch {
                throw EventLogError.corruption(file: file, offset: Int64(offset), reason: error.reason)
            }
            head.position = position
            if let group = head.sealGroup {
                guard Int(group) < table.count else {
                    throw EventLogError.corruption(file: file, offset: Int64(offset), reason: "a record names a seal group the seal table does not have")
                }
                head.keyID = table.keyID(of: Int(group))
            }
            if try keep(head) { anyKept = true }
            heads.append((start, head))
            position += 1
        }
        if anyKept {
            outcome.keptRecords += heads.count
            try emitWhole(heads)
        } else {
            outcome.removedRecords += heads.count
        }
    }

    /// Consecutive surviving records of one batch.
    private struct Run {
        var start: Int
        var base: UInt64
        var count: UInt32 = 0
        var maxTimestamp = Timestamp.min
    }

    /// The new file (paced: `PacedFileWriter`) and the frames made for it.
    private struct Output: ~Copyable {
        /// Nil: count only, write nothing.
        let path: String?
        let modes: CreateModes
        let faults: StorageFaults?
        let paces: () -> Bool
        /// The LZ4 unit size of the frames it compresses alone (`LogOptions.compressionUnitBytes`).
        let unitBytes: Int
        /// The unit size of the frames it compresses against the new file's
        /// dictionary (`LogOptions.dictionaryUnitBytes`; 0: none).
        let dictionaryUnitBytes: Int
        /// The new file's dictionary (Format.md §5.4): taken from its first
        /// frame once written, when that one is compressed and not sealed.
        var dictionary: LZ4DictionaryCompressor?
        /// The chain: the CRC of the last frame written (the header checksum first).
        var previousCRC: UInt32
        var writer: PacedFileWriter?
        /// The frame being made (its records compressed in place): allocated
        /// on first use, so counting allocates nothing.
        var frame = ByteBuffer(capacity: 0)
        var written = 0

        init(
            path: String?, modes: CreateModes, faults: StorageFaults?, paces: @escaping () -> Bool, unitBytes: Int,
            dictionaryUnitBytes: Int, previousCRC: UInt32
        ) {
            self.path = path
            self.unitBytes = unitBytes
            self.dictionaryUnitBytes = dictionaryUnitBytes
            self.modes = modes
            self.faults = faults
            self.paces = paces
            self.previousCRC = previousCRC
        }

        mutating func open() throws(IOError) {
            guard let path else { return }
            let handle = try FileHandle.open(path, create: modes, faults: faults)
            try handle.setLength(0)
            writer = PacedFileWriter(file: handle, paces: paces)
        }

        /// Where a frame went: its offset in the new file, and whether its records are stored compressed.
        struct Frame {
            var offset: Int
            var compressed: Bool
        }

        /// Writes a frame of `run`'s records (`records`, uncompressed) cut from
        /// `batch`: its positions, the batch's first timestamp, compressed
        /// again when `batch` was and LZ4 saves at least 1/16 (against the
        /// new file's dictionary once its first frame gave one, Format.md
        /// §5.4), after a copy of `batch`'s type table when it has one (the
        /// records' checksums cover their types, so the copy names each as
        /// before). Nothing (nil) for an empty run.
        mutating func emit(_ run: Run, records: UnsafeRawBufferPointer, of batch: BatchHeader, types: TypeTable) throws(IOError) -> Frame? {
            guard run.count > 0 else { return nil }
            let at = written
            guard path != nil else {
                // Counting: the frame's length, as if written.
                written += BatchHeader.size + types.length + records.count
                return Frame(offset: at, compressed: false)
            }
            var made = BatchHeader(
                length: 0, crc: 0, basePosition: run.base, firstTimestamp: batch.firstTimestamp, maxTimestamp: run.maxTimestamp,
                recordCount: run.count, previousCRC: previousCRC, recordsLength: UInt32(types.length + records.count),
                attributes: types.length > 0 ? TypeTable.attribute : 0, syncedLag: 0)
            frame.count = 0
            frame.reserve(BatchHeader.size + types.length + records.count)
            frame.count = BatchHeader.size
            frame.append(types.bytes)
            let first = at == SegmentHeader.size
            let against = batch.isSealed ? nil : dictionary
            if batch.codecValue != 0, let codec = LZ4Units.compress(
                records, recordCount: Int(run.count), appendingTo: &frame, unitBytes: unitBytes,
                dictionaryUnitBytes: dictionaryUnitBytes, against: against) {
                made.attributes = codec
            } else {
                frame.append(records)
            }
            if batch.isSealed { made.attributes |= BatchHeader.sealedFlag }
            // The first frame of a compressed log gives the new file its dictionary.
            if first, batch.codecValue != 0, !batch.isSealed, dictionaryUnitBytes > 0, types.length == 0 {
                dictionary = LZ4DictionaryCompressor(records: records)
            }
            made.length = UInt32(frame.count)
            made.store(frame.base)
            made.crc = BatchHeader.frameChecksum(frame.base, count: frame.count)
            made.store(frame.base)
            try append(frame.bytes)
            previousCRC = made.crc
            return Frame(offset: at, compressed: made.attributes & ~TypeTable.attribute != 0)
        }

        mutating func append(_ bytes: [UInt8]) throws(IOError) {
            written += bytes.count
            bytes.withUnsafeBytes { writer?.buffer.append($0) }
            try writer?.flushIfFull()
        }

        mutating func append(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
            written += bytes.count
            try writer?.append(bytes)
        }

        mutating func finish() throws(IOError) {
            try writer?.finish()
        }
    }
}
