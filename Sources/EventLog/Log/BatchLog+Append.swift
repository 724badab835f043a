/// A batch the writer just wrote, as the layer above indexes it (under the
/// writer lock, before readers can see it).
struct WrittenBatch {
    let header: BatchHeader
    /// Where its frame starts in the segment.
    let frameOffset: Int
    /// True when its records area is stored as readers use it (neither
    /// compressed nor sealed): index entries may point at its records.
    let storedAsIs: Bool
    /// The segment it was written to, as it will be published.
    let segment: Segment
}

extension BatchLog {
    /// How many times an appender under `.always` that finds the writer
    /// lock held yields its core and tries again before it sleeps on the
    /// lock (`Mutex.withLock(yieldingUpTo:_:)`). After each group-commit
    /// sync, every appender it covered comes back for the lock at once,
    /// and each holds it a few microseconds; on this machine, waking a
    /// sleeping thread costs tens. Scratch driver (eight threads of single
    /// `.always` appends, as the harness's C8; 6 interleaved runs, medians):
    /// 37.8k appends/s sleeping at once, 42.5k with 200 tries (16: 40.8k);
    /// C2 and C4 unchanged (the lock is rarely contended there), C1 never
    /// contends. The harness (N 100k, 4 interleaved rounds, medians): C8
    /// 36.3k -> 43.2k, 7.4 -> 7.9 appends per sync. Again once the
    /// gathering leader looked too (scratch driver, 6 interleaved runs):
    /// 48.9k with 200 tries, 48.7k with 20, 42.9k sleeping at once. At
    /// most 200 yields of CPU are spent before sleeping.
    static let writerLockYields = 200

    /// The frame of every append: checks that the log can be written, runs
    /// `body` under the writer lock (where it builds and writes at most one
    /// batch with `writeBatch`), and, under `.always`, then waits outside
    /// the lock until the sync covering what `body` wrote is done (shared
    /// with concurrent appenders). `body` returns its result, the writer's
    /// sequence after it, and whether it must wait for durability.
    func commit<R>(
        _ body: (inout WriterState) throws(EventLogError) -> (result: R, sequence: UInt64, wait: Bool)
    ) throws(EventLogError) -> R {
        if options.readOnly { throw .readOnly }
        // In flight from here to the return: a sync's leader gathers for it.
        let gathered = options.durability == .always
        if gathered { groupCommit.enter() }
        defer { if gathered { groupCommit.leave() } }
        let outcome: (result: R, sequence: UInt64, wait: Bool)
        do {
            outcome = try writer.withLock(yieldingUpTo: gathered ? Self.writerLockYields : 0) {
                (state) throws(EventLogError) -> (result: R, sequence: UInt64, wait: Bool) in
                if state.closed { throw .closed }
                if let failure = state.failure ?? groupCommit.failureReason {
                    state.failure = failure
                    throw .writerStopped(reason: failure)
                }
                return try body(&state)
            }
        } catch {
            if gathered { groupCommit.passedWriter() }
            throw error
        }
        if gathered { groupCommit.passedWriter() }
        if options.durability == .always, outcome.wait {
            // A retry waits too: the original append may not be durable yet.
            do { try groupCommit.waitDurable(upTo: outcome.sequence) } catch {
                writer.withLock { $0.failure = $0.failure ?? "\(error)" }
                throw error
            }
        }
        return outcome.result
    }

    /// Compresses, frames, writes, indexes and publishes an encoded batch
    /// (`encoded`: a batch header's room, then the records area, which
    /// starts with a type table when `typeTable`: it is then stored as is,
    /// Format.md §5.3). `index`
    /// is the layer above's part: it runs after the write and before the
    /// batch is published, and must not fail but for a broken invariant
    /// (the writer then stops). Returns the batch's positions and the
    /// writer's sequence after it.
    func writeBatch(
        _ state: inout WriterState, encoded: inout ByteBuffer, count: UInt32,
        firstTimestamp: Timestamp, maxTimestamp: Timestamp, sealed: Bool = false, typeTable: Bool = false,
        index: (WrittenBatch) throws(EventLogError) -> Void
    ) throws(EventLogError) -> (Range<UInt64>, UInt64) {
        let base = state.active.snapshot.endPosition

        // The frame: header + records, compressed when that saves space.
        let recordsLength = encoded.count - BatchHeader.size
        var useCompressed = false
        // Against the active segment's dictionary (Format.md §5.4) when it has one.
        var useDictionary = false
        if options.compression == .lz4 && !typeTable {
            let dictionary = sealed ? nil : activeDictionary(&state)
            useCompressed = compress(records: encoded.bytes, count: Int(count), into: &state.compressBuffer, dictionary: dictionary)
            useDictionary = useCompressed && dictionary != nil
        }
        var frameLength = useCompressed ? state.compressBuffer.count : encoded.count
        guard frameLength <= Limits.maxBatchBytes else {
            throw .limitExceeded(limit: "batch bytes", value: frameLength, maximum: Limits.maxBatchBytes)
        }

        try rollIfNeeded(&state, frameLength: frameLength, events: count)
        if useDictionary && state.active.snapshot.isEmpty {
            // Rolled: the batch is the new segment's first, which gives
            // that segment's dictionary and so cannot use one.
            useCompressed = compress(records: encoded.bytes, count: Int(count), into: &state.compressBuffer, dictionary: nil)
            useDictionary = false
            frameLength = useCompressed ? state.compressBuffer.count : encoded.count
            guard frameLength <= Limits.maxBatchBytes else {
                throw .limitExceeded(limit: "batch bytes", value: frameLength, maximum: Limits.maxBatchBytes)
            }
            try rollIfNeeded(&state, frameLength: frameLength, events: count)
        }

        let offset = state.active.dataEnd
        var header = BatchHeader(
            length: UInt32(frameLength), crc: 0, basePosition: base, firstTimestamp: firstTimestamp,
            maxTimestamp: maxTimestamp, recordCount: count, previousCRC: state.active.snapshot.lastBatchCRC,
            recordsLength: UInt32(recordsLength),
            attributes: (useCompressed ? (useDictionary ? LZ4Units.dictionaryCodec : LZ4Units.codec) : 0)
                | (sealed ? BatchHeader.sealedFlag : 0)
                | (typeTable ? TypeTable.attribute : 0),
            syncedLag: BatchHeader.syncedLag(frameOffset: offset, syncedEnd: state.syncedEnd))
        let frame: UnsafeMutableRawPointer = useCompressed ? state.compressBuffer.base : encoded.base
        header.store(frame)
        header.crc = BatchHeader.frameChecksum(frame, count: frameLength)
        frame.storeLE(header.crc, at: 4)

        // Room first: a full disk fails the append here, before a byte is written.
        try reserve(&state, upTo: offset + frameLength)
        preallocator?.willWrite(upTo: offset + frameLength)
        do {
            try state.active.file.write(UnsafeRawBufferPointer(start: frame, count: frameLength), at: Int64(offset))
        } catch {
            // Nothing was published: the bytes past the data end are not part
            // of the log. They are zeroed again, durably, so that the space
            // past the data end holds zeros, as recovery's rule assumes
            // (Format.md §10). A full disk is not fatal: punching frees space,
            // and appends work again once there is room. If even that fails,
            // what the file holds is unknown: stop.
            do throws(IOError) {
                try state.active.file.zeroRange(at: Int64(offset), length: Int64(frameLength))
                try state.active.file.datasync()
            } catch let cleanup {
                stop(&state, cleanup.description)
            }
            throw .io(error)
        }
        state.writtenSequence &+= UInt64(frameLength)

        var active = state.active.snapshot
        state.active.indexPolicy.add(
            batch: header, at: offset,
            records: header.isStoredAsIs ? UnsafeRawBufferPointer(rebasing: encoded.bytes[BatchHeader.size...]) : nil,
            segmentBase: active.basePosition,
            offsetIndex: active.offsetIndex, timeIndex: active.timeIndex)
        active.offsetIndexCount = active.offsetIndex.writtenCount
        active.timeIndexCount = active.timeIndex.writtenCount
        active.endPosition = header.endPosition
        active.dataEnd = offset + frameLength
        active.lastBatchOffset = offset
        active.lastBatchCRC = header.crc
        if active.firstTimestamp == nil { active.firstTimestamp = firstTimestamp }
        active.maxTimestamp = max(active.maxTimestamp, maxTimestamp)
        do {
            try index(WrittenBatch(header: header, frameOffset: offset, storedAsIs: header.isStoredAsIs, segment: active))
        } catch {
            // Unreachable (rollIfNeeded leaves room); if it happened, the
            // layer above took part of an unpublished batch: stop.
            stop(&state, error.description)
            throw .writerStopped(reason: error.description)
        }
        state.active.snapshot = active
        if options.durability == .always {
            // Readers see the batch once a sync covers it (the sync leader publishes it).
            state.knownDurable = groupCommit.noteWritten(state.writtenSequence, file: state.active.file, publishing: active)
        } else {
            segments.publishWritten(active: active, sequence: state.writtenSequence)
            state.knownDurable = groupCommit.noteWritten(state.writtenSequence, file: state.active.file)
        }

        if active.dataEnd - state.checkpointEnd >= options.checkpointBytes || segments.indexing?.wantsCheckpoint == true {
            segments.scheduleIndexWrite(active, durableAt: state.writtenSequence, commit: groupCommit)
            state.checkpointEnd = active.dataEnd
            if let checkpoint = segments.indexing?.checkpoint(
                covering: active.endPosition, writtenBytes: state.writtenSequence, force: false) {
                segments.scheduleCheckpoint(checkpoint, durableAt: state.writtenSequence, commit: groupCommit)
            }
        }
        if options.durability != .always {
            let pending = active.dataEnd - state.active.writebackStart
            if pending >= BatchLog.writebackChunk {
                // On its own thread: a failure stops the writer from there.
                writeback.start(state.active.file, at: Int64(state.active.writebackStart), length: Int64(pending))
                state.active.writebackStart = active.dataEnd
            }
        }
        return (base..<header.endPosition, state.writtenSequence)
    }

    /// Allocates the active segment's space up to `end` ahead of a write,
    /// `reserveChunk` at a time (`fallocate`): the segment file is sparse, and
    /// a write into a hole that fails for lack of room leaves a torn batch
    /// over pages that were never allocated. Reserved first, a full disk fails
    /// the append before anything is written (and the writer goes on once
    /// there is room). Where the file system cannot reserve, nothing is done.
    private func reserve(_ state: inout WriterState, upTo end: Int) throws(EventLogError) {
        guard options.reservesSpace, end > state.reservedEnd else { return }
        let from = max(state.reservedEnd, state.active.dataEnd)
        let to = min(state.active.capacity, max(end, from + BatchLog.reserveChunk))
        do {
            guard try state.active.file.reserve(at: Int64(from), length: Int64(to - from)) else {
                state.reservedEnd = state.active.capacity
                return
            }
        } catch {
            throw .io(error)
        }
        state.reservedEnd = to
    }

    /// Space reserved ahead of the writer at a time.
    static let reserveChunk = 1 << 20

    /// Bytes written before writeback is started without waiting (`sync_file_range`),
    /// so a later sync finds little left to flush.
    static let writebackChunk = 1 << 20

    /// Compresses the records area of `frame` (after its header, `count`
    /// records) into `output` in LZ4 units (Format.md §5.2), or in units
    /// against `dictionary` (§5.4), leaving room for the header. Returns
    /// false when LZ4 does not make it smaller.
    private func compress(
        records frame: UnsafeRawBufferPointer, count: Int, into output: inout ByteBuffer, dictionary: LZ4DictionaryCompressor?
    ) -> Bool {
        output.count = 0
        output.reserve(BatchHeader.size)
        output.count = BatchHeader.size
        let records = UnsafeRawBufferPointer(rebasing: frame[BatchHeader.size...])
        let unitBytes = dictionary == nil ? options.compressionUnitBytes : options.dictionaryUnitBytes
        if let unitCompressor {
            // The units the builder fed the helper (`UnitFeed`), when they are of these records.
            if let done = unitCompressor.finish(records, recordCount: count, appendingTo: &output, unitBytes: unitBytes, dictionary: dictionary) {
                return done
            }
            return unitCompressor.compress(records, recordCount: count, appendingTo: &output, unitBytes: unitBytes, dictionary: dictionary)
        }
        return LZ4Units.compress(records, recordCount: count, appendingTo: &output, unitBytes: unitBytes, dictionary: dictionary)
    }

    /// A `UnitFeed` for the batch about to be built: when the log
    /// compresses against the active segment's dictionary on two cores
    /// (nil otherwise, and for a sealed log). Its stream ends with the
    /// batch's write (`compress(records:count:into:dictionary:)`), or with
    /// `endUnitFeed`, which every append calls before it reuses the buffer.
    func unitFeed(_ state: inout WriterState) -> UnitFeed? {
        guard options.compression == .lz4, keyRing == nil, let unitCompressor, let dictionary = activeDictionary(&state) else { return nil }
        return UnitFeed(compressor: unitCompressor, unitBytes: options.dictionaryUnitBytes, dictionary: dictionary)
    }

    /// Cancels the units a builder fed the helper and the batch's write did
    /// not take (a build that threw, a batch not written, a retry): the
    /// helper lets go of the buffer before this returns.
    func endUnitFeed() {
        unitCompressor?.cancel()
    }

    /// The active segment's LZ4 dictionary (Format.md §5.4), loaded from its
    /// first batch once per segment; nil for an empty segment, with
    /// `dictionaryUnitBytes` 0, or when its first batch gives none (too
    /// short, or sealed: the batch is then compressed on its own; a first
    /// batch that cannot be read is reported by the reads of it, not here).
    private func activeDictionary(_ state: inout WriterState) -> LZ4DictionaryCompressor? {
        let active = state.active.snapshot
        guard options.dictionaryUnitBytes > 0, !active.isEmpty else { return nil }
        if state.dictionarySegment == active.id { return state.dictionary }
        state.dictionarySegment = active.id
        state.dictionary = (try? active.lz4Dictionary(forBatchAt: nil)).flatMap { LZ4DictionaryCompressor(records: $0.bytes) }
        return state.dictionary
    }

    /// Seals the active segment and starts a new one when the frame does not
    /// fit, the segment is too old, or it would hold more events than a
    /// segment may (Format.md §9, "events in a segment"); grows an empty
    /// segment that is too small.
    private func rollIfNeeded(_ state: inout WriterState, frameLength: Int, events: UInt32) throws(EventLogError) {
        let active = state.active
        var tooOld = false
        if let age = options.segmentMaxAge, !active.snapshot.isEmpty {
            tooOld = currentTimestamp() - active.createdAt >= age.wholeMicroseconds
        }
        // An empty segment always has room: a batch holds at most
        // Limits.maxBatchRecords events, far below the capacity.
        let held = active.snapshot.endPosition - active.snapshot.basePosition
        let tooMany = held + UInt64(events) > UInt64(Limits.maxSegmentEvents)
        guard frameLength > active.remaining || tooOld || tooMany else { return }
        let needed = SegmentHeader.size + frameLength
        let capacity = max(options.segmentBytes, needed)
        if active.snapshot.isEmpty {
            try growEmptyActive(&state, to: capacity)
            return
        }
        // Seal: the data must be on disk before a later segment exists, so
        // recovery only ever has to look at the last segment's tail.
        do { try active.file.datasync() } catch {
            stop(&state, error.description)
            throw .writerStopped(reason: error.description)
        }
        // Synced: readers see it all before any appender waiting for it returns.
        segments.publish(active: active.snapshot, sequence: state.writtenSequence)
        groupCommit.noteDurable(state.writtenSequence)
        state.knownDurable = state.writtenSequence
        let next: ActiveSegment
        do {
            next = try segments.create(base: active.snapshot.endPosition, capacity: capacity)
        } catch .io(let error) where error.operation == "fsync" || error.operation == "fdatasync" {
            // The new file's state on disk is unknown: stop, as after any failed sync.
            stop(&state, error.description)
            throw .writerStopped(reason: error.description)
        }
        state.active = next
        state.checkpointEnd = next.dataEnd
        state.reservedEnd = 0
        preallocator?.switchTo(file: next.file, capacity: next.capacity, dataEnd: next.dataEnd)
        // Everything written so far is on disk (synced above): readers see it all.
        segments.seal(active.snapshot, next: next.snapshot, sequence: state.writtenSequence)
        logger.info("rolled to a new segment", metadata: [
            "sealed": "\(FileNames.segment(active.snapshot.basePosition))", "sealed_bytes": "\(active.snapshot.dataEnd)",
            "new_base": "\(next.snapshot.basePosition)", "reason": "\(tooOld ? "age" : tooMany ? "event count" : "size")",
        ])
    }

    /// An empty active segment too small for one frame is grown (files only
    /// grow while mapped) and mapped again.
    private func growEmptyActive(_ state: inout WriterState, to capacity: Int) throws(EventLogError) {
        let file = state.active.file
        do {
            try file.setLength(Int64(capacity))
            let mapping = try MappedRegion.map(file, length: capacity)
            let old = state.active.snapshot
            let entries = IndexPolicy.capacity(segmentBytes: capacity, interval: Int(metadata.indexInterval))
            let grown = Segment(
                id: .next(), basePosition: old.basePosition, path: old.path, mapping: mapping, headerCRC: old.headerCRC,
                offsetIndex: IndexBuffer(capacity: entries), timeIndex: IndexBuffer(capacity: entries),
                endPosition: old.endPosition, dataEnd: old.dataEnd, offsetIndexCount: 0, timeIndexCount: 0,
                maxTimestamp: .min, firstTimestamp: nil, lastBatchOffset: old.lastBatchOffset,
                lastBatchCRC: old.lastBatchCRC, isSealed: false)
            state.active = ActiveSegment(
                snapshot: grown, file: file, capacity: capacity, indexPolicy: IndexPolicy(interval: Int(metadata.indexInterval)),
                createdAt: state.active.createdAt, writebackStart: old.dataEnd)
            state.reservedEnd = 0
            segments.replaceEmptyActive(with: grown)
            preallocator?.switchTo(file: file, capacity: capacity, dataEnd: old.dataEnd)
        } catch {
            throw .io(error)
        }
    }
}
