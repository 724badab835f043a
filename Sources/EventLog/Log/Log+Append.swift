extension Log {
    /// Appends `events` as one atomic batch and returns their positions.
    ///
    /// All of them become visible and durable together, or none does. Under
    /// `.always` this returns once the batch is on disk (sharing the sync with
    /// concurrent appenders); under `.interval` and `.none`, once it is
    /// written to the page cache. Blocks on the disk.
    @discardableResult
    public func append(_ events: [NewEvent]) throws(EventLogError) -> Range<UInt64> {
        try appendTyped { batch throws(EventLogError) in
            for event in events { try batch.append(event) }
        }
    }

    /// Appends one event; returns its position.
    @discardableResult
    public func append(_ event: NewEvent) throws(EventLogError) -> UInt64 {
        try appendTyped { batch throws(EventLogError) in try batch.append(event) }.lowerBound
    }

    /// Appends the events that `build` adds to the batch, as one atomic batch,
    /// encoding each straight into the log's buffer (no allocation per event).
    /// `build` runs under the writer lock: keep it short and do not call the
    /// log from it. An empty batch writes nothing. When `build` throws,
    /// nothing of the batch is written and its error is rethrown.
    @discardableResult
    public func appendBatch(_ build: (inout BatchBuilder) throws -> Void) throws -> Range<UInt64> {
        var failure: (any Error)?
        let range: Range<UInt64>
        do {
            range = try appendTyped { batch throws(EventLogError) in
                do { try build(&batch) } catch {
                    failure = error
                    throw .invalidArgument("batch abandoned")
                }
            }
        } catch {
            if let failure { throw failure }
            throw error
        }
        return range
    }

    /// The append path, with the builder's errors typed.
    func appendTyped(
        _ build: (inout BatchBuilder) throws(EventLogError) -> Void
    ) throws(EventLogError) -> Range<UInt64> {
        try commit(wantsResult: false, build).positions
    }

    /// Builds, checks, writes and (under `.always`) syncs one batch. With
    /// `wantsResult`, also reports the versions each stream got (which
    /// allocates; the plain append path does not ask).
    func commit(
        wantsResult: Bool, _ build: (inout BatchBuilder) throws(EventLogError) -> Void
    ) throws(EventLogError) -> AppendResult {
        if options.readOnly { throw .readOnly }
        let gathering = options.durability == .always
        if gathering { groupCommit.arriving.add(1, ordering: .relaxed) }
        let outcome: CommitOutcome
        do {
            outcome = try writer.withLock { (state) throws(EventLogError) -> CommitOutcome in
                try appendLocked(&state, wantsResult: wantsResult, build)
            }
        } catch {
            if gathering { groupCommit.arriving.subtract(1, ordering: .relaxed) }
            throw error
        }
        if gathering { groupCommit.arriving.subtract(1, ordering: .relaxed) }
        if options.durability == .always, !outcome.result.positions.isEmpty {
            // A retry waits too: the original append may not be durable yet.
            do { try groupCommit.waitDurable(upTo: outcome.sequence) } catch {
                writer.withLock { $0.failure = $0.failure ?? "\(error)" }
                throw error
            }
        }
        return outcome.result
    }

    struct CommitOutcome {
        var result: AppendResult
        var sequence: UInt64
    }

    private func appendLocked(
        _ state: inout WriterState, wantsResult: Bool, _ build: (inout BatchBuilder) throws(EventLogError) -> Void
    ) throws(EventLogError) -> CommitOutcome {
        if state.closed { throw .closed }
        if let failure = state.failure ?? groupCommit.failureReason {
            state.failure = failure
            throw .writerStopped(reason: failure)
        }
        let base = state.active.snapshot.endPosition
        let buffer = state.encodeBuffer.take() ?? ByteBuffer(capacity: 1 << 20)
        // Move the reused scratch out (so the builder holds the only reference and reuses its storage).
        var scratch = BatchStreams()
        swap(&scratch, &state.batchStreams)
        var builder = BatchBuilder(buffer: buffer, streams: consume scratch, table: streams, basePosition: base, now: currentTimestamp())
        var buildError: EventLogError?
        do { try build(&builder) } catch { buildError = error }
        let count = builder.count
        let firstTimestamp = builder.firstTimestamp
        let maxTimestamp = builder.maxTimestamp
        var batchStreams = builder.streams
        var encoded = builder.finish()
        var result: Result<CommitOutcome, EventLogError>
        if let buildError {
            result = .failure(buildError)
        } else {
            do throws(EventLogError) {
                if let retry = try checkExpectations(batchStreams) {
                    result = .success(CommitOutcome(result: retry, sequence: state.writtenSequence))
                } else if count == 0 {
                    result = .success(CommitOutcome(
                        result: AppendResult(positions: base..<base, streams: [], wasRetry: false), sequence: state.writtenSequence))
                } else {
                    let (range, sequence) = try writeBatch(
                        &state, encoded: &encoded, streams: &batchStreams, count: count, firstTimestamp: firstTimestamp,
                        maxTimestamp: maxTimestamp)
                    let versions = wantsResult ? batchStreams.versions(table: streams) : []
                    result = .success(CommitOutcome(
                        result: AppendResult(positions: range, streams: versions, wasRetry: false), sequence: sequence))
                }
            } catch {
                result = .failure(error)
            }
        }
        encoded.count = 0
        encoded.trim(to: 4 << 20)
        state.encodeBuffer = consume encoded
        batchStreams.reset()
        swap(&batchStreams, &state.batchStreams)
        return try result.get()
    }

    /// Compresses, frames, writes, indexes and publishes an encoded batch.
    private func writeBatch(
        _ state: inout WriterState, encoded: inout ByteBuffer, streams batchStreams: inout BatchStreams, count: UInt32,
        firstTimestamp: Timestamp, maxTimestamp: Timestamp
    ) throws(EventLogError) -> (Range<UInt64>, UInt64) {
        let base = state.active.snapshot.endPosition

        // The frame: header + records, compressed when that saves space.
        let recordsLength = encoded.count - BatchHeader.size
        var useCompressed = false
        if options.compression == .lz4 {
            useCompressed = compress(records: encoded.bytes, into: &state.compressBuffer)
        }
        let frameLength = useCompressed ? state.compressBuffer.count : encoded.count
        guard frameLength <= Limits.maxBatchBytes else {
            throw .limitExceeded(limit: "batch bytes", value: frameLength, maximum: Limits.maxBatchBytes)
        }

        try rollIfNeeded(&state, frameLength: frameLength, events: count)

        let offset = state.active.dataEnd
        var header = BatchHeader(
            length: UInt32(frameLength), crc: 0, basePosition: base, firstTimestamp: firstTimestamp,
            maxTimestamp: maxTimestamp, recordCount: count, previousCRC: state.active.snapshot.lastBatchCRC,
            recordsLength: UInt32(recordsLength), attributes: useCompressed ? UInt16(Compression.lz4.rawValue) : 0,
            syncedLag: BatchHeader.syncedLag(frameOffset: offset, syncedEnd: state.syncedEnd))
        let frame: UnsafeMutableRawPointer = useCompressed ? state.compressBuffer.base : encoded.base
        header.store(frame)
        header.crc = BatchHeader.frameChecksum(frame, count: frameLength)
        frame.storeLE(header.crc, at: 4)

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
                state.failure = cleanup.description
                groupCommit.fail(cleanup.description)
            }
            throw .io(error)
        }
        state.writtenSequence &+= UInt64(frameLength)

        var active = state.active.snapshot
        state.active.indexPolicy.add(
            batch: header, at: offset,
            records: useCompressed ? nil : UnsafeRawBufferPointer(rebasing: encoded.bytes[BatchHeader.size...]),
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
            try commitStreams(&batchStreams, batch: header, frameOffset: offset, compressed: useCompressed, segment: &active)
        } catch {
            // Unreachable (rollIfNeeded leaves room); if it happened, the
            // stream table took part of an unpublished batch: stop.
            state.failure = error.description
            groupCommit.fail(error.description)
            throw .writerStopped(reason: error.description)
        }
        state.active.snapshot = active
        if options.durability == .always {
            // Readers see the batch once a sync covers it (the sync leader publishes it).
            state.knownDurable = groupCommit.noteWritten(state.writtenSequence, file: state.active.file, publishing: active)
        } else {
            let sequence = state.writtenSequence
            published.withLock {
                $0.active = active
                $0.sequence = sequence
            }
            notifier.notify()
            state.knownDurable = groupCommit.noteWritten(state.writtenSequence, file: state.active.file)
        }

        if active.dataEnd - state.checkpointEnd >= options.checkpointBytes {
            scheduleIndexWrite(active, durableAt: state.writtenSequence)
            state.checkpointEnd = active.dataEnd
            // The stream table costs O(streams) to copy and write: written
            // when the log grew by 16 times its size since the last time.
            let tableBytes = UInt64(streams.count) * 48
            if state.writtenSequence - state.tableCheckpointSequence >= max(UInt64(options.checkpointBytes), 16 * tableBytes) {
                scheduleStreamTableWrite(covered: active.endPosition, durableAt: state.writtenSequence)
                state.tableCheckpointSequence = state.writtenSequence
            }
        }
        if options.durability != .always {
            let pending = active.dataEnd - state.active.writebackStart
            if pending >= Log.writebackChunk {
                do {
                    try state.active.file.startWriteback(at: Int64(state.active.writebackStart), length: Int64(pending))
                } catch {
                    // A write error on the segment: what reached the disk is
                    // unknown, exactly as after a failed fsync. The batch was
                    // written, but is not acknowledged.
                    state.failure = error.description
                    groupCommit.fail(error.description)
                    throw .writerStopped(reason: error.description)
                }
                state.active.writebackStart = active.dataEnd
            }
        }
        return (base..<header.endPosition, state.writtenSequence)
    }

    /// Bytes written before writeback is started without waiting (`sync_file_range`),
    /// so a later sync finds little left to flush.
    static let writebackChunk = 1 << 20

    /// Compresses the records area of `frame` (after its header) into
    /// `output`, leaving room for the header. Returns false when LZ4 does not
    /// make it smaller.
    private func compress(records frame: UnsafeRawBufferPointer, into output: inout ByteBuffer) -> Bool {
        let recordsLength = frame.count - BatchHeader.size
        guard recordsLength > 64 else { return false }
        let bound = LZ4Codec.compressBound(recordsLength)
        output.count = 0
        output.reserve(BatchHeader.size + bound)
        let written = LZ4Codec.compress(
            UnsafeRawBufferPointer(rebasing: frame[BatchHeader.size...]), into: output.base + BatchHeader.size, capacity: bound)
        guard written > 0, written < recordsLength - recordsLength / 16 else { return false }
        output.count = BatchHeader.size + written
        return true
    }

    /// Seals the active segment and starts a new one when the frame does not
    /// fit, the segment is too old, or it would hold more events than its
    /// stream entries can (Format.md §9, "events in a segment"); grows an
    /// empty segment that is too small.
    private func rollIfNeeded(_ state: inout WriterState, frameLength: Int, events: UInt32) throws(EventLogError) {
        let active = state.active
        var tooOld = false
        if let age = options.segmentMaxAgeSeconds, !active.snapshot.isEmpty {
            tooOld = currentTimestamp() - active.createdAt >= Int64(age) * 1_000_000
        }
        // An empty segment always has room: a batch holds at most
        // Limits.maxBatchRecords events, far below the capacity.
        let held = active.snapshot.endPosition - active.snapshot.basePosition
        let tooMany = held + UInt64(events) > UInt64(StreamEntries.capacity)
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
            state.failure = error.description
            groupCommit.fail(error.description)
            throw .writerStopped(reason: error.description)
        }
        // Synced: readers see it all before any appender waiting for it returns.
        publish(active: active.snapshot, sequence: state.writtenSequence)
        groupCommit.noteDurable(state.writtenSequence)
        state.knownDurable = state.writtenSequence
        let next: ActiveSegment
        do {
            next = try ActiveSegment.create(
                base: active.snapshot.endPosition, capacity: capacity, indexInterval: Int(metadata.indexInterval),
                logID: metadata.logID, directory: directory)
        } catch .io(let error) where error.operation == "fsync" || error.operation == "fdatasync" {
            // The new file's state on disk is unknown: stop, as after any failed sync.
            state.failure = error.description
            groupCommit.fail(error.description)
            throw .writerStopped(reason: error.description)
        }
        var sealed = active.snapshot
        sealed.isSealed = true
        state.active = next
        state.checkpointEnd = next.dataEnd
        preallocator?.switchTo(file: next.file, capacity: next.capacity, dataEnd: next.dataEnd)
        // Everything written so far is on disk (synced above): readers see it all.
        let sequence = state.writtenSequence
        published.withLock { snapshot in
            snapshot.sealed.append(sealed)
            snapshot.active = next.snapshot
            snapshot.sequence = sequence
        }
        notifier.notify()
        // After publishing: the background write then swaps the sealed
        // segment's in-memory stream entries for its file.
        scheduleIndexWrite(sealed)
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
            let grown = SegmentSnapshot(
                basePosition: old.basePosition, path: old.path, mapping: mapping, headerCRC: old.headerCRC,
                offsetIndex: IndexBuffer(capacity: entries), timeIndex: IndexBuffer(capacity: entries),
                endPosition: old.endPosition, dataEnd: old.dataEnd, offsetIndexCount: 0, timeIndexCount: 0,
                maxTimestamp: .min, firstTimestamp: nil, lastBatchOffset: old.lastBatchOffset,
                lastBatchCRC: old.lastBatchCRC, isSealed: false, streamEntries: StreamEntries())
            state.active = ActiveSegment(
                snapshot: grown, file: file, capacity: capacity, indexPolicy: IndexPolicy(interval: Int(metadata.indexInterval)),
                createdAt: state.active.createdAt, writebackStart: old.dataEnd)
            published.withLock { $0.active = grown }
            preallocator?.switchTo(file: file, capacity: capacity, dataEnd: old.dataEnd)
        } catch {
            throw .io(error)
        }
    }
}
