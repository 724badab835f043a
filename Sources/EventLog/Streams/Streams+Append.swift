import struct Foundation.UUID

/// The stream layer over the ordered log: appends that give each event the
/// next version of its stream and check expectations, and reads by stream.
/// A value holding the two objects it works with; `Log` forwards to it.
struct Streams: Sendable {
    let log: BatchLog
    let index: StreamIndex
    var table: StreamTable { index.table }
}

extension Streams {
    /// `Log.append(_:)`.
    func append(_ events: [NewEvent]) throws(EventLogError) -> Range<UInt64> {
        try commit(wantsResult: false) { batch throws(EventLogError) in
            batch.prefetchStreams(of: events)
            for event in events { try batch.appendEvent(event) }
        }.positions
    }

    /// `Log.append(_:)` of one event.
    func append(_ event: NewEvent) throws(EventLogError) -> UInt64 {
        try commit(wantsResult: false) { batch throws(EventLogError) in try batch.appendEvent(event) }.positions.lowerBound
    }

    /// `Log.appendBatch(_:)`.
    func appendBatch(_ build: (inout BatchBuilder) throws -> Void) throws -> Range<UInt64> {
        var failure: (any Error)?
        let range: Range<UInt64>
        do {
            range = try commit(wantsResult: false) { batch throws(EventLogError) in
                do { try build(&batch) } catch {
                    failure = error
                    throw .invalidArgument("batch abandoned")
                }
            }.positions
        } catch {
            if let failure { throw failure }
            throw error
        }
        return range
    }

    /// Appends `events` (to any number of streams) as one atomic batch,
    /// after checking each stream's expected version in `expecting`. Every
    /// event gets the next version of its stream.
    ///
    /// - All or nothing: if any expectation fails, nothing is written and
    ///   `wrongExpectedVersion` names the stream and its actual version.
    /// - Idempotent retries: when the events repeat, by event id, the last
    ///   append to their streams (the same events, the same expectations),
    ///   nothing is written and the original positions and versions are
    ///   returned (`wasRetry`). Only the last append to each stream is
    ///   recognised, and only when every event has an event id. Repeating
    ///   some of its events but not all is `idempotencyConflict`.
    /// - A hard-deleted stream fails with `streamDeleted`; appending to a
    ///   soft-deleted one recreates it, continuing its versions.
    ///
    /// Blocks on the disk (under `.always`, until the batch is synced).
    func append(_ events: [NewEvent], expecting: [String: ExpectedVersion]) throws(EventLogError) -> AppendResult {
        // Expectations in a fixed order (the streams' first appearance, then by
        // name), so that of several mismatches the same one is reported each
        // time: slots are checked in the order they were made, and expecting a
        // stream the batch already has a slot for only sets its expectation again.
        try commit(wantsResult: true) { batch throws(EventLogError) in
            batch.prefetchStreams(of: events)
            var expected = 0
            for event in events {
                if let expectation = expecting[event.stream] {
                    if try batch.setExpectation(event.stream, expectation) { expected += 1 }
                }
            }
            if expected < expecting.count {
                // Streams expected but not appended to, by name (sorted only when there are any).
                for (stream, expectation) in expecting.sorted(by: { $0.key < $1.key }) { _ = try batch.setExpectation(stream, expectation) }
            }
            for event in events { try batch.appendEvent(event) }
        }
    }

    /// Deletes a stream by appending a marker to the log. Soft: the stream
    /// reads as empty, and the next append recreates it with the next
    /// version numbers. Hard: it can never be read or written again. The
    /// events stay in the log until compaction frees them.
    func deleteStream(_ stream: String, hard: Bool, expectedVersion: ExpectedVersion) throws(EventLogError) -> UInt64 {
        try commit(wantsResult: false) { batch throws(EventLogError) in
            _ = try batch.setExpectation(stream, expectedVersion)
            try batch.appendMarker(.delete(hard: hard), stream: stream)
        }.positions.lowerBound
    }

    /// Hides the versions of `stream` below `version` from stream reads (a
    /// marker in the log; compaction frees the space later).
    func truncateStream(_ stream: String, before version: UInt64) throws(EventLogError) -> UInt64 {
        try commit(wantsResult: false) { batch throws(EventLogError) in
            try batch.appendMarker(.truncate(before: version), stream: stream)
        }.positions.lowerBound
    }

    /// `Log.setStreamLimits(_:_:)`.
    func setLimits(_ stream: String, _ limits: StreamLimits) throws(EventLogError) -> UInt64 {
        guard let maxAge = limits.maxAgeMicroseconds else {
            throw .invalidArgument("a stream's max age must be at least one microsecond")
        }
        if limits.maxCount == 0 { throw .invalidArgument("a stream's max count must be at least 1") }
        return try commit(wantsResult: false) { batch throws(EventLogError) in
            try batch.appendMarker(.limits(maxAgeMicroseconds: maxAge, maxCount: limits.maxCount ?? 0), stream: stream)
        }.positions.lowerBound
    }

    /// Builds, checks, writes and (under `.always`) syncs one batch. With
    /// `wantsResult`, also reports the versions each stream got (which
    /// allocates; the plain append path does not ask).
    func commit(
        wantsResult: Bool, _ build: (inout BatchBuilder) throws(EventLogError) -> Void
    ) throws(EventLogError) -> AppendResult {
        try log.commit { (state) throws(EventLogError) -> (result: AppendResult, sequence: UInt64, wait: Bool) in
            let outcome = try appendLocked(&state, wantsResult: wantsResult, build)
            return (outcome.result, outcome.sequence, !outcome.result.positions.isEmpty)
        }
    }

    private struct CommitOutcome {
        var result: AppendResult
        var sequence: UInt64
    }

    /// The writer's part, under the writer lock: build the batch into the
    /// writer's reused buffer, check it, write it, index it.
    private func appendLocked(
        _ state: inout WriterState, wantsResult: Bool, _ build: (inout BatchBuilder) throws(EventLogError) -> Void
    ) throws(EventLogError) -> CommitOutcome {
        let base = state.active.snapshot.endPosition
        let buffer = state.encodeBuffer.take() ?? ByteBuffer(capacity: 1 << 20)
        // Move the reused scratch out (so the builder holds the only reference and reuses its storage).
        let scratch = index.batchScratch.withLock { scratch in
            var taken = BatchStreams()
            swap(&taken, &scratch)
            return taken
        }
        var builder = BatchBuilder(
            buffer: buffer, streams: consume scratch, table: table, basePosition: base, now: currentTimestamp(),
            sealer: log.keyRing.map { BatchSealer(ring: $0) }, usesTypeTable: log.options.compression == .none && log.options.typeTables,
            unitFeed: log.unitFeed(&state))
        var buildError: EventLogError?
        do { try build(&builder) } catch { buildError = error }
        // Sealed only when it will be written (new data keys are synced here).
        var sealed = false
        if buildError == nil, builder.count > 0 {
            do { sealed = try builder.sealIfNeeded() } catch {
                buildError = error
                // A failed write or sync of the key store stops the writer, as one of a segment does (Format.md §11).
                if case .io = error { log.groupCommit.fail("the key store: \(error)") }
            }
        }
        // A batch stored as is gets its type table (Format.md §5.3).
        let typed = buildError == nil && builder.count > 0 && !sealed && builder.insertTypeTable()
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
                    // Named now: once the batch is written, a checkpoint may
                    // end the table generation whose ids the slots hold.
                    let versions = wantsResult ? batchStreams.versions(table: table) : []
                    let (range, sequence) = try log.writeBatch(
                        &state, encoded: &encoded, count: count, firstTimestamp: firstTimestamp, maxTimestamp: maxTimestamp,
                        sealed: sealed, typeTable: typed
                    ) { (written) throws(EventLogError) in
                        try commitStreams(&batchStreams, written: written)
                    }
                    result = .success(CommitOutcome(
                        result: AppendResult(positions: range, streams: versions, wasRetry: false), sequence: sequence))
                }
            } catch {
                result = .failure(error)
            }
        }
        // Before the buffer is trimmed or reused: the helper lets go of units it was fed and the write did not take.
        log.endUnitFeed()
        encoded.count = 0
        encoded.trim(to: 4 << 20)
        state.encodeBuffer = consume encoded
        batchStreams.reset()
        index.batchScratch.withLock { swap(&batchStreams, &$0) }
        return try result.get()
    }

    /// Checks the batch's expectations. Returns the original result when the
    /// batch is a retry of the last append to its streams; throws on a
    /// mismatch or a partial repeat; nil when the batch may be written.
    func checkExpectations(_ batch: BatchStreams) throws(EventLogError) -> AppendResult? {
        var mismatch: Int?
        for (i, slot) in batch.slots.enumerated() {
            guard let expected = slot.expectation else { continue }
            if !Self.matches(expected, slot.versionBefore) {
                mismatch = i
                break
            }
        }
        if let retry = try detectRetry(batch) { return retry }
        if let mismatch {
            let slot = batch.slots[mismatch]
            throw .wrongExpectedVersion(
                stream: batch.name(of: mismatch, table: table), expected: slot.expectation ?? .any, actual: slot.versionBefore)
        }
        return nil
    }

    static func matches(_ expected: ExpectedVersion, _ actual: UInt64?) -> Bool {
        switch expected {
        case .any: return true
        case .noStream: return actual == nil
        case .streamExists: return actual != nil
        case .exact(let v): return actual == v
        }
    }

    /// Whether the batch repeats the last append to its streams (Format.md
    /// §14.4; README, "Idempotent retries"): the original result when it
    /// does, nil for a new append; `idempotencyConflict` when it repeats part
    /// of it, or cannot be told apart from a retry.
    ///
    /// Decided from the streams' states (the last append's id digest and
    /// record count), without reading the log. The log is read only to tell
    /// a new append from one repeating some of the last append's ids, and
    /// for states that do not know their last append's ids (read from a
    /// version 2 stream table run).
    private func detectRetry(_ batch: BatchStreams) throws(EventLogError) -> AppendResult? {
        var lastBatch: UInt64?
        var eventSlots = 0
        var recordCount: UInt32 = 0
        // False when a state does not know its last append's ids (record count 0).
        var known = true
        var digestsMatched = 0
        var mayOverlap = false
        for slot in batch.slots where slot.count > 0 {
            eventSlots += 1
            guard let id = slot.id, slot.allHaveIDs else { return nil }
            let state = table[id]
            guard state.lastAppendBatch != .max, state.lastAppendCount == slot.count,
                  lastBatch == nil || lastBatch == state.lastAppendBatch
            else { return nil }
            lastBatch = state.lastAppendBatch
            // The expectation must be the one the original append had.
            switch slot.expectation ?? .any {
            case .any: break
            // (No stream: a new one, or a soft-deleted one it recreated, at its truncate-before.)
            case .noStream: guard state.lastAppendFirstVersion == 0 || state.lastAppendFirstVersion == state.truncateBefore else { return nil }
            case .streamExists: guard state.lastAppendFirstVersion > 0 else { return nil }
            case .exact(let v): guard state.lastAppendFirstVersion == v &+ 1 else { return nil }
            }
            recordCount = state.lastAppendRecordCount
            if recordCount == 0 { known = false }
            if state.lastAppendIDDigest == slot.idDigest { digestsMatched += 1 }
            // A stream of one event repeats its id or not: only longer ones can repeat some of theirs.
            if slot.count > 1 { mayOverlap = true }
        }
        guard let lastBatch, eventSlots > 0 else { return nil }
        // A state whose batch would end past position 2⁶⁴ − 1 is damaged: the log decides.
        let (batchEnd, overflow) = lastBatch.addingReportingOverflow(UInt64(recordCount))
        guard known, !overflow else { return try compareWithLog(batch, lastBatch: lastBatch, eventSlots: eventSlots) }
        if digestsMatched == eventSlots, batch.items.count == Int(recordCount) {
            return retryResult(batch, positions: lastBatch..<batchEnd)
        }
        if digestsMatched > 0 {
            // Some streams repeat their part whole: the rest of the batch differs.
            throw .idempotencyConflict(
                stream: batch.name(of: batch.slots.firstIndex { $0.count > 0 } ?? 0, table: table),
                reason: "the append repeats part of an earlier multi-stream append")
        }
        // No stream repeats its ids: a new append, unless it repeats some of
        // them, which only the original batch can tell (when still in the log).
        guard mayOverlap, let original = try originalBatch(at: lastBatch) else { return nil }
        for (index, slot) in batch.slots.enumerated() where slot.count > 0 {
            let name = batch.name(of: index, table: table)
            let earlier = Set(original.events.lazy.filter { $0.stream == name }.compactMap(\.eventID))
            if batch.items.contains(where: { $0.slot == Int32(index) && $0.marker == nil && $0.eventID.map(earlier.contains) == true }) {
                throw .idempotencyConflict(
                    stream: name, reason: "the append repeats some, but not all, of the events of the previous append (by event id)")
            }
        }
        return nil
    }

    /// A retry's result: the positions the original append returned (its
    /// whole batch) and the versions it gave each stream, from their states.
    private func retryResult(_ batch: BatchStreams, positions: Range<UInt64>) -> AppendResult {
        var versions: [StreamVersions] = []
        for (index, slot) in batch.slots.enumerated() where slot.count > 0 {
            let state = table[slot.id ?? 0]
            versions.append(StreamVersions(
                stream: batch.name(of: index, table: table), firstVersion: state.lastAppendFirstVersion,
                lastVersion: state.lastAppendFirstVersion &+ UInt64(state.lastAppendCount) &- 1))
        }
        return AppendResult(positions: positions, streams: versions, wasRetry: true)
    }

    /// The batch at `position` as the log holds it now, nil when it is no
    /// longer there (retention removed it, or it is no longer a batch of its own).
    private func originalBatch(
        at position: UInt64
    ) throws(EventLogError) -> (positions: Range<UInt64>, events: [(stream: String, eventID: UUID?, position: UInt64)])? {
        let snapshot = log.snapshot()
        guard position >= snapshot.startPosition else { return nil }
        do {
            var reader = LogReader(snapshot: snapshot)
            guard let found = try reader.batchEvents(containing: position), found.positions.lowerBound == position else { return nil }
            return found
        } catch {
            if case .positionRemoved? = error as? EventLogError { return nil }
            throw .wrapping(error)
        }
    }

    /// Retry detection for states that do not know their last append's ids
    /// (read from a version 2 run, written by a build before format version
    /// 4): the event ids are compared with the original batch's, read from
    /// the log. When that batch is gone, the append cannot be told apart
    /// from a retry, and is refused rather than perhaps written twice.
    private func compareWithLog(_ batch: BatchStreams, lastBatch: UInt64, eventSlots: Int) throws(EventLogError) -> AppendResult? {
        let first = batch.name(of: batch.slots.firstIndex { $0.count > 0 } ?? 0, table: table)
        guard let original = try originalBatch(at: lastBatch) else {
            throw .idempotencyConflict(
                stream: first,
                reason: "the last append to the stream (the batch at position \(lastBatch)) was removed from the log, and its event ids "
                    + "were not recorded (the stream's state was written before format version 4): this append cannot be told apart "
                    + "from a retry of it; append with an exact expected version to write it")
        }
        var matched = 0
        var overlapping: String?
        for (index, slot) in batch.slots.enumerated() where slot.count > 0 {
            let name = batch.name(of: index, table: table)
            let incoming = batch.items.filter { $0.slot == Int32(index) && $0.marker == nil }.map(\.eventID)
            let earlier = original.events.filter { $0.stream == name }.map(\.eventID)
            if earlier == incoming {
                matched += 1
            } else if Set(earlier.compactMap { $0 }).intersection(incoming.compactMap { $0 }).isEmpty == false {
                overlapping = name
            }
        }
        if matched == eventSlots, original.events.count == batch.items.filter({ $0.marker == nil }).count {
            return retryResult(batch, positions: original.positions)
        }
        if let overlapping {
            throw .idempotencyConflict(
                stream: overlapping, reason: "the append repeats some, but not all, of the events of the previous append (by event id)")
        }
        if matched > 0 {
            throw .idempotencyConflict(stream: first, reason: "the append repeats part of an earlier multi-stream append")
        }
        return nil
    }

    /// Applies a written batch to the stream table and the active segment's
    /// stream entries (under the table lock, before the batch is published).
    ///
    /// Throws when the stream entries are full, which the writer makes
    /// impossible (it starts a new segment before a segment would hold more
    /// than `Limits.maxSegmentEvents`); the table has then taken part of
    /// the batch, and the writer stops.
    func commitStreams(_ batch: inout BatchStreams, written: WrittenBatch) throws(EventLogError) {
        let header = written.header
        let frameOffset = written.frameOffset
        let compressed = !written.storedAsIs
        guard let entries = index.activeEntries(for: written.segment) else {
            throw .writerStopped(reason: "the stream index does not know the active segment \(written.segment.id)")
        }
        let segmentBase = written.segment.basePosition
        var full = false
        // Each stream's chain head is a miss of its own (the heads of a
        // segment's streams outgrow the cache): ask for them all at once.
        // (Through the buffer: no copy of a slot, and of its name.)
        batch.slots.withUnsafeBufferPointer { slots in
            entries.prefetchHeads { each in
                for i in slots.indices where slots[i].count > 0 { each(slots[i].hash) }
            }
        }
        table.mutate { table in
            // Streams this batch creates get their ids.
            for i in batch.slots.indices where batch.slots[i].id == nil {
                guard batch.items.contains(where: { $0.slot == Int32(i) }) else { continue }
                batch.slots[i].id = table.insert(StreamState(name: batch.slots[i].newName ?? "", hash: batch.slots[i].hash))
            }
            entries.append { addEntry in
                for (index, item) in batch.items.enumerated() {
                    let slot = Int(item.slot)
                    guard let id = batch.slots[slot].id else { continue }
                    let position = header.basePosition &+ UInt64(index)
                    if let marker = item.marker {
                        table.update(id) { $0.apply(marker) }
                        self.index.noteMarker(hash: batch.slots[slot].hash)
                        continue
                    }
                    let relative = UInt32(truncatingIfNeeded: position &- segmentBase)
                    let offset = compressed
                        ? UInt32(frameOffset) | StreamEntry.compressedFlag
                        : UInt32(frameOffset + BatchHeader.size) + item.recordOffset
                    if !addEntry(batch.slots[slot].hash, relative, offset, item.version) { full = true }
                    table.update(id) { state in
                        if state.firstPosition == nil { state.firstPosition = position }
                        state.lastPosition = position
                        state.nextVersion = item.version + 1
                        if state.deletion == .soft { state.deletion = .none }
                    }
                }
            }
            // By index: a copy of each slot would retain its new name.
            for i in batch.slots.indices where batch.slots[i].count > 0 {
                guard let id = batch.slots[i].id else { continue }
                let firstVersion = batch.slots[i].firstVersion, count = batch.slots[i].count, digest = batch.slots[i].idDigest
                table.update(id) { state in
                    state.lastAppendBatch = header.basePosition
                    state.lastAppendFirstVersion = firstVersion
                    state.lastAppendCount = count
                    state.lastAppendRecordCount = header.recordCount
                    state.lastAppendIDDigest = digest
                }
            }
        }
        index.publishActiveCount(entries.writtenCount, position: header.endPosition)
        if full {
            throw .limitExceeded(limit: "events in a segment", value: entries.writtenCount + 1, maximum: StreamEntries.capacity)
        }
    }
}

extension BatchStreams {
    /// The versions each stream got, in the order the streams appeared.
    func versions(table: StreamTable) -> [StreamVersions] {
        slots.indices.compactMap { i in
            let slot = slots[i]
            guard slot.count > 0 else { return nil }
            return StreamVersions(stream: name(of: i, table: table), firstVersion: slot.firstVersion, lastVersion: slot.nextVersion - 1)
        }
    }
}
