#if canImport(Glibc)
import Glibc
#endif
import struct Foundation.UUID

/// What an open found, handed to the layers above (`BatchLog.open`'s
/// `prepare`) after every check of the segments passed and before the open
/// changes any file: they open their own state (stream index, cursors) on
/// it, and may still refuse the open.
struct OpenedSegments {
    let metadata: LogMetadata
    /// Every segment, oldest first (the last one is the active segment).
    var segments: [Segment]
    /// The position after the last event.
    var endPosition: UInt64
    /// The stream table runs found once (evidence for Format.md §10); nil when not looked for yet.
    var streamTableRuns: (runs: [StreamTableRunView], unusable: [String])?
    /// What the open found and did, for the layers above to add to.
    var report: RecoveryReport
    /// An encrypted log's keys (nil for a plain log): a replay that needs
    /// sealed fields (the event ids of the stream table's last appends)
    /// opens sealed batches with them.
    var keys: (any SealKeys)? = nil
}

extension BatchLog {
    /// Opens the ordered log in `path`, creating it when missing (unless
    /// `options.createIfMissing` is false or the log is opened read-only);
    /// `Log.open` says what it checks and repairs. `prepare` is the layers
    /// above: it runs after every check and before any change.
    /// Returns the log with what `prepare` opened.
    static func open<Upper>(
        at path: String, options: LogOptions, prepare: (inout OpenedSegments) throws -> Upper
    ) throws -> (BatchLog, Upper) {
        var opener = Opener(path: path, options: options)
        return try opener.open(prepare: prepare)
    }
}

/// The steps of opening the ordered log, one method each.
struct Opener {
    let path: String
    let options: LogOptions
    let directory: DirectoryOperations
    var report = RecoveryReport()
    /// The stream table runs as found once by an open after a crash (evidence for §10, then used).
    var streamTableRuns: (runs: [StreamTableRunView], unusable: [String])?
    var readOnly: Bool { options.readOnly }

    init(path: String, options: LogOptions) {
        self.path = path
        self.options = options
        self.directory = DirectoryOperations(path: path, faults: options.storageFaults, modes: options.createModes)
    }

    mutating func open<Upper>(prepare: (inout OpenedSegments) throws -> Upper) throws -> (BatchLog, Upper) {
        if !DirectoryOperations.isDirectory(path) {
            if readOnly || !options.createIfMissing { throw EventLogError.notFound(path: path) }
            try DirectoryOperations.createIfMissing(path, modes: directory.modes)
        }
        // Before anything is read or written: no other user may have changed the log.
        if let (path, mode) = directory.writableByOthers(among: try directory.list()) {
            throw EventLogError.insecurePermissions(path: path, mode: UInt32(mode))
        }
        var lockFile: FileHandle?
        if !readOnly {
            // A repair hands over the lock it holds, so no other writer opens the log in between.
            lockFile = try options.heldWriterLock ?? Self.lockForWriting(directory)
        }
        // Read-only, the stream table runs are read before the segments are
        // listed: a live writer writes a run once the segments holding its
        // positions exist, so every run read covers segments the listing
        // finds. (Read after it, a run written just after a roll would seem
        // to cover positions missing from the log: damage, to the judgement
        // of the last segment.) A writer holds the lock: nothing changes.
        let earlyRunsCovered = readOnly ? try streamTableCoveredPosition() : nil
        var names = try directory.list()
        var bases = SegmentSet.bases(in: names)
        // First, before anything is removed: a log of a version this build
        // may not write is refused without a change.
        var metadata = try loadOrCreateMetadata(segmentsExist: !bases.isEmpty, firstSegment: bases.first)
        // An encrypted log's keys (Format.md §16): a wrong master key is refused before anything changes.
        let keyRing = try loadOrCreateKeys(exists: names.contains(FileNames.keyStore), segmentsExist: !bases.isEmpty, metadata: metadata)
        if !readOnly {
            // Then, before anything else changes: a segment merge under way
            // is finished or undone (Format.md §4.2), before its temporary file could go.
            if let (merge, removed) = try MergeSwap.recover(in: directory) {
                report.pendingMerge = merge
                report.removedFiles += removed
                names = try directory.list()
                bases = SegmentSet.bases(in: names)
            }
        } else {
            // A reader changes nothing: the segments a committed merge replaced are left out.
            let mergedAway = try MergeSwap.mergedAway(in: directory)
            bases.removeAll { mergedAway.contains($0) }
        }
        if !readOnly {
            for name in names where name.hasSuffix(".tmp") {
                try directory.remove(name)
                report.removedFiles.append(name)
            }
        }

        // The marker stays until every check below has passed: an open that
        // fails leaves the evidence in place, so every retry fails the same way.
        let marker = try CleanShutdownMarker.read(in: directory)
        // Damaged files no open needs (a damaged marker counts as an unclean shutdown): reported, not refused.
        for damaged in ConfinedFiles.damage(in: directory) {
            report.damagedFiles.append(damaged)
            options.logger.warning(
                "a file no open needs is damaged; going on without it",
                metadata: ["file": "\(damaged.file)", "offset": "\(damaged.offset)", "reason": "\(damaged.reason)"])
        }
        if report.previousShutdown != .newLog {
            report.previousShutdown = marker.map { .clean(at: $0.closedAt) } ?? .unclean
        }
        // After a clean shutdown the marker is the evidence; after a crash, the stream table too.
        let tableCovered = marker == nil ? (readOnly ? earlyRunsCovered : try streamTableCoveredPosition()) : nil

        var interrupted: UInt64?
        if let last = bases.last, try isInterruptedCreation(last) {
            // A crash between creating a segment file and syncing its header:
            // no batch was ever written to it (Format.md §10).
            interrupted = last
            bases.removeLast()
        }
        let start = try loadOrCreateStart(firstSegment: bases.first, metadata: metadata)
        // Segments below the start that a crash kept retention from
        // unlinking: a writer removes them below; a reader ignores them.
        let belowStart: [UInt64]
        (bases, belowStart) = SegmentSet.leftoversOfRetention(in: bases, start: start)
        if let first = bases.first {
            switch SegmentSet.succession(of: first, after: start) {
            case .follows: break
            case .missing:
                throw EventLogError.missingSegment(expectedBasePosition: start, found: FileNames.segment(first))
            case .overlaps:
                throw EventLogError.corruption(
                    file: directory.file(FileNames.segment(first)), offset: 32,
                    reason: "segment starts at position \(first), before the log start position \(start) that \(FileNames.logStart) records")
            }
        }

        var segments: [Segment] = []
        var lastFile: FileHandle?
        var lastSyncedEnd = SegmentHeader.size
        for (i, base) in bases.enumerated() {
            if let previous = segments.last {
                switch SegmentSet.succession(of: base, after: previous.endPosition) {
                case .follows: break
                case .missing:
                    throw EventLogError.missingSegment(expectedBasePosition: previous.endPosition, found: FileNames.segment(base))
                case .overlaps:
                    throw EventLogError.corruption(
                        file: directory.file(FileNames.segment(base)), offset: 0,
                        reason: "segment starts at position \(base) but the one before it ends at \(previous.endPosition)")
                }
            }
            let isLast = i == bases.count - 1
            let opened = try openSegment(
                base: base, isLast: isLast, nextBase: isLast ? nil : bases[i + 1], metadata: metadata,
                marker: isLast ? marker : nil, tableCovered: isLast ? tableCovered : nil)
            segments.append(opened.segment)
            if isLast {
                lastFile = opened.file
                lastSyncedEnd = opened.syncedEnd
            }
        }
        let end = segments.last?.endPosition ?? start
        if let marker, marker.endPosition > end {
            throw EventLogError.missingSegment(
                expectedBasePosition: end,
                found: "a log ending at \(end); the clean-shutdown marker says it ended at \(marker.endPosition)")
        }
        if segments.isEmpty, let tableCovered, tableCovered > end {
            throw EventLogError.missingSegment(
                expectedBasePosition: end,
                found: "no segment; a stream table run covers positions up to \(tableCovered)")
        }

        // The layers above open their state; they may still refuse the open.
        var opened = OpenedSegments(
            metadata: metadata, segments: segments, endPosition: end, streamTableRuns: streamTableRuns, report: report, keys: keyRing)
        let upper = try prepare(&opened)
        report = opened.report

        if readOnly {
            let state = WriterState(
                active: try placeholderActive(segments: segments, metadata: metadata),
                encodeBuffer: ByteBuffer(capacity: 64), compressBuffer: ByteBuffer(capacity: 64))
            var snapshot = LogSnapshot(sealed: Array(segments.dropLast()), active: segments.last)
            snapshot.keys = keyRing
            let log = BatchLog(
                path: path, options: options, directory: directory, metadata: metadata, writer: state,
                snapshot: snapshot, lockFile: nil, recovery: report, keyRing: keyRing)
            return (log, upper)
        }

        // Every check passed: from here on the open changes files.
        try keyRing?.openForWriting()
        if metadata.readVersion < FormatVersion.current {
            // A log of an older read version, read as it is; a writer
            // upgrades it (Format.md §12, "Upgrade"): from here on, builds
            // that know only the older version refuse it.
            var upgraded = metadata
            upgraded.readVersion = FormatVersion.current
            upgraded.storedWriteVersion = 0
            try directory.writeAtomically(FileNames.metadata, bytes: upgraded.encode())
            report.upgradedFromVersion = Int(metadata.readVersion)
            metadata = upgraded
        }
        if let interrupted {
            try directory.remove(FileNames.segment(interrupted))
            report.removedFiles.append(FileNames.segment(interrupted))
        }
        if !belowStart.isEmpty {
            report.removedFiles += try SegmentSet.removeFiles(ofSegments: belowStart, present: Set(names), in: directory)
            try directory.sync()
        }
        if names.contains(FileNames.cleanShutdown) {
            // Gone before the first write: a crash from here on is unclean.
            try directory.remove(FileNames.cleanShutdown)
        }

        var active: ActiveSegment
        var unsynced = 0
        if let last = segments.last, let lastFile {
            segments.removeLast()
            active = ActiveSegment(
                snapshot: last, file: lastFile, capacity: last.mapping.length,
                indexPolicy: IndexPolicy(resuming: last, interval: Int(metadata.indexInterval)),
                createdAt: (try? segmentCreatedAt(last)) ?? currentTimestamp(), writebackStart: last.dataEnd)
            active.snapshot.isSealed = false
            unsynced = max(0, last.dataEnd - lastSyncedEnd)
            if unsynced > 0 && options.durability == .always {
                // A crashed process's batches may be only in the page cache:
                // readers of a .always log see only what is on disk.
                try lastFile.datasync()
                unsynced = 0
            }
        } else {
            active = try ActiveSegment.create(
                base: interrupted ?? start, capacity: options.segmentBytes, indexInterval: Int(metadata.indexInterval),
                logID: metadata.logID, directory: directory)
        }
        var state = WriterState(
            active: active, encodeBuffer: ByteBuffer(capacity: 1 << 20), compressBuffer: ByteBuffer(capacity: 64))
        // The recovered tail not known to be on disk counts as written and
        // unsynced: the first sync covers it, and no batch claims it synced before.
        state.writtenSequence = UInt64(unsynced)
        let file = state.active.file
        var snapshot = LogSnapshot(sealed: segments, active: state.active.snapshot, sequence: UInt64(unsynced))
        snapshot.keys = keyRing
        let log = BatchLog(
            path: path, options: options, directory: directory, metadata: metadata, writer: state,
            snapshot: snapshot, lockFile: lockFile, recovery: report, keyRing: keyRing)
        log.groupCommit.begin(unsyncedBytes: UInt64(unsynced), file: file)
        return (log, upper)
    }

    /// Takes the writer lock of the log in `directory` (`flock` on
    /// `eventlog.lock`, created when missing), as every process that changes
    /// the log's files does. Throws `locked` when another holds it.
    static func lockForWriting(_ directory: DirectoryOperations) throws -> FileHandle {
        let lock = try FileHandle.open(directory.file(FileNames.lock), create: directory.modes, faults: directory.faults)
        // A lock can be held for a moment by a child process this one is
        // spawning (it shares our file descriptions until its exec closes
        // them), so a refusal is retried for up to 100 ms before it counts;
        // for longer while a log this process released without close() still
        // holds it (its background work ends by itself: ReleasedWriterLocks).
        let start = ContinuousClock.now
        var attempts = 0
        while try !lock.tryLockExclusive() {
            attempts += 1
            if attempts >= 50 {
                guard ReleasedWriterLocks.holds(try lock.identity()),
                    ContinuousClock.now - start < ReleasedWriterLocks.maximumWait
                else { throw EventLogError.locked(path: directory.path) }
            }
            usleep(2000)
        }
        return lock
    }

    // MARK: Metadata

    /// The log's metadata. When `eventlog.meta` is damaged or missing but
    /// segments exist, a reader (read-only, without cursor commits) rebuilds
    /// it in memory from the first segment's header and reports the damage
    /// (Format.md §10.2); a writer refuses, naming `eventlog repair`.
    mutating func loadOrCreateMetadata(segmentsExist: Bool, firstSegment: UInt64?) throws -> LogMetadata {
        let file = directory.file(FileNames.metadata)
        let readsOnly = readOnly && !options.allowsCursorCommits
        let advice = "; the events are intact: run eventlog repair, which rebuilds it from the segment headers"
        var damage: RecoveryReport.DamagedFile?
        switch try LogMetadata.read(in: directory, writing: !readOnly || options.allowsCursorCommits) {
        case .success(let metadata?):
            report.previousShutdown = .unclean  // refined once the marker is read
            return metadata
        case .success(nil):
            break
        case .failure(let found):
            guard segmentsExist else { throw found.error }
            if !readsOnly { throw found.advising(advice) }
            damage = .init(file: file, offset: found.offset, reason: found.reason)
        }
        if segmentsExist, let base = firstSegment {
            if !readsOnly {  // a writer refused damage above: this file is missing
                throw EventLogError.corruption(file: file, offset: 0, reason: "the log metadata file is missing but segments exist" + advice)
            }
            let metadata = try LogMetadata.rebuilt(
                fromSegment: directory.file(FileNames.segment(base)), segmentBytes: options.segmentBytes,
                indexInterval: options.indexInterval, compression: options.compression)
            report.damagedFiles.append(damage ?? .init(file: file, offset: 0, reason: "the log metadata file is missing"))
            report.previousShutdown = .unclean
            options.logger.warning(
                "the log metadata file is damaged or missing; read with the log id of the segment headers",
                metadata: ["file": "\(file)"])
            return metadata
        }
        if readOnly { throw EventLogError.notFound(path: path) }
        let id = UUID().uuid
        let metadata = LogMetadata(
            logID: withUnsafeBytes(of: id) { Array($0) }, createdAt: currentTimestamp(),
            segmentBytes: UInt32(options.segmentBytes), indexInterval: UInt32(options.indexInterval),
            compression: options.compression)
        try directory.writeAtomically(FileNames.metadata, bytes: metadata.encode())
        report.previousShutdown = .newLog
        return metadata
    }

    // MARK: Keys

    /// The key ring of an encrypted log (Format.md §16): loaded with the
    /// master key of `LogOptions.encryption`, or created with the log (a
    /// writer's open of a log without segments yet). Nil for a plain log.
    /// A log and its options must agree: encrypted or not.
    mutating func loadOrCreateKeys(exists: Bool, segmentsExist: Bool, metadata: LogMetadata) throws -> KeyRing? {
        if exists {
            guard let encryption = options.encryption else {
                throw EventLogError.encryptionMismatch(
                    path: path, reason: "the log is encrypted: open it with its master key (LogOptions.encryption; the eventlog command reads EVENTLOG_MASTER_KEY_FILE or EVENTLOG_MASTER_KEY)")
            }
            return try KeyRing.load(in: directory, logID: metadata.logID, provider: encryption.keyProvider)
        }
        guard let encryption = options.encryption else { return nil }
        guard !segmentsExist, !readOnly else {
            throw EventLogError.encryptionMismatch(
                path: path,
                reason: "the log has no key store (eventlog.keys): it was created without encryption (which is chosen when a log is created), or its key store was lost, and with it every sealed event")
        }
        return try KeyRing.create(in: directory, logID: metadata.logID, encryption: encryption)
    }

    // MARK: Log start

    /// The log start position (Format.md §3.1). A log without the file
    /// (made before it existed, or a crash between writing the metadata and
    /// it) starts at 0. A damaged file, or a missing one while the first
    /// segment starts past 0 in a log of format version 3 on (which has the
    /// file from before its first segment), is damage (§10.2): a reader
    /// (read-only, without cursor commits) starts at the first segment and
    /// reports the file; a writer refuses, naming `eventlog repair`.
    mutating func loadOrCreateStart(firstSegment: UInt64?, metadata: LogMetadata) throws -> UInt64 {
        let file = directory.file(FileNames.logStart)
        let readsOnly = readOnly && !options.allowsCursorCommits
        let advice = "; the events are intact: run eventlog repair, which writes it again with the first segment's base position"
        do {
            if let start = try LogStart.read(in: directory) { return start.startPosition }
        } catch let error as EventLogError {
            guard let damage = FileDamage(error), let first = firstSegment else { throw error }
            if !readsOnly { throw damage.advising(advice) }
            report.damagedFiles.append(.init(file: file, offset: damage.offset, reason: damage.reason))
            options.logger.warning("the log start file is damaged; read from the first segment", metadata: ["file": "\(file)"])
            return first
        }
        if let first = firstSegment, first > 0, metadata.readVersion >= LogStart.firstVersion {
            let reason = Self.missingStartReason(firstSegment: first)
            if !readsOnly { throw EventLogError.corruption(file: file, offset: 0, reason: reason + advice) }
            report.damagedFiles.append(.init(file: file, offset: 0, reason: reason))
            options.logger.warning("the log start file is missing; read from the first segment", metadata: ["file": "\(file)"])
            return first
        }
        if !readOnly { try LogStart(startPosition: 0, writtenAt: currentTimestamp()).write(in: directory) }
        return 0
    }

    /// Why a missing `eventlog.start` is damage when the first segment starts at `first` (Format.md §3.1).
    static func missingStartReason(firstSegment first: UInt64) -> String {
        "the log start file is missing, but the first segment starts at position \(first), and a log of format version "
            + "\(LogStart.firstVersion) on has the file from before its first segment"
    }

    /// The furthest position a usable stream table run reaches: runs are
    /// written only after the data they cover was synced, so every position
    /// before it was on disk (evidence for §10).
    mutating func streamTableCoveredPosition() throws -> UInt64? {
        let found = StreamTableRunChain.openAll(in: directory)
        streamTableRuns = found  // the stream layer takes them from here
        return found.runs.map(\.to).max()
    }

    // MARK: Segments

    /// True when the last segment file is a creation a crash interrupted: shorter
    /// than a header or with an all-zero header, and not one byte after the
    /// header that is not zero. A segment's header is synced before the file
    /// is used, so a file that holds anything else is damaged, not unfinished.
    func isInterruptedCreation(_ base: UInt64) throws -> Bool {
        let path = directory.file(FileNames.segment(base))
        let file = try FileHandle.open(path, readOnly: true, faults: options.storageFaults)
        let length = Int(try file.length())
        let mapping = try MappedRegion.map(file, length: length)
        guard let bytes = mapping.bytes(at: 0, count: length) else { return length == 0 }
        let headerBytes = min(length, SegmentHeader.size)
        guard UnsafeRawBufferPointer(rebasing: bytes[0..<headerBytes]).allSatisfy({ $0 == 0 }) else { return false }
        let readable = ReadableRegions(file: file, length: length)
        var at = headerBytes
        while let region = readable.region(atOrAfter: at) {
            let to = region.upperBound
            if let nonZero = UnsafeRawBufferPointer(rebasing: bytes[region]).firstIndex(where: { $0 != 0 }) {
                throw EventLogError.corruption(
                    file: path, offset: 0,
                    reason: "the segment header is zeros but the file holds data (first at byte \(region.lowerBound + nonZero)): damage, not an unfinished creation")
            }
            at = to
        }
        return true
    }

    struct OpenedSegment {
        var segment: Segment
        var file: FileHandle
        /// Bytes before this offset are known to be on disk (Format.md §10).
        var syncedEnd: Int
    }

    /// Opens, maps and checks one segment, loading its indexes or rebuilding
    /// them; for the last one, judges where its data stops (Format.md §10).
    ///
    /// Read-only, the last segment may be written by a live writer while it
    /// is judged: the scan can stop at zeros where the writer had not yet
    /// written, and the look past them then find the batches it wrote
    /// meanwhile, which reads as damage. The writer writes in order, so once
    /// the look has seen a later batch, the bytes at the stop are written:
    /// a stop where a valid batch stands when judged is the end of the data
    /// known (`SegmentScanner.judge`), and only a stop still
    /// invalid then is weighed as damage. An open that still fails (a
    /// segment the writer is just creating) is tried once more. (A read-only
    /// process is woken by the writer's writes, `AppendWatch`, so it often
    /// scans just as the writer writes.)
    mutating func openSegment(
        base: UInt64, isLast: Bool, nextBase: UInt64?, metadata: LogMetadata, marker: CleanShutdownMarker?,
        tableCovered: UInt64?
    ) throws -> OpenedSegment {
        guard readOnly && isLast else {
            return try openSegmentOnce(
                base: base, isLast: isLast, nextBase: nextBase, metadata: metadata, marker: marker, tableCovered: tableCovered)
        }
        let reportBefore = report
        do {
            return try openSegmentOnce(
                base: base, isLast: isLast, nextBase: nextBase, metadata: metadata, marker: marker, tableCovered: tableCovered)
        } catch EventLogError.corruption {
            report = reportBefore
            return try openSegmentOnce(
                base: base, isLast: isLast, nextBase: nextBase, metadata: metadata, marker: marker, tableCovered: tableCovered)
        }
    }

    private mutating func openSegmentOnce(
        base: UInt64, isLast: Bool, nextBase: UInt64?, metadata: LogMetadata, marker: CleanShutdownMarker?,
        tableCovered: UInt64?
    ) throws -> OpenedSegment {
        let name = FileNames.segment(base)
        let path = directory.file(name)
        let file = try FileHandle.open(path, readOnly: readOnly || !isLast, faults: options.storageFaults)
        let length = Int(try file.length())
        let mapping = try MappedRegion.map(file, length: length)
        // The header and the last batch the index files name are read alone: an open reads a bounded amount
        // of each segment, not the device's read-ahead around each (the scan below reads around again).
        mapping.advise(.random)
        let bytes = mapping.bytes(at: 0, count: length) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let header = try SegmentHeader.decode(bytes, file: path, logID: metadata.logID, expectedBase: base)
        let headerCRC = header.checksum
        if isLast, let declaredEnd = header.declaredEnd {
            // Only sealed segments are rewritten, and the active one follows.
            throw EventLogError.missingSegment(
                expectedBasePosition: declaredEnd, found: "\(name), a rewritten segment, as the last one")
        }
        let interval = Int(metadata.indexInterval)
        // Nothing past the checked data is read where the file has a hole (Format.md §10, "Holes").
        let readable = ReadableRegions(file: file, length: length)

        // The index files are a checkpoint: trusted only as far as the data confirms them.
        let loaded = try? IndexCheckpoint.load(
            base: base, declaredEnd: header.declaredEnd, bytes: bytes, length: length, headerCRC: headerCRC, readable: readable,
            directory: directory, interval: interval
        ).get()
        // A sealed segment resumed from its index files needs room only for
        // what lies past them; the last one for what its whole file can hold.
        let capacity = if let loaded, !isLast {
            loaded.offsets.count + IndexPolicy.capacity(segmentBytes: length - Int(loaded.header.dataEnd), interval: interval)
        } else {
            max(
                IndexPolicy.capacity(segmentBytes: length, interval: interval),
                (loaded?.offsets.count ?? 0) + (length - Int(loaded?.header.dataEnd ?? 0)) / interval + 2)
        }
        var segment = Segment(
            id: .next(), basePosition: base, path: path, mapping: mapping, headerCRC: headerCRC,
            offsetIndex: IndexBuffer(capacity: capacity), timeIndex: IndexBuffer(capacity: capacity),
            endPosition: base, dataEnd: SegmentHeader.size, offsetIndexCount: 0, timeIndexCount: 0,
            maxTimestamp: .min, firstTimestamp: nil, lastBatchOffset: 0, lastBatchCRC: headerCRC, isSealed: !isLast)
        if let loaded {
            for e in loaded.offsets { segment.offsetIndex.append(e) }
            for e in loaded.times { segment.timeIndex.append(e) }
            segment.endPosition = loaded.header.endPosition
            segment.dataEnd = Int(loaded.header.dataEnd)
            segment.lastBatchOffset = Int(loaded.header.lastBatchOffset)
            segment.lastBatchCRC = loaded.header.lastBatchCRC
            segment.maxTimestamp = loaded.header.maxTimestamp
            segment.firstTimestamp = loaded.header.dataEnd == UInt32(SegmentHeader.size) ? nil : loaded.header.firstTimestamp
        }
        var policy = IndexPolicy(resuming: segment, interval: interval)

        let from = segment.dataEnd
        // A sealed segment resumed from its index files ends at once; any other scan walks the data.
        if loaded == nil || isLast { mapping.advise(.normal) }
        var syncedByBatches = SegmentHeader.size
        let racedByWriter = readOnly && isLast
        if racedByWriter { options.tailRace?(.beforeScan, path) }
        let outcome = SegmentScanner.scan(
            bytes, from: from, end: length, previousCRC: segment.lastBatchCRC, expectedBase: segment.endPosition,
            declaredEnd: header.declaredEnd, lastBatchOffset: segment.lastBatchOffset, readable: readable
        ) { batch, offset in
            policy.add(
                batch: batch, at: offset, records: batch.plainRecords(in: bytes, at: offset), segmentBase: base,
                offsetIndex: segment.offsetIndex, timeIndex: segment.timeIndex)
            if let synced = batch.syncedEnd(frameOffset: offset), synced > syncedByBatches { syncedByBatches = synced }
        }
        if case .unreadable(let offset) = outcome.stop {
            throw EventLogError.corruption(file: path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
        }
        if isLast { report.scannedBytes += outcome.dataEnd - from }
        segment.extend(with: outcome)
        if !isLast { segment = segment.sealed() }
        segment.fileIdentity = try? file.identity()
        if let declaredEnd = header.declaredEnd {
            // A rewritten segment ends where it says, whatever survived in it.
            segment.endPosition = declaredEnd
            segment.declaredEnd = declaredEnd
        }

        var syncedEnd = max(syncedByBatches, loaded.map { Int($0.header.dataEnd) } ?? SegmentHeader.size)
        let closedHere = marker.map { $0.lastSegmentBase == base && Int($0.lastSegmentDataEnd) == outcome.dataEnd } ?? false
        if isLast && closedHere && outcome.stop == .endOfData {
            // A clean shutdown, and the data ends where close() said: nothing to judge.
            syncedEnd = outcome.dataEnd
        } else if isLast {
            var evidence = SyncEvidence.recorded(
                base: base, indexFileLimit: IndexPolicy.maxIndexFileBytes(interval: interval), markerDataEnd: marker.flatMap { $0.lastSegmentBase == base ? Int($0.lastSegmentDataEnd) : nil },
                directory: directory)
            if let tableCovered, tableCovered > outcome.endPosition {
                evidence.append(SyncEvidence.streamTable(covering: tableCovered, logEnd: outcome.endPosition))
            }
            let stopReason = outcome.stop.invalidReason
            let after = SegmentScanner.examine(
                bytes, after: outcome.dataEnd, end: length, nextPosition: outcome.endPosition, readable: readable)
            if racedByWriter { options.tailRace?(.afterLook, path) }
            let verdict = SegmentScanner.judge(
                bytes, stop: outcome.dataEnd, reason: stopReason, previousCRC: outcome.lastBatchCRC, nextPosition: outcome.endPosition,
                after: after, evidence: evidence, readable: readable, writerMayBeLive: readOnly)
            switch verdict {
            case .endOfData:
                break
            case .corruption(let reason):
                throw EventLogError.corruption(file: path, offset: Int64(outcome.dataEnd), reason: reason)
            case .tornTail(let reason):
                let offset = outcome.dataEnd
                report.tailCut = (file: path, offset: Int64(offset), reason: reason)
                options.logger.warning("cut a torn tail", metadata: ["file": "\(path)", "offset": "\(offset)", "reason": "\(reason)"])
                if !readOnly {
                    try file.zeroRange(at: Int64(offset), length: Int64(length - offset))
                    try file.datasync()
                    syncedEnd = offset  // the sync covered the whole file
                }
            }
            if let marker, marker.lastSegmentBase == base { syncedEnd = max(syncedEnd, Int(marker.lastSegmentDataEnd)) }
        } else {
            if case .invalid(let offset, let reason) = outcome.stop {
                throw EventLogError.corruption(file: path, offset: Int64(offset), reason: reason)
            }
            if let nextBase, nextBase > segment.endPosition {
                // Data after zeros in a sealed segment is damage here; with
                // none, the next segment is what is missing (reported by the caller).
                let after = SegmentScanner.examine(
                    bytes, after: outcome.dataEnd, end: length, nextPosition: outcome.endPosition, readable: readable)
                if let nonZero = after.firstNonZero {
                    throw EventLogError.corruption(
                        file: path, offset: Int64(outcome.dataEnd),
                        reason: "zeros where the batch of position \(outcome.endPosition) should start, and data again at byte \(nonZero); "
                            + "the next segment starts at position \(nextBase)")
                }
            }
        }

        let rebuilt = loaded == nil || outcome.batches > 0
        if rebuilt && !isLast {
            report.rebuiltIndexes.append(FileNames.offsetIndex(base))
            report.rebuiltIndexes.append(FileNames.timeIndex(base))
            if !readOnly {
                try ActiveSegment.writeIndexFiles(segment, directory: directory)
            }
        } else if loaded == nil && isLast && from == SegmentHeader.size && outcome.batches > 0 && marker != nil {
            report.rebuiltIndexes.append(FileNames.offsetIndex(base))
        }
        mapping.advise(.normal)  // for the readers
        return OpenedSegment(segment: segment, file: file, syncedEnd: min(syncedEnd, segment.dataEnd))
    }

    func segmentCreatedAt(_ segment: Segment) throws -> Timestamp {
        guard let bytes = segment.mapping.bytes(at: 0, count: SegmentHeader.size) else { return currentTimestamp() }
        return bytes.loadLE(at: 40, as: Int64.self)
    }

    /// A read-only log has no writer; its state holds the last segment (or a stub).
    func placeholderActive(segments: [Segment], metadata: LogMetadata) throws -> ActiveSegment {
        // Any file of the log serves (nothing is written through it): the metadata file, or, when that is missing, the last segment.
        let placeholder = DirectoryOperations.exists(directory.file(FileNames.metadata)) || segments.isEmpty
            ? directory.file(FileNames.metadata) : segments[segments.count - 1].path
        let file = try FileHandle.open(placeholder, readOnly: true, faults: options.storageFaults)
        let empty = try MappedRegion.map(file, length: 0)
        let snapshot = segments.last ?? Segment(
            id: .next(), basePosition: 0, path: "", mapping: empty, headerCRC: 0,
            offsetIndex: IndexBuffer(capacity: 1), timeIndex: IndexBuffer(capacity: 1), endPosition: 0,
            dataEnd: SegmentHeader.size, offsetIndexCount: 0, timeIndexCount: 0, maxTimestamp: .min,
            firstTimestamp: nil, lastBatchOffset: 0, lastBatchCRC: 0, isSealed: true)
        return ActiveSegment(
            snapshot: snapshot, file: file, capacity: 0, indexPolicy: IndexPolicy(interval: Int(metadata.indexInterval)),
            createdAt: 0, writebackStart: 0)
    }
}
