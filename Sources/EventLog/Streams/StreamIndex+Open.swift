/// Opening the stream layer: the stream table's runs, the sealed segments'
/// stream index files, the active segment's entries, and the replay of
/// whatever the persisted files do not cover (Format.md §14.3, "Recovery").
extension StreamIndex {
    /// Opens the stream index of the segments an open found (a step of
    /// `Log.open`, before the open changes any file but rebuilt stream
    /// index files and run files no chain uses).
    static func open(_ opened: inout OpenedSegments, options: LogOptions, directory: DirectoryOperations) throws -> StreamIndex {
        let readOnly = options.readOnly
        let segments = opened.segments
        let start = segments.first?.basePosition ?? 0
        let end = segments.last?.endPosition ?? 0
        var sealed: [SegmentID: SegmentStreamIndex] = [:]

        // 1. The runs: the chain from position 0; the current generation starts where it ends.
        let found = opened.streamTableRuns ?? StreamTableRunChain.openAll(in: directory)
        let chain = StreamTableRunChain.select(from: found.runs, end: end)
        let covered = chain.last?.to ?? 0
        if covered < start {
            // Retention removed the segments below the start only once the
            // runs reached it (Format.md §14.3): what they held is nowhere else.
            let reason = "the log starts at position \(start), but the chain of stream table runs from position 0 reaches only \(covered): "
                + "a run from \(covered) is missing or damaged, and the removed segments it described cannot be replayed"
            guard readOnly && !options.allowsCursorCommits else {
                throw EventLogError.corruption(
                    file: directory.file(FileNames.logStart), offset: 16, reason: reason + " (restore the run from a backup)")
            }
            // A reader reads every event (Format.md §10.2); its stream reads
            // know only the streams of the records it replays.
            opened.report.damagedFiles.append(.init(
                file: directory.file(FileNames.logStart), offset: 16,
                reason: reason + "; the streams of the removed segments are unknown to this reader"))
            options.logger.warning(
                "the stream table runs do not reach the log start; read without the streams of the removed segments",
                metadata: ["file": "\(directory.file(FileNames.logStart))", "reached": "\(covered)", "start": "\(start)"])
        }
        let table = StreamTable(hashMask: options.streamHashMask, levels: StreamLevels(runs: chain), from: covered)
        opened.report.rebuiltIndexes += found.unusable.filter { !$0.hasSuffix(".tmp") }
        if covered < end, case .clean = opened.report.previousShutdown {
            // A clean shutdown's runs reach the end: these changes are rebuilt by the replay below.
            opened.report.rebuiltIndexes.append(FileNames.streamTableRun(from: covered, to: end))
        }
        if !readOnly {
            // Superseded by a merge, past a cut tail, unusable, or left by an
            // interrupted write: derived data no chain uses. And version 1's table.
            let inChain = Set(chain.map(\.path))
            var stale = found.unusable + found.runs.filter { !inChain.contains($0.path) }.map { FileNames.streamTableRun(from: $0.from, to: $0.to) }
            if DirectoryOperations.exists(directory.file(FileNames.legacyStreamTable)) { stale.append(FileNames.legacyStreamTable) }
            for name in stale { try directory.remove(name) }
            if !stale.isEmpty { try directory.sync() }
        }

        // 2. Sealed segments: their stream index files, rebuilt when in doubt.
        for segment in segments.dropLast() {
            let name = FileNames.streamIndex(segment.basePosition)
            if let view = StreamIndexView.open(path: directory.file(name), faults: directory.faults), view.describes(segment) {
                sealed[segment.id] = .file(view)
                continue
            }
            let bytes = try StreamIndexBuilder.scan(segment, hash: table.hash)
            opened.report.rebuiltIndexes.append(name)
            var view: StreamIndexView?
            if !readOnly {
                try directory.writeAtomically(name, bytes: bytes)
                view = StreamIndexView.open(path: directory.file(name), faults: directory.faults)
            }
            if let view = view ?? StreamIndexView.inMemory(bytes, path: directory.file(name)) { sealed[segment.id] = .file(view) }
        }

        // 3. The last segment: its checkpoint file as the base of its
        // entries (checked whole here; a damaged one is not used), the
        // events after it in memory.
        guard let last = segments.last else {
            return StreamIndex(
                table: table, directory: directory, memoryBytes: options.streamMemoryBytes, checkpointBytes: options.checkpointBytes,
                sealed: sealed, active: nil, indexedEnd: end, logger: options.logger)
        }
        var entries = SegmentStreamEntries()
        var checkpoint = last.basePosition
        if let view = StreamIndexView.open(path: directory.file(FileNames.streamIndex(last.basePosition)), faults: directory.faults),
           view.describesPrefix(of: last), let base = try? VerifiedStreamIndex(view) {
            entries = SegmentStreamEntries(base: base)
            checkpoint = view.header.endPosition
        }

        // 4. Replay what neither covers.
        let from = min(covered, checkpoint)
        if from < end {
            opened.report.replayedRecords = try StreamIndexBuilder.replay(
                segments: segments, from: from, tableFrom: covered, entriesFrom: checkpoint, entries: entries, table: table,
                keys: readOnly ? nil : opened.keys)
        }
        return StreamIndex(
            table: table, directory: directory, memoryBytes: options.streamMemoryBytes, checkpointBytes: options.checkpointBytes,
            sealed: sealed, active: (last.id, last.basePosition, entries), indexedEnd: end, logger: options.logger)
    }
}

extension StreamIndexView {
    /// True when the file describes exactly this (sealed) segment.
    func describes(_ segment: Segment) -> Bool {
        header.basePosition == segment.basePosition && header.endPosition == segment.endPosition
            && Int(header.dataEnd) == segment.dataEnd && header.lastBatchCRC == segment.lastBatchCRC
    }

    /// True when the file describes a prefix of this segment that its data
    /// confirms: a checkpoint of the active segment.
    func describesPrefix(of segment: Segment) -> Bool {
        guard header.basePosition == segment.basePosition, header.endPosition <= segment.endPosition,
              Int(header.dataEnd) <= segment.dataEnd
        else { return false }
        if header.endPosition == segment.basePosition { return header.dataEnd == UInt32(SegmentHeader.size) }
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd),
              case .valid(let last) = BatchHeader.check(
                  bytes, at: Int(header.lastBatchOffset), end: Int(header.dataEnd), previousCRC: nil, expectedBase: nil)
        else { return false }
        return last.crc == header.lastBatchCRC && last.endPosition == header.endPosition
            && Int(header.lastBatchOffset) + Int(last.length) == Int(header.dataEnd)
    }
}

/// Building stream indexes: from a segment's records, from a checkpoint
/// file, and the replay of records into the table.
enum StreamIndexBuilder {
    /// The stream index file of a segment, built by reading every record.
    static func scan(_ segment: Segment, hash: (UnsafeRawBufferPointer) -> UInt64) throws -> [UInt8] {
        let entries = SegmentStreamEntries()
        try entries.append { add in
            try forEachRecord(in: segment, from: segment.basePosition) { view, offset, _ in
                if view.isMarker { return }
                let relative = UInt32(truncatingIfNeeded: view.position &- segment.basePosition)
                guard add(hash(view.streamBytes), relative, offset, view.version) else { throw tooManyEvents(segment) }
            }
        }
        return entries.fileBytes(segment.indexFileHeader, count: entries.writtenCount)
    }

    /// One record of a segment as its stream index file holds it: what
    /// `scan` finds for it, learned by the writer of the segment instead.
    struct RecordEntry {
        var hash: UInt64
        var relativePosition: UInt32
        /// The record's offset in the segment, or its frame's with `StreamEntry.compressedFlag`.
        var offset: UInt32
        var version: UInt64

        /// The entry of the record at `position`, written at `recordOffset`
        /// in an uncompressed frame or in the compressed frame at `frameOffset`
        /// (`SegmentRewriter`'s `kept`).
        init(hash: UInt64, position: UInt64, version: UInt64, in segmentBase: UInt64, frameOffset: Int, recordOffset: Int?) {
            self.hash = hash
            relativePosition = UInt32(truncatingIfNeeded: position &- segmentBase)
            offset = recordOffset.map { UInt32(truncatingIfNeeded: $0) } ?? (UInt32(truncatingIfNeeded: frameOffset) | StreamEntry.compressedFlag)
            self.version = version
        }
    }

    /// The stream index file of `segment` from its events' entries (markers
    /// left out), in position order: the same bytes `scan` makes. Nil when
    /// there are more than a segment may hold.
    static func file(of segment: Segment, entries: [RecordEntry]) -> [UInt8]? {
        let built = SegmentStreamEntries()
        let fits = built.append { add in entries.allSatisfy { add($0.hash, $0.relativePosition, $0.offset, $0.version) } }
        return fits ? built.fileBytes(segment.indexFileHeader, count: built.writtenCount) : nil
    }

    /// Replays the records from `from` up to `end`: into the table for
    /// positions at or after `tableFrom`, into the last segment's `entries`
    /// at or after `entriesFrom`. Returns the records read.
    ///
    /// With an encrypted log's `keys`, sealed batches are opened, so each
    /// stream's last append gets the digest of its event ids (sealed in the
    /// metadata), which the writer's idempotent retries compare with
    /// (`StreamState.lastAppendIDDigest`); without them it is 0, as for
    /// events without ids: fine for a reader, which never appends, and for
    /// the events of a forgotten key, whose ids are gone.
    @discardableResult
    static func replay(
        segments: [Segment], from: UInt64, tableFrom: UInt64, entriesFrom: UInt64, entries: SegmentStreamEntries?,
        table: StreamTable, upTo end: UInt64 = .max, keys: (any SealKeys)? = nil
    ) throws -> Int {
        guard let last = segments.last else { return 0 }
        var replayed = 0
        var batchBase: UInt64 = .max
        var batchRecords: UInt32 = 0
        /// Per stream with events in the batch: what its last append becomes.
        struct Append {
            var firstVersion: UInt64
            var count: UInt32 = 0
            var allHaveIDs = true
            var ids = EventIDDigest()
        }
        var inBatch: [UInt32: Append] = [:]
        func closeBatch(_ t: inout StreamTable.Mutator) {
            for (id, append) in inBatch {
                t.update(id) { state in
                    state.lastAppendBatch = batchBase
                    state.lastAppendFirstVersion = append.firstVersion
                    state.lastAppendCount = append.count
                    state.lastAppendRecordCount = batchRecords
                    state.lastAppendIDDigest = append.allHaveIDs ? append.ids.value : 0
                }
            }
            inBatch.removeAll(keepingCapacity: true)
        }
        try table.mutate { (t) throws in
            for segment in segments where segment.endPosition > from && segment.basePosition < end {
                let isLast = segment.basePosition == last.basePosition
                try forEachRecord(in: segment, from: max(from, segment.basePosition), keys: keys) { view, offset, batch in
                    let position = view.position
                    guard position < end else { return }
                    replayed += 1
                    let hash = t.table.hash(view.streamBytes)
                    if position >= tableFrom {
                        let id = try t.findOrCreate(view.streamBytes, hash: hash)
                        if batch.basePosition != batchBase {
                            closeBatch(&t)
                            batchBase = batch.basePosition
                            batchRecords = batch.recordCount
                        }
                        if view.isMarker, let marker = StreamMarker(type: view.typeBytes, data: view.data) {
                            // A marker's version is its stream's next version when it
                            // was written: the events before it may have been scavenged.
                            t.update(id) { state in
                                state.nextVersion = max(state.nextVersion, view.version)
                                state.apply(marker)
                            }
                        } else if !view.isMarker {
                            t.update(id) { state in
                                if state.firstPosition == nil { state.firstPosition = position }
                                state.lastPosition = position
                                state.nextVersion = view.version + 1
                                if state.deletion == .soft { state.deletion = .none }
                            }
                            var append = inBatch[id] ?? Append(firstVersion: view.version)
                            append.count += 1
                            if let eventID = MetadataCoding.eventIDBytes(view.metadataBytes) {
                                append.ids.add(bytes: eventID)
                            } else {
                                append.allHaveIDs = false
                            }
                            inBatch[id] = append
                        }
                    }
                    if isLast, let entries, position >= entriesFrom, !view.isMarker {
                        let relative = UInt32(truncatingIfNeeded: position &- last.basePosition)
                        let added = entries.append { add in add(hash, relative, offset, view.version) }
                        guard added else { throw tooManyEvents(last) }
                    }
                }
            }
            closeBatch(&t)
        }
        return replayed
    }

    /// A segment with more events than its stream entries can hold: no
    /// writer writes one (Format.md §9), so it is damage.
    static func tooManyEvents(_ segment: Segment) -> EventLogError {
        .corruption(
            file: segment.path, offset: 0,
            reason: "the segment holds more than \(StreamEntries.capacity) events, the most a segment may hold")
    }

    /// Every record of `segment` from position `from`, with its stream-index
    /// offset and its batch's header. Frames are verified; sealed batches
    /// are opened when `keys` are given (else their data and metadata are
    /// lent sealed).
    static func forEachRecord(
        in segment: Segment, from: UInt64, keys: (any SealKeys)? = nil, _ body: (EventView, UInt32, BatchHeader) throws -> Void
    ) throws {
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd) else { return }
        var reader = LogReader(snapshot: LogSnapshot(sealed: [], active: segment, keys: keys))
        var offset = segment.walkStart(for: from)
        while offset < segment.dataEnd {
            guard case .valid(let header) = BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil) else {
                throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: "damaged batch")
            }
            defer { offset += Int(header.length) }
            if header.endPosition <= from { continue }
            let area = try reader.records(of: header, at: offset, in: segment, opening: keys != nil)
            let types = try segment.typeTable(of: header, in: area, batchOffset: offset, guarded: false)
            var at = types.length
            for position in header.basePosition..<header.endPosition {
                let recordStart = at
                let view: EventView
                do {
                    view = try Record.decode(
                        area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: false, types: types)
                } catch {
                    throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: error.reason)
                }
                if position < from { continue }
                let entryOffset = header.isStoredAsIs
                    ? UInt32(offset + BatchHeader.size + recordStart)
                    : UInt32(offset) | StreamEntry.compressedFlag
                try body(view, entryOffset, header)
            }
        }
    }
}

extension StreamIndexBuilder {
    /// `Log.verify`'s part for streams: compares a sound segment's stream
    /// index file with one rebuilt from its records.
    static func verifyFile(of segment: Segment, directory: DirectoryOperations, report: inout VerificationReport) {
        let name = FileNames.streamIndex(segment.basePosition)
        let path = directory.file(name)
        let expected = try? StreamIndexBuilder.scan(segment, hash: StreamHash.hash)
        // A file longer than the one rebuilt from the records is wrong whatever it holds: no more is read.
        guard let stored = try? directory.readWhole(name, atMost: expected?.count ?? StreamIndexFile.headerSize) else {
            report.problems.append(.init(file: path, offset: 0, reason: "stream index file is missing (the next open rebuilds it)"))
            return
        }
        report.indexFiles += 1
        guard let expected else { return }
        if stored != expected {
            // Damage inside a block is found by the reads of that block, not
            // by an open (which checks the header and fence only): name it.
            let view = StreamIndexView.inMemory(stored, path: path)
            if let view, let damage = view.verify() {
                report.problems.append(.init(
                    file: path, offset: damage.offset,
                    reason: "\(damage.reason): stream reads through it fail (remove the file: the next open rebuilds it)"))
                return
            }
            let at = zip(stored, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(stored.count, expected.count)
            let rebuilt = view.map { !$0.describes(segment) } ?? true
            report.problems.append(.init(
                file: path, offset: Int64(at),
                reason: "stream index differs from the log" + (rebuilt ? " (the next open rebuilds it)" : " (remove the file: the next open rebuilds it)")))
        }
    }

    /// `Log.verify`'s part for the stream table: every block of every run
    /// file (its checksum, its rows, their order), and run files that do not
    /// open. Runs are derived data: a damaged one is removed and rebuilt by
    /// the next open (Format.md §14.3).
    ///
    /// Once retention moved the log start, the runs are the only record of
    /// the streams of the removed segments: the chain from position 0 must
    /// reach the start, and a damaged run cannot be replayed.
    static func verifyRuns(in directory: DirectoryOperations, report: inout VerificationReport) {
        // The marker before the runs: a writer's close writes its runs, then
        // the marker, so the runs listed after a marker include the ones its
        // close wrote (listed before it, a close in between would seem to
        // have left a run out).
        let marker = try? CleanShutdownMarker.read(in: directory)
        let found = StreamTableRunChain.openAll(in: directory)
        let start = (try? LogStart.read(in: directory))?.startPosition ?? 0
        let advice = start > 0
            ? "the log starts at \(start): what the run held before it is nowhere else; restore the file from a backup"
            : "remove the file: the next open replays what it held"
        for name in found.unusable where !name.hasSuffix(".tmp") {
            report.problems.append(.init(file: directory.file(name), offset: 0, reason: "stream table run does not open (\(advice))"))
        }
        for run in found.runs {
            report.indexFiles += 1
            if let (offset, reason) = run.verify() {
                report.problems.append(.init(file: run.path, offset: offset, reason: "\(reason) (\(advice))"))
            }
        }
        if let missing = missingRun(in: directory, found: found, marker: marker) {
            report.problems.append(.init(
                file: directory.file(missing.name), offset: 0,
                reason: "stream table run is missing: the log was closed cleanly at position \(missing.end), and close() writes "
                    + "the runs up to there, but the chain of runs from position 0 ends at \(missing.reach) "
                    + "(the next open replays from there; \(advice))"))
        }
        if start > 0 {
            let reach = StreamTableRunChain.select(from: found.runs, end: .max).last?.to ?? 0
            if reach < start {
                report.problems.append(.init(
                    file: directory.file(FileNames.logStart), offset: 16,
                    reason: "the log starts at position \(start), but the chain of stream table runs from position 0 reaches only \(reach): the streams of the removed segments are not recorded"))
            }
        }
    }
}

extension StreamIndexBuilder {
    /// After a clean shutdown the chain of runs reaches the end of the log
    /// (`close()` writes the runs up to it, §14): where it stops short, a run
    /// was lost (a run that does not open is reported as such instead). The
    /// missing run's name: from where the chain stops to where the next run
    /// found starts (or the end). Nil after a crash, or for a log of format
    /// version 1, which kept `streams.table` instead.
    static func missingRun(
        in directory: DirectoryOperations, found: (runs: [StreamTableRunView], unusable: [String]), marker: CleanShutdownMarker?
    ) -> (name: String, reach: UInt64, end: UInt64)? {
        guard let marker, marker.endPosition > 0, !DirectoryOperations.exists(directory.file(FileNames.legacyStreamTable))
        else { return nil }
        if case .success(let metadata?)? = try? LogMetadata.read(in: directory, writing: false), metadata.readVersion < 2 { return nil }
        let end = marker.endPosition
        let reach = StreamTableRunChain.select(from: found.runs, end: end).last?.to ?? 0
        guard reach < end, !found.unusable.contains(where: { FileNames.streamTableRunRange($0)?.from == reach }) else { return nil }
        let next = found.runs.map(\.from).filter { $0 > reach && $0 < end }.min() ?? end
        return (FileNames.streamTableRun(from: reach, to: next), reach, end)
    }
}
