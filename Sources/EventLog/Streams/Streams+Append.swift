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
            for event in events { try batch.append(event) }
        }.positions
    }

    /// `Log.append(_:)` of one event.
    func append(_ event: NewEvent) throws(EventLogError) -> UInt64 {
        try commit(wantsResult: false) { batch throws(EventLogError) in try batch.append(event) }.positions.lowerBound
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
        // name), so that of several mismatches the same one is reported each time.
        var ordered: [(String, ExpectedVersion)] = []
        var seen = Set<String>()
        for event in events where seen.insert(event.stream).inserted {
            if let expected = expecting[event.stream] { ordered.append((event.stream, expected)) }
        }
        if ordered.count < expecting.count {
            // Streams expected but not appended to, by name (sorted only when there are any).
            for (stream, expected) in expecting.filter({ !seen.contains($0.key) }).sorted(by: { $0.key < $1.key }) {
                ordered.append((stream, expected))
            }
        }
        return try commit(wantsResult: true) { batch throws(EventLogError) in
            for (stream, expected) in ordered { try batch.expect(stream, expected) }
            for event in events { try batch.append(event) }
        }
    }

    /// Deletes a stream by appending a marker to the log. Soft: the stream
    /// reads as empty, and the next append recreates it with the next
    /// version numbers. Hard: it can never be read or written again. The
    /// events stay in the log until compaction frees them.
    func deleteStream(_ stream: String, hard: Bool, expectedVersion: ExpectedVersion) throws(EventLogError) -> UInt64 {
        try commit(wantsResult: false) { batch throws(EventLogError) in
            try batch.expect(stream, expectedVersion)
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
        var builder = BatchBuilder(buffer: buffer, streams: consume scratch, table: table, basePosition: base, now: currentTimestamp())
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
                    // Named now: once the batch is written, a checkpoint may
                    // end the table generation whose ids the slots hold.
                    let versions = wantsResult ? batchStreams.versions(table: table) : []
                    let (range, sequence) = try log.writeBatch(
                        &state, encoded: &encoded, count: count, firstTimestamp: firstTimestamp, maxTimestamp: maxTimestamp
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
    /// and README: "Idempotent retries").
    private func detectRetry(_ batch: BatchStreams) throws(EventLogError) -> AppendResult? {
        var lastBatch: UInt64?
        var eventSlots = 0
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
        }
        guard let lastBatch, eventSlots > 0 else { return nil }
        // Compare the event ids with the original batch's, stream by stream, in order.
        let original: [(stream: String, eventID: UUID?, position: UInt64)]
        do {
            var reader = LogReader(snapshot: log.snapshot())
            original = try reader.batchEvents(containing: lastBatch)
        } catch {
            throw .wrapping(error)
        }
        var matched = 0
        var overlapping: String?
        var versions: [StreamVersions] = []
        var positions: Range<UInt64>?
        for (index, slot) in batch.slots.enumerated() where slot.count > 0 {
            let name = batch.name(of: index, table: table)
            let incoming = batch.items.filter { $0.slot == Int32(index) && $0.marker == nil }.map(\.eventID)
            let earlier = original.filter { $0.stream == name }
            if earlier.map(\.eventID) == incoming {
                matched += 1
                let state = table[slot.id ?? 0]
                versions.append(StreamVersions(
                    stream: name, firstVersion: state.lastAppendFirstVersion,
                    lastVersion: state.lastAppendFirstVersion + UInt64(state.lastAppendCount) - 1))
                if let first = earlier.first?.position, let last = earlier.last?.position {
                    positions = min(positions?.lowerBound ?? first, first)..<max(positions?.upperBound ?? last + 1, last + 1)
                }
            } else if Set(earlier.compactMap(\.eventID)).intersection(incoming.compactMap { $0 }).isEmpty == false {
                overlapping = name
            }
        }
        if matched == eventSlots, let positions, original.count == batch.items.filter({ $0.marker == nil }).count {
            return AppendResult(positions: positions, streams: versions, wasRetry: true)
        }
        if let overlapping {
            throw .idempotencyConflict(
                stream: overlapping, reason: "the append repeats some, but not all, of the events of the previous append (by event id)")
        }
        if matched > 0 {
            throw .idempotencyConflict(
                stream: batch.name(of: batch.slots.firstIndex { $0.count > 0 } ?? 0, table: table),
                reason: "the append repeats part of an earlier multi-stream append")
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
        let compressed = written.compressed
        guard let entries = index.activeEntries(for: written.segment) else {
            throw .writerStopped(reason: "the stream index does not know the active segment \(written.segment.id)")
        }
        let segmentBase = written.segment.basePosition
        var full = false
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
                        self.index.markersApplied.add(1, ordering: .relaxed)
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
            for slot in batch.slots where slot.count > 0 {
                guard let id = slot.id else { continue }
                table.update(id) { state in
                    state.lastAppendBatch = header.basePosition
                    state.lastAppendFirstVersion = slot.firstVersion
                    state.lastAppendCount = slot.count
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
