extension Log {
    /// `verify(at:progress:)`, and with `deep` the checks of `eventlog verify
    /// --deep` after it, on the log opened read-only (skipped, with a note,
    /// when it does not open):
    /// - every record's invariants beyond its checksum: its timestamp within
    ///   its batch's (at most the max timestamp, which one record reaches;
    ///   the first one's the batch's first timestamp, except in a segment
    ///   scavenging rewrote), an event type that does not start with `$`, a
    ///   marker without key, tombstone or metadata, and versions that grow
    ///   within each stream (without gaps, and a marker's equal to its
    ///   stream's next version, in a log from position 0 that scavenging
    ///   did not rewrite);
    /// - the stream table runs against a replay of the log (Format.md §14.3),
    ///   where a replay is valid: the log starts at 0 (once retention moved
    ///   the start, the runs are the only record of the removed streams); in
    ///   a scavenged log only what the markers carry (next version, truncation, deletion, limits);
    /// - every cursor (consumer groups' too) at or before the log's end and
    ///   not below its start, and every parked event in the log.
    /// The offset, time and stream index files are compared with indexes
    /// rebuilt from the segments by the plain checks already.
    ///
    /// An encrypted log's deep checks need its master key (`encryption`;
    /// without it they are left out, with a note): every sealed batch is
    /// then opened, so each seal group's tag is checked too, and one that
    /// does not open (`sealBroken`) or names a data key the key store lacks
    /// (`dataKeyMissing`) is a problem naming its file and offset.
    public static func verify(
        at path: String, deep: Bool, encryption: LogEncryption? = nil, progress: ((VerificationProgress) -> Void)? = nil
    ) throws -> VerificationReport {
        var report = try verify(at: path, progress: progress)
        guard deep else { return report }
        report.deep = true
        var options = LogOptions(createIfMissing: false, readOnly: true)
        options.maintenanceInterval = nil
        options.encryption = encryption
        let log: Log
        do { log = try Log.open(at: path, options: options) } catch {
            report.notes.append("the deep checks did not run: the log does not open read-only (\(error))")
            return report
        }
        defer { try? log.close() }
        let snapshot = log.batches.snapshot()
        var segments: [Segment] = snapshot.sealed
        if let active = snapshot.active { segments.append(active) }
        let scavenged = segments.contains { $0.declaredEnd != nil }
        let start = snapshot.startPosition
        let end = snapshot.endPosition

        // 1. Records.
        do {
            var check = RecordInvariants(exactVersions: start == 0 && !scavenged)
            let rewritten = Set(segments.filter { $0.declaredEnd != nil }.map { FileNames.segment($0.basePosition) })
            var segmentsDone = 0
            var currentSegment = ""
            try log.readBatches(from: start, { batch in
                if let problem = check.closeBatch() { report.problems.append(problem) }
                if batch.segment != currentSegment {
                    if !currentSegment.isEmpty {
                        segmentsDone += 1
                        progress?(VerificationProgress(
                            segmentsChecked: segmentsDone, segmentCount: segments.count, eventsChecked: check.records, deep: true))
                    }
                    currentSegment = batch.segment
                }
                check.open(batch, file: log.batches.directory.file(batch.segment), rewritten: rewritten.contains(batch.segment))
            }, events: { event in
                if let problem = check.check(event) { report.problems.append(problem) }
            })
            if let problem = check.closeBatch() { report.problems.append(problem) }
            progress?(VerificationProgress(segmentsChecked: segments.count, segmentCount: segments.count, eventsChecked: check.records, deep: true))
        } catch EventLogError.sealBroken(let file, let offset, let keyID) {
            report.problems.append(.init(
                file: file, offset: offset, reason: "the seal of data key \(keyID) does not open: changed together with its checksum, or sealed under another key"))
            report.notes.append("the record checks stopped at that batch")
        } catch EventLogError.dataKeyMissing(let file, let offset, let keyID) {
            report.problems.append(.init(file: file, offset: offset, reason: "the batch names data key \(keyID), which the key store does not hold"))
            report.notes.append("the record checks stopped at that batch")
        } catch {
            report.notes.append("the record checks stopped: \(error)")
        }

        // 2. The stream table against a replay.
        if start == 0 {
            do {
                let (problems, covered) = try StreamTableCheck.compare(
                    segments: segments, end: end, scavenged: scavenged, directory: log.batches.directory,
                    hashMask: log.options.streamHashMask, keys: snapshot.keys)
                report.problems += problems
                if covered == 0 { report.notes.append("no stream table run to compare with a replay of the log") }
                report.streamsCompared = try log.streams.table.states { _ in true }.count
            } catch {
                report.notes.append("the stream table was not compared: \(error)")
            }
        } else {
            report.notes.append(
                "the stream table was not compared with a replay: the log starts at \(start), and the runs are the only record of the streams before it")
        }

        // 3. Cursors and consumer groups.
        let cursors = CursorCheck.check(log.consumers.store, start: start, end: end)
        report.cursorsChecked = log.consumers.store.snapshot.cursors.count
        report.problems += cursors.problems
        report.notes += cursors.notes
        return report
    }
}

/// `verify --deep`'s record checks, fed batch by batch and record by record.
struct RecordInvariants {
    /// Versions have no gaps and markers carry their stream's next version (a log from 0, not scavenged).
    let exactVersions: Bool
    private(set) var records: UInt64 = 0
    /// Each stream's next version, as far as the records read so far tell.
    private var next: [String: UInt64] = [:]
    private var batch: BatchInfo?
    private var file = ""
    private var rewritten = false
    private var index = 0
    private var maxSeen = Timestamp.min

    init(exactVersions: Bool) { self.exactVersions = exactVersions }

    mutating func open(_ batch: BatchInfo, file: String, rewritten: Bool) {
        self.batch = batch
        self.file = file
        self.rewritten = rewritten
        index = 0
        maxSeen = .min
    }

    /// The check of the batch just read: its max timestamp is one of its records'.
    mutating func closeBatch() -> VerificationProblem? {
        guard let batch else { return nil }
        self.batch = nil
        guard index == batch.recordCount, maxSeen != batch.maxTimestamp else { return nil }
        return VerificationProblem(
            file: file, offset: Int64(batch.offset),
            reason: "batch \(batch.basePosition): its max timestamp \(batch.maxTimestamp) is not its largest record timestamp \(maxSeen)")
    }

    mutating func check(_ event: EventView) -> VerificationProblem? {
        records += 1
        guard let batch else { return nil }
        defer { index += 1 }
        maxSeen = max(maxSeen, event.timestamp)
        func problem(_ reason: String) -> VerificationProblem {
            VerificationProblem(file: file, offset: Int64(batch.offset), reason: "event \(event.position): " + reason)
        }
        if event.timestamp > batch.maxTimestamp {
            return problem("timestamp \(event.timestamp) is after its batch's max timestamp \(batch.maxTimestamp)")
        }
        if index == 0, !rewritten, event.timestamp != batch.firstTimestamp {
            return problem("timestamp \(event.timestamp) differs from its batch's first timestamp \(batch.firstTimestamp)")
        }
        if event.isMarker {
            if !event.keyBytes.isEmpty || event.isTombstone || !event.metadataBytes.isEmpty {
                return problem("a stream marker with a key, a tombstone flag or metadata")
            }
        } else if event.typeBytes.first == UInt8(ascii: "$") {
            return problem("an event type starting with $ (reserved for stream markers) on an event that is not a marker")
        }
        let stream = event.stream
        let expected = next[stream]
        if event.isMarker {
            if exactVersions, event.version != (expected ?? 0) {
                return problem("marker of stream \(stream) carries version \(event.version), the stream's next version is \(expected ?? 0)")
            }
            next[stream] = max(expected ?? 0, event.version)
        } else {
            if let expected, event.version < expected {
                return problem("stream \(stream) version \(event.version) after version \(expected - 1): versions only grow")
            }
            if exactVersions, event.version != (expected ?? 0) {
                return problem("stream \(stream) version \(event.version) where its next version is \(expected ?? 0): versions have no gaps")
            }
            next[stream] = event.version + 1
        }
        return nil
    }
}
