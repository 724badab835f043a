/// One damaged place found by `Log.verify(at:)`.
public struct VerificationProblem: Sendable, Equatable, CustomStringConvertible {
    /// The file's name in the log directory.
    public var file: String
    /// The byte offset of the damage.
    public var offset: Int64
    /// What is wrong there.
    public var reason: String

    /// The file, the offset and the reason in one line.
    public var description: String { "\(file) at byte \(offset): \(reason)" }
}

/// What `Log.verify(at:)` checked and found.
public struct VerificationReport: Sendable {
    /// Every problem found, in the order found (none: the log is sound).
    public var problems: [VerificationProblem] = []
    /// True when no problem was found.
    public var isSound: Bool { problems.isEmpty }
    /// Segments checked.
    public var segments = 0
    /// Batches checked.
    public var batches = 0
    /// Events checked (markers included).
    public var events: UInt64 = 0
    /// Index files checked against the segments.
    public var indexFiles = 0
    /// True when the deep checks ran (`Log.verify(at:deep:progress:)`).
    public var deep = false
    /// Deep checks: the streams whose states were compared with a replay of the log (0 when none were).
    public var streamsCompared = 0
    /// Deep checks: the cursors checked against the log's positions.
    public var cursorsChecked = 0
    /// Checks left out, and why: deep checks (a log that does not open, a
    /// log whose start moved), or the clean-shutdown marker's, when a writer
    /// opened or closed the log while it was checked.
    public var notes: [String] = []
    /// Each segment's findings in position order, for `Log.repair`.
    var segmentChecks: [SegmentCheck] = []
}

/// How far `Log.verify(at:progress:)` has come: told after each segment.
public struct VerificationProgress: Sendable, Equatable {
    /// Segments checked so far, of `segmentCount`.
    public var segmentsChecked: Int
    /// Segments there are to check.
    public var segmentCount: Int
    /// Events checked so far.
    public var eventsChecked: UInt64
    /// True in `verify --deep`'s second pass (`Log.verify(at:deep:progress:)`): its own count of segments and events.
    public var deep = false
}

/// `Log.verify(at:)`: checks every byte of a log without opening it.
enum LogVerifier {
    /// Checks a log without changing it: every batch checksum and chain link,
    /// every record checksum, the segment headers, that no segment is
    /// missing, and every index file against indexes rebuilt from the log.
    /// Works beside a live writer (it takes no lock) and on a log that will
    /// not open. Blocks on the disk; reads every byte of the log.
    ///
    /// - Throws: only when `path` holds no log at all; damage is reported in
    ///   the returned report.
    /// `checkIndexes` is the layers above: it compares their index files of
    /// a sound segment (as rebuilt here from its records) with the log.
    ///
    /// The clean-shutdown marker, read first, says how the last segment and
    /// its index files are judged. A writer that opens the log while it is
    /// checked removes the marker and appends; one that closes it writes a
    /// new one. Either way the findings may be stale: when the marker is not
    /// what it was, the log is checked once more, as after a crash (without
    /// the marker, whatever it says then), and a note says so. Progress
    /// starts again.
    ///
    /// `faults`: the storage seam's fault plan, for tests (nil in production).
    static func verify(
        at path: String, progress: ((VerificationProgress) -> Void)? = nil, faults: StorageFaults? = nil,
        checkIndexes: (Segment, DirectoryOperations, inout VerificationReport) -> Void
    ) throws(EventLogError) -> VerificationReport {
        let directory = DirectoryOperations(path: path, faults: faults)
        let (report, marker) = try verifyOnce(
            in: directory, usingMarker: true, progress: progress, checkIndexes: checkIndexes)
        guard (try? CleanShutdownMarker.read(in: directory)) != marker else { return report }
        var again = try verifyOnce(in: directory, usingMarker: false, progress: progress, checkIndexes: checkIndexes).report
        again.notes.append(Self.markerChangedNote)
        return again
    }

    static let markerChangedNote =
        "a writer opened or closed the log while it was checked: checked again as after a crash, without the clean-shutdown marker"

    /// One pass of `verify`; also returns the marker it judged by (nil
    /// without `usingMarker`).
    private static func verifyOnce(
        in directory: DirectoryOperations, usingMarker: Bool, progress: ((VerificationProgress) -> Void)?,
        checkIndexes: (Segment, DirectoryOperations, inout VerificationReport) -> Void
    ) throws(EventLogError) -> (report: VerificationReport, marker: CleanShutdownMarker?) {
        let path = directory.path
        guard DirectoryOperations.isDirectory(path) else { throw .notFound(path: path) }
        var report = VerificationReport()
        // The stream table runs before the segments: a live writer writes a
        // run after the segments holding its positions exist, so every run
        // read here covers segments the listing below finds (read after it,
        // a run of a roll just made would seem to cover positions missing).
        let runsCovered = StreamTableRunChain.openAll(in: directory).runs.map(\.to).max()
        let names: [String]
        do { names = try directory.list() } catch { throw .io(error) }
        var bases = SegmentSet.bases(in: names)
        guard names.contains(FileNames.metadata) || !bases.isEmpty else {
            throw .notFound(path: path)
        }
        var metadata: LogMetadata?
        do {
            if let bytes = try directory.readWhole(FileNames.metadata, atMost: LogMetadata.size) {
                metadata = try LogMetadata.decode(bytes, file: directory.file(FileNames.metadata))
            } else {
                report.problems.append(.init(file: directory.file(FileNames.metadata), offset: 0, reason: "the log metadata file is missing"))
            }
        } catch let error as EventLogError {
            report.problems.append(problem(error, file: directory.file(FileNames.metadata)))
        } catch {
            report.problems.append(.init(file: directory.file(FileNames.metadata), offset: 0, reason: "\(error)"))
        }
        // A segment merge under way (Format.md §4.2): the set it leaves is checked, as an open reads it.
        do {
            let mergedAway = try MergeSwap.mergedAway(in: directory)
            bases.removeAll { mergedAway.contains($0) }
        } catch let error as EventLogError {
            report.problems.append(problem(error, file: directory.file(FileNames.compactionManifest)))
        } catch {
            report.problems.append(.init(file: directory.file(FileNames.compactionManifest), offset: 0, reason: "\(error)"))
        }
        let marker = usingMarker ? try? CleanShutdownMarker.read(in: directory) : nil
        // After a crash, stream table runs are evidence of synced data too, as on open (Format.md §10, §14.3).
        let tableCovered = marker == nil ? runsCovered : nil
        let interval = Int(metadata?.indexInterval ?? UInt32(LogOptions().indexInterval))
        var expected: UInt64?
        var firstMissing: (expected: UInt64, reason: String)?
        // The log start position (Format.md §3.1): the first segment must begin there.
        let startFile = directory.file(FileNames.logStart)
        do {
            var recorded = try LogStart.read(in: directory)?.startPosition
            if recorded == nil, let first = bases.first, first > 0, (metadata?.readVersion ?? FormatVersion.current) >= LogStart.firstVersion {
                // The file is what is missing (Format.md §3.1): every open reports or refuses it, not a segment.
                report.problems.append(.init(file: startFile, offset: 0, reason: Opener.missingStartReason(firstSegment: first)))
                recorded = first
            }
            let start = recorded ?? 0
            // Leftovers of retention's unlink are not part of the log: the next writer removes them.
            bases = SegmentSet.leftoversOfRetention(in: bases, start: start).log
            if let first = bases.first {
                let reason: String?
                switch SegmentSet.succession(of: first, after: start) {
                case .follows:
                    reason = nil
                case .missing(let gap):
                    reason = "positions \(gap.lowerBound)..<\(gap.upperBound) are missing (the log starts at \(start): a segment is missing before this one)"
                case .overlaps:
                    reason = "segment starts at \(first), before the log start position \(start)"
                }
                if let reason {
                    report.problems.append(.init(file: directory.file(FileNames.segment(first)), offset: 0, reason: reason))
                    firstMissing = (start, reason)
                }
            }
        } catch let error as EventLogError {
            report.problems.append(problem(error, file: startFile))
        } catch {
            report.problems.append(.init(file: startFile, offset: 0, reason: "\(error)"))
        }
        // The settings, the clean-shutdown marker, the last compaction file and
        // the cleaner checkpoint (§3.2, §8, §3.3, §3.4): no open needs them, but damage is damage.
        for damaged in ConfinedFiles.damage(in: directory) {
            report.problems.append(.init(file: damaged.file, offset: damaged.offset, reason: damaged.reason))
        }
        // Every open refuses a log other users can change, and a writer never
        // opens a file it writes through a symbolic link (Format.md §2).
        if let (path, mode) = directory.writableByOthers(among: names) {
            report.problems.append(.init(
                file: path, offset: 0,
                reason: "writable by the group or others (mode \(String(mode, radix: 8))): every open refuses the log"))
        }
        for name in [FileNames.lock, FileNames.cursorJournal] + (bases.last.map { [FileNames.segment($0)] } ?? [])
        where CreateModes.permissions(of: directory.file(name)).map({ !$0.isFileOrDirectory }) ?? false {
            report.problems.append(.init(
                file: directory.file(name), offset: 0,
                reason: "not a regular file (a symbolic link?): a writer's open refuses to write through it"))
        }
        // Sealed batches need the key store: its loss is reported at the first one (Format.md §16).
        var keyStoreLoss = names.contains(FileNames.keyStore) ? nil : directory.file(FileNames.keyStore)
        for (i, base) in bases.enumerated() {
            let isLast = i == bases.count - 1
            var missing = i == 0 ? firstMissing : nil
            // After a damaged segment its end is unknown: no gap is claimed.
            if let expected {
                let reason: String?
                switch SegmentSet.succession(of: base, after: expected) {
                case .follows:
                    reason = nil
                case .missing(let gap):
                    reason = "positions \(gap.lowerBound)..<\(gap.upperBound) are missing (a segment is missing before this one)"
                case .overlaps:
                    reason = "segment overlaps the one before it, which ends at \(expected)"
                }
                if let reason {
                    report.problems.append(.init(file: directory.file(FileNames.segment(base)), offset: 0, reason: reason))
                    missing = (expected, reason)
                }
            }
            var (check, soundEnd) = verifySegment(
                base: base, isLast: isLast, nextBase: isLast ? nil : bases[i + 1], directory: directory, logID: metadata?.logID,
                interval: interval, cleanlyClosed: marker != nil,
                markerDataEnd: marker.flatMap { $0.lastSegmentBase == base ? Int($0.lastSegmentDataEnd) : nil },
                tableCovered: isLast ? tableCovered : nil, keyStoreLoss: &keyStoreLoss, checkIndexes: checkIndexes,
                report: &report)
            check.missingBefore = missing
            expected = soundEnd
            report.segmentChecks.append(check)
            progress?(VerificationProgress(segmentsChecked: i + 1, segmentCount: bases.count, eventsChecked: report.events))
        }
        if let marker, let expected, marker.endPosition != expected {
            report.problems.append(.init(
                file: directory.file(FileNames.cleanShutdown), offset: 16,
                reason: "the log ends at \(expected) but was closed at \(marker.endPosition)"))
        }
        return (report, marker)
    }

    private static func problem(_ error: EventLogError, file: String) -> VerificationProblem {
        switch error {
        case .corruption(let f, let offset, let reason): return .init(file: f, offset: offset, reason: reason)
        case .foreignFile(let f, let reason): return .init(file: f, offset: 0, reason: reason)
        case .unsupportedFormatVersion(let f, _, _): return .init(file: f, offset: 8, reason: error.description)
        case .io(let e): return .init(file: e.path, offset: 0, reason: e.description)
        default: return .init(file: file, offset: 0, reason: error.description)
        }
    }

    /// Verifies one segment and its index files; returns what it found (for
    /// `Log.repair`) and its end position (nil when damage makes it unknown).
    private static func verifySegment(
        base: UInt64, isLast: Bool, nextBase: UInt64?, directory: DirectoryOperations, logID: [UInt8]?, interval: Int,
        cleanlyClosed: Bool, markerDataEnd: Int?, tableCovered: UInt64?, keyStoreLoss: inout String?,
        checkIndexes: (Segment, DirectoryOperations, inout VerificationReport) -> Void, report: inout VerificationReport
    ) -> (check: SegmentCheck, soundEnd: UInt64?) {
        let path = directory.file(FileNames.segment(base))
        var check = SegmentCheck(base: base, isLast: isLast)
        report.segments += 1
        let file: FileHandle
        let mapping: MappedRegion
        do {
            file = try FileHandle.open(path, readOnly: true, faults: directory.faults)
            mapping = try MappedRegion.map(file, length: Int(try file.length()))
        } catch {
            report.problems.append(.init(file: path, offset: 0, reason: error.description))
            check.unreadable = error.description
            return (check, nil)
        }
        let bytes = mapping.bytes(at: 0, count: mapping.length) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        // Nothing past the checked data is read where the file has a hole (Format.md §10, "Holes").
        let readable = ReadableRegions(file: file, length: mapping.length)
        let header: SegmentHeader
        do { header = try SegmentHeader.decode(bytes, file: path, logID: logID, expectedBase: base) } catch {
            let found = problem(error, file: path)
            report.problems.append(found)
            if case .unsupportedFormatVersion = error {
                check.unreadable = found.reason
            } else if isLast, (try? Opener(path: directory.path, options: LogOptions(readOnly: true)).isInterruptedCreation(base)) == true {
                // Zeros where the header should be and nothing after: the next open removes the file (Format.md §10).
                check.recoveredByOpen = (0, "a segment whose creation a crash interrupted (the next open removes it)")
            } else {
                check.damage = SegmentDamage(offset: Int(found.offset), position: base, reason: found.reason)
            }
            return (check, nil)
        }
        check.declaredEnd = header.declaredEnd
        let entries = IndexPolicy.capacity(segmentBytes: mapping.length, interval: interval)
        let offsets = IndexBuffer<OffsetIndexEntry>(capacity: entries)
        let times = IndexBuffer<TimeIndexEntry>(capacity: entries)
        var policy = IndexPolicy(interval: interval)
        var recordProblems: [VerificationProblem] = []
        var events: UInt64 = 0
        var scratch = ByteBuffer(capacity: 0)
        // The segment's LZ4 dictionary, read once a batch needs it (Format.md §5.4).
        let dictionary = SegmentDictionary()
        var stage = LZ4DictionaryStage()  // its copy, for the segment's codec 3 batches
        var damaged = false
        var from = SegmentHeader.size
        var previousCRC = header.checksum
        var expectedBase = base
        var outcome: SegmentScanner.Outcome
        // The positions of the batches read so far, for the gaps scavenging left.
        var walked = base
        while true {
            outcome = SegmentScanner.scan(
                bytes, from: from, end: bytes.count, previousCRC: previousCRC, expectedBase: expectedBase,
                declaredEnd: header.declaredEnd, readable: readable
            ) { batch, offset in
                policy.add(
                    batch: batch, at: offset, records: batch.plainRecords(in: bytes, at: offset), segmentBase: base,
                    offsetIndex: offsets, timeIndex: times)
                events += UInt64(batch.recordCount)
                if batch.isSealed, let lost = keyStoreLoss {
                    recordProblems.append(.init(
                        file: path, offset: Int64(offset),
                        reason: "a sealed (encrypted) batch, but the log has no key store (\(lost)): its events cannot be read"))
                    keyStoreLoss = nil
                }
                if !damaged && batch.basePosition > walked { check.removedPositions.append(walked..<batch.basePosition) }
                if !damaged { walked = batch.endPosition }
                if let defect = verifyRecords(
                    of: batch, at: offset, bytes: bytes, path: path, dictionary: dictionary, scratch: &scratch, stage: &stage) {
                    recordProblems.append(.init(file: path, offset: Int64(defect.offset), reason: defect.reason))
                    check.noteDamage(SegmentDamage(offset: offset, position: batch.basePosition, reason: defect.reason))
                }
            }
            report.batches += outcome.batches
            if !damaged && from == SegmentHeader.size { check.stopPosition = outcome.endPosition }
            check.reachedPosition = max(check.reachedPosition, outcome.endPosition)
            if case .unreadable(let offset) = outcome.stop {
                report.problems.append(.init(file: path, offset: Int64(offset), reason: MappedBytes.unreadableReason))
                check.unreadable = "\(path) at byte \(offset): \(MappedBytes.unreadableReason)"
                return (check, nil)
            }
            // What the next open does where the last segment's data stops (Format.md §10).
            let verdict: StopVerdict? = isLast
                ? judgeStop(
                    at: outcome, reason: outcome.stop.invalidReason, bytes: bytes, readable: readable, base: base,
                    directory: directory, interval: interval, markerDataEnd: markerDataEnd, tableCovered: tableCovered)
                : nil
            // The open judges the first stop only: what it does there is what counts.
            if !damaged, let verdict {
                switch verdict {
                case .tornTail:
                    check.recoveredByOpen = (outcome.dataEnd, verdict.problemText ?? "")
                case .corruption(let text):
                    check.noteDamage(SegmentDamage(offset: outcome.dataEnd, position: outcome.endPosition, reason: text))
                case .endOfData:
                    break
                }
            }
            guard case .invalid(let offset, let reason) = outcome.stop else {
                // Zeros: the end of the data, unless a later batch shows otherwise (Format.md §10).
                if let defect = verdict?.problemText {
                    report.problems.append(.init(file: path, offset: Int64(outcome.dataEnd), reason: defect))
                    damaged = true
                } else if !isLast, !damaged, header.declaredEnd == nil, let nextBase, nextBase > outcome.endPosition {
                    // Data after the zeros of a sealed segment is damage, as on open; with
                    // none, the next segment is what is missing (reported with it).
                    let after = SegmentScanner.examine(
                        bytes, after: outcome.dataEnd, end: bytes.count, nextPosition: outcome.endPosition, readable: readable)
                    if let nonZero = after.firstNonZero {
                        let text = "zeros where the batch of position \(outcome.endPosition) should start, and data again at byte \(nonZero); "
                            + "the next segment starts at position \(nextBase)"
                        report.problems.append(.init(file: path, offset: Int64(outcome.dataEnd), reason: text))
                        check.noteDamage(SegmentDamage(offset: outcome.dataEnd, position: outcome.endPosition, reason: text))
                        damaged = true
                    }
                }
                break
            }
            if !isLast { check.noteDamage(SegmentDamage(offset: offset, position: outcome.endPosition, reason: reason)) }
            damaged = true
            // Resynchronise past the damaged frame when its length still leads
            // to a valid frame, so one damaged batch hides nothing after it.
            if let claimed = outcome.invalidHeader, Int(claimed.length) >= BatchHeader.size,
               offset + Int(claimed.length) < bytes.count,
               case .valid(let next) = SegmentScanner.checkAcrossHoles(
                   bytes, at: offset + Int(claimed.length), end: bytes.count, previousCRC: nil, expectedBase: nil, readable: readable)
                   ?? BatchHeader.check(
                       bytes, at: offset + Int(claimed.length), end: bytes.count, previousCRC: nil, expectedBase: nil, guarded: true) {
                report.problems.append(.init(file: path, offset: Int64(offset), reason: reason))
                from = offset + Int(claimed.length)
                previousCRC = next.previousCRC
                expectedBase = next.basePosition
                continue
            }
            report.problems.append(.init(
                file: path, offset: Int64(offset), reason: verdict?.problemText ?? (reason + " (the rest of the segment was not checked)")))
            break
        }
        report.events += events
        report.problems += recordProblems
        if let recovered = check.recoveredByOpen, let damage = check.damage, damage.offset >= recovered.offset {
            // The next open cuts from the torn tail on, this damage with it.
            check.damage = nil
        }
        if !damaged, let declaredEnd = header.declaredEnd, declaredEnd > walked {
            check.removedPositions.append(walked..<declaredEnd)
        }
        if let declaredEnd = header.declaredEnd { check.reachedPosition = max(check.reachedPosition, declaredEnd) }
        if damaged {
            // Indexes of a damaged segment cannot be compared with anything meaningful.
            return (check, nil)
        }
        let rebuilt = Segment(
            id: .next(), basePosition: base, path: path, mapping: mapping, headerCRC: header.checksum, offsetIndex: offsets,
            timeIndex: times, endPosition: header.declaredEnd ?? outcome.endPosition, dataEnd: outcome.dataEnd,
            offsetIndexCount: offsets.writtenCount, timeIndexCount: times.writtenCount, maxTimestamp: outcome.maxTimestamp,
            firstTimestamp: outcome.firstTimestamp, lastBatchOffset: outcome.lastBatchOffset, lastBatchCRC: outcome.lastBatchCRC,
            isSealed: !isLast, declaredEnd: header.declaredEnd)
        verifyIndexFiles(of: rebuilt, directory: directory, interval: interval, mustMatch: !isLast || cleanlyClosed, report: &report)
        if !isLast || cleanlyClosed {
            checkIndexes(rebuilt, directory, &report)
        }
        if isLast, let declaredEnd = header.declaredEnd {
            let text = "a rewritten segment is the last one: the segment starting at its declared end \(declaredEnd) is missing"
            report.problems.append(.init(file: path, offset: 48, reason: text))
            check.missingAfter = (declaredEnd, text)
            return (check, nil)
        }
        return (check, rebuilt.endPosition)
    }

    /// Where the last segment's data stops: what the next open does there
    /// (nothing at a plain end of the data, cut a torn tail, or refuse).
    /// Evidence of how far the data was synced is what the open weighs: the
    /// clean-shutdown marker, an intact index file and, after a crash, the
    /// stream table runs (`tableCovered`: the furthest position one reaches).
    private static func judgeStop(
        at outcome: SegmentScanner.Outcome, reason: String?, bytes: UnsafeRawBufferPointer, readable: ReadableRegions, base: UInt64,
        directory: DirectoryOperations, interval: Int, markerDataEnd: Int?, tableCovered: UInt64?
    ) -> StopVerdict {
        var evidence = SyncEvidence.recorded(
            base: base, indexFileLimit: IndexPolicy.maxIndexFileBytes(interval: interval),
            markerDataEnd: markerDataEnd, directory: directory)
        if let tableCovered, tableCovered > outcome.endPosition {
            evidence.append(SyncEvidence.streamTable(covering: tableCovered, logEnd: outcome.endPosition))
        }
        let after = SegmentScanner.examine(
            bytes, after: outcome.dataEnd, end: bytes.count, nextPosition: outcome.endPosition, readable: readable)
        return SegmentScanner.judge(
            bytes, stop: outcome.dataEnd, reason: reason, previousCRC: outcome.lastBatchCRC, nextPosition: outcome.endPosition,
            after: after, evidence: evidence, readable: readable, writerMayBeLive: true)
    }

    /// Checks each record's own checksum (the one point reads rely on).
    /// A batch compressed against its segment's dictionary (codec 3) is
    /// decompressed with it (`dictionary`: the segment's, read from `bytes`).
    private static func verifyRecords(
        of batch: BatchHeader, at offset: Int, bytes: UnsafeRawBufferPointer, path: String, dictionary: SegmentDictionary,
        scratch: inout ByteBuffer, stage: inout LZ4DictionaryStage
    ) -> RecordDefect? {
        let stored = UnsafeRawBufferPointer(rebasing: bytes[(offset + BatchHeader.size)..<(offset + Int(batch.length))])
        var area = stored
        var areaOffset = offset + BatchHeader.size
        if batch.codecValue != 0 {
            let length = Int(batch.recordsLength)
            scratch.count = 0
            scratch.reserve(length)
            let segmentDictionary: LZ4Dictionary?
            do {
                segmentDictionary = batch.usesSegmentDictionary
                    ? try dictionary.dictionary(in: bytes, path: path, forBatchAt: offset) : nil
            } catch {
                guard case .corruption(_, let at, let reason) = error else {
                    return RecordDefect(reason: "its segment's LZ4 dictionary cannot be read: \(error)", offset: offset)
                }
                return RecordDefect(reason: "its segment's LZ4 dictionary cannot be read (the first batch, at byte \(at): \(reason))", offset: offset)
            }
            do { try LZ4Units.decompress(stored, of: batch, into: scratch.base, dictionary: segmentDictionary, stage: &stage) } catch {
                return RecordDefect(reason: error.reason, offset: offset)
            }
            area = UnsafeRawBufferPointer(start: scratch.base, count: length)
            areaOffset = offset
        }
        // The type table holds (Format.md §5.3); its types are checked by
        // the checksums of the records that name them.
        let types: TypeTable
        do { types = try TypeTable.read(area, of: batch, guarded: batch.codecValue == 0) } catch {
            return RecordDefect(reason: error.reason, offset: areaOffset + error.offset)
        }
        if let defect = types.defect() { return RecordDefect(reason: defect, offset: areaOffset) }
        var at = types.length
        var position = batch.basePosition
        while position < batch.endPosition {
            do {
                let view = try Record.decode(
                    area, at: &at, position: position, firstTimestamp: batch.firstTimestamp, verify: true, types: types)
                if !view.metadataBytes.isEmpty { _ = try MetadataCoding.decode(view.metadataBytes) }
            } catch {
                return RecordDefect(reason: "event \(position): \(error.reason)", offset: batch.codecValue == 0 ? areaOffset + error.offset : offset)
            }
            position += 1
        }
        // A sealed batch's seal table follows its last record (Format.md §5.1);
        // its payloads are checked by their checksums here, by their tags when read.
        var recordsEnd = area.count
        if batch.isSealed {
            guard let table = SealTable(area: area) else {
                return RecordDefect(reason: "sealed batch has no seal table", offset: offset)
            }
            recordsEnd = table.recordsEnd
        }
        if at != recordsEnd {
            return RecordDefect(reason: "records area has \(recordsEnd - at) bytes after its last record", offset: offset)
        }
        return nil
    }

    /// Compares a segment's index files with the indexes rebuilt from its data.
    /// `mustMatch`: the files must describe the whole segment (sealed, or
    /// closed cleanly); otherwise a stale prefix (the active segment after a
    /// crash) is accepted.
    private static func verifyIndexFiles(
        of rebuilt: Segment, directory: DirectoryOperations, interval: Int, mustMatch: Bool, report: inout VerificationReport
    ) {
        let base = rebuilt.basePosition
        let offsetName = FileNames.offsetIndex(base)
        let timeName = FileNames.timeIndex(base)
        let expectedOffsets = rebuilt.offsetIndex.prefix(rebuilt.offsetIndexCount)
        let expectedTimes = rebuilt.timeIndex.prefix(rebuilt.timeIndexCount)
        let limit = IndexPolicy.maxIndexFileBytes(interval: interval)
        for name in [offsetName, timeName] {
            let path = directory.file(name)
            guard let bytes = try? directory.readWhole(name, atMost: limit) else {
                if mustMatch {
                    report.problems.append(.init(file: path, offset: 0, reason: "index file is missing (the next open rebuilds it)"))
                }
                continue
            }
            report.indexFiles += 1
            let stale = " (the next open rebuilds it)"
            do {
                let header: IndexFileHeader
                let matches: Bool
                if name == offsetName {
                    let (h, entries) = try IndexFile.decodeOffsetIndex(bytes)
                    header = h
                    matches = mustMatch ? entries == expectedOffsets : Self.agree(entries, expectedOffsets)
                } else {
                    let (h, entries) = try IndexFile.decodeTimeIndex(bytes)
                    header = h
                    matches = mustMatch ? entries == expectedTimes : Self.agree(entries, expectedTimes)
                }
                let expectedHeader = rebuilt.indexFileHeader
                if header.basePosition != base {
                    report.problems.append(.init(file: path, offset: 16, reason: "index names base position \(header.basePosition)" + stale))
                } else if mustMatch && header != expectedHeader {
                    report.problems.append(.init(file: path, offset: 16, reason: "index describes a different extent of the segment" + stale))
                } else if !matches {
                    report.problems.append(.init(file: path, offset: Int64(IndexFileHeader.size), reason: "index entries differ from the log" + stale))
                }
            } catch {
                report.problems.append(.init(file: path, offset: error.offset, reason: "index file unusable: \(error.reason)" + stale))
            }
        }
    }

    /// The last segment's index file after a crash, or beside a live writer,
    /// may describe less than the data (a checkpoint: it lags) or more (a
    /// writer appended and checkpointed after the data was read here): its
    /// entries and the ones rebuilt here must agree as far as both go.
    static func agree<Entry: Equatable>(_ stored: [Entry], _ rebuilt: [Entry]) -> Bool {
        let common = min(stored.count, rebuilt.count)
        return stored[..<common] == rebuilt[..<common]
    }
}
