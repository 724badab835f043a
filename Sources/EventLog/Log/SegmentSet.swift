import Dispatch
import Logging
import Synchronization

/// What a layer above the log keeps per segment (the stream index), told by
/// the segment set about every change to the set. This is how the log calls
/// up without naming the layer: the stream layer implements it, and the
/// segment set holds it once the log is open (`attach`).
///
/// None of these calls may call back into the log.
protocol SegmentIndexing: AnyObject, Sendable {
    /// `segment` is now the active segment (created on a roll, grown, or
    /// the one an open found); the one before it, if any, is sealed. Called
    /// under the writer lock, before readers can see `segment`.
    func activeSegmentChanged(to segment: Segment)

    /// The work that writes this layer's index file of `segment` as this
    /// value shows it (a sealed segment, or a checkpoint of the active one),
    /// taken under the writer lock, when `segment` is current; it runs on the
    /// index writer's queue after the segment's offset and time index files.
    /// `periodic`: a checkpoint of the active segment the writer takes every
    /// `checkpointBytes`, which this layer may skip (nil) when its file is
    /// recent enough; at a seal and at `close()` the file is always written.
    func indexFileWriter(for segment: Segment, periodic: Bool) -> (@Sendable () throws(IOError) -> Void)?

    /// A checkpoint of the state this layer persists beside the segments
    /// (the stream table) as of `position`, taken now under the writer lock
    /// when one is due after `writtenBytes` bytes written in all; the
    /// returned work runs on the index writer's queue once that data is on
    /// disk. Nil when no checkpoint is due.
    func checkpoint(covering position: UInt64, writtenBytes: UInt64, force: Bool) -> (@Sendable () throws(IOError) -> Void)?

    /// True when this layer wants a checkpoint before the next one is due
    /// by bytes (its memory outgrew its share). Read by the writer after
    /// each batch, so cheap.
    var wantsCheckpoint: Bool { get }

    /// A read-only log's refresh found more on disk: bring this layer up to
    /// `snapshot` (new records, new segments, segments removed by
    /// retention) before it is published.
    func catchUp(with snapshot: LogSnapshot) throws(EventLogError)

    /// Retention removed these sealed segments from the set: drop what this
    /// layer keeps for them (their files are unlinked next).
    func segmentsRemoved(_ ids: [SegmentID])

    /// Scavenging replaced the sealed segment `old` with its rewritten file,
    /// opened as `new` (same base position): index `new` (writing this
    /// layer's file for it, unless `readOnly`) before it is published, and
    /// drop what was kept for `old`. Readers still holding `old` in an older
    /// snapshot must keep reading it correctly (if more slowly).
    /// `indexFile`, when given, makes this layer's file for `new` from what
    /// the caller learned while writing it (nil from it: build it from
    /// `new`'s records as usual).
    func segmentReplaced(
        _ old: SegmentID, by new: Segment, readOnly: Bool, indexFile: (@Sendable (Segment) -> [UInt8]?)?
    ) throws(EventLogError)
}

/// The one owner of the log's set of segments: the only code that knows
/// how segment files are named, that they are consecutive, how one is
/// created, sealed, published to readers, given its index files, and found
/// again on disk by a read-only process (`refresh`). Opening finds the set
/// (`Opener`), the writer appends to its active segment (`BatchLog`), and
/// everything else asks it.
///
/// ## Concurrency
/// The published snapshot is guarded by a lock held only to copy or replace
/// a few references. Only the writer (under the writer lock) or, for a
/// read-only log, `refresh` (under its own lock) changes the set. Index
/// files are written on one serial background queue, in order, identified
/// by the segment's `id`: a segment replaced under the same base position
/// never receives the old one's files.
final class SegmentSet: Sendable {
    let directory: DirectoryOperations
    let metadata: LogMetadata
    var logID: [UInt8] { metadata.logID }
    var indexInterval: Int { Int(metadata.indexInterval) }
    private let published: Mutex<LogSnapshot>
    /// Wakes subscribers when a batch is published.
    let notifier = AppendNotifier()
    /// Writes index files (of sealed segments, and checkpoints of the active
    /// one) in the background, in order. Not the Swift concurrency pool.
    let indexWriter = DispatchQueue(label: "EventLog.indexWriter")
    private let indexingSlot = Mutex<(any SegmentIndexing)?>(nil)
    /// Serialises `refresh()` of a read-only log.
    private let refreshLock = Mutex<Void>(())
    /// The segment rewrites `eventlog.start` counted at the last refresh
    /// (a read-only log looks for replaced files when it changes).
    private let seenRewrites = Mutex<UInt32>(0)
    /// Set when a merge's swap failed part way (`hasUnfinishedSwap`).
    private let unfinishedSwap = Atomic<Bool>(false)
    /// The writer lock's file, held by every queued background write: a log
    /// released without `close()` keeps the lock until its last background
    /// write is done, so no other writer of this process opens the log
    /// (and removes its leftovers) while this one still writes files.
    let lockHold: FileHandle?
    /// `LogOptions.logger`.
    let logger: Logger
    /// Stops the writer after a background index write's failed sync
    /// (`IOError.isFailedSync`): derived data, but a failed sync stops the
    /// writer whatever the file (Format.md §11).
    let onFailedSync: @Sendable (String) -> Void
    /// The log's cache of decompressed batches: told of every segment taken
    /// out of the set (retention, scavenging, merging, a read-only refresh
    /// that found them gone or replaced), whose entries it then drops.
    let batchCache: BatchCache?

    init(
        directory: DirectoryOperations, metadata: LogMetadata, snapshot: LogSnapshot, lockHold: FileHandle? = nil,
        logger: Logger = Logger(label: "EventLog"), batchCache: BatchCache? = nil,
        onFailedSync: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.batchCache = batchCache
        self.logger = logger
        self.onFailedSync = onFailedSync
        self.directory = directory
        self.metadata = metadata
        self.published = Mutex(snapshot)
        self.lockHold = lockHold
    }

    /// Connects the layer above; from here on it hears of every change.
    func attach(_ indexing: any SegmentIndexing) {
        indexingSlot.withLock { $0 = indexing }
    }

    var indexing: (any SegmentIndexing)? { indexingSlot.withLock { $0 } }

    // MARK: The published snapshot

    /// The snapshot readers work on.
    @inline(__always) func snapshot() -> LogSnapshot {
        published.withLock { $0 }
    }

    /// `LogSnapshot.segment(holding:)` of the published snapshot: one
    /// segment copied out of it, not the whole snapshot (a point read).
    @inline(__always) func segment(holding position: UInt64) throws(EventLogError) -> Segment {
        try published.withLock { $0.segment(holding: position) }.get()
    }

    /// Publishes the active segment as `segment` shows it, unless readers
    /// already see a later state (under `.always` sync leaders publish out
    /// of the writer lock, in any order); wakes subscribers when it is new.
    func publish(active segment: Segment, sequence: UInt64) {
        let newer = published.withLock { published -> Bool in
            guard sequence > published.sequence else { return false }
            published.active = segment
            published.sequence = sequence
            return true
        }
        if newer { notifier.notify() }
    }

    /// Publishes a batch the writer just wrote (policies other than
    /// `.always`, where the writer's own view is what readers see).
    @inline(__always) func publishWritten(active segment: Segment, sequence: UInt64) {
        published.withLock {
            $0.active = segment
            $0.sequence = sequence
        }
        notifier.notify()
    }

    // MARK: Changing the set (writer only)

    /// Creates the segment file that starts at `base` (Format.md §4 and §10:
    /// header synced before the directory) and makes it known to the layer
    /// above. Not yet published: `seal` or `install` does that.
    func create(base: UInt64, capacity: Int) throws(EventLogError) -> ActiveSegment {
        let next = try ActiveSegment.create(
            base: base, capacity: capacity, indexInterval: indexInterval, logID: logID, directory: directory)
        indexing?.activeSegmentChanged(to: next.snapshot)
        return next
    }

    /// Seals `sealed` (its data already synced) and publishes `next` as the
    /// active segment after it; then writes the sealed segment's index files
    /// in the background.
    func seal(_ sealed: Segment, next: Segment, sequence: UInt64) {
        let sealed = sealed.sealed()
        published.withLock { snapshot in
            snapshot.sealed.append(sealed)
            snapshot.active = next
            snapshot.sequence = sequence
        }
        notifier.notify()
        // After publishing: the layer above then swaps the sealed segment's
        // in-memory entries for its file.
        scheduleIndexWrite(sealed, durableAt: nil, commit: nil)
    }

    /// Replaces the empty active segment by `grown` (the same file, longer
    /// and mapped again, with a new id).
    func replaceEmptyActive(with grown: Segment) {
        indexing?.activeSegmentChanged(to: grown)
        published.withLock { $0.active = grown }
    }

    // MARK: Index files

    /// Writes the index files describing `segment` as it is in this value
    /// (offset, time, and the layer above's), on the index writer's queue.
    /// Failures are logged: indexes are derived data, and the next open
    /// rebuilds what is missing.
    ///
    /// With `sequence` (a checkpoint of the active segment), the files are
    /// written only once `commit` reports the data they describe on disk: a
    /// checkpoint is then evidence, for recovery, that its data was synced
    /// (Format.md §10).
    func scheduleIndexWrite(_ segment: Segment, durableAt sequence: UInt64?, commit: GroupCommit?) {
        let upper = indexing?.indexFileWriter(for: segment, periodic: sequence != nil)
        let lockHold = self.lockHold
        // Weak: a log released without close() (a crash, as far as the files
        // are concerned) must not be kept alive by this; its lock is, until
        // this work is done.
        indexWriter.async { [weak self] in
            defer { withExtendedLifetime(lockHold) {} }
            guard let self else { return }
            do {
                if let sequence, let commit { try commit.waitDurable(upTo: sequence) }
                // A segment no longer in the set (replaced under the same
                // base, or grown and mapped again) gets no files: they would
                // describe another file's data.
                guard self.contains(segment.id) else { return }
                try ActiveSegment.writeIndexFiles(segment, directory: self.directory)
                try upper?()
            } catch {
                self.logger.warning("could not write index files; they will be rebuilt", metadata: ["error": "\(error)"])
                if let failed = error as? IOError, failed.isFailedSync { self.onFailedSync(failed.description) }
            }
        }
    }

    /// Writes the offset, time and upper-layer index files of `segment` now
    /// (the writer, under its lock).
    func writeIndexFiles(_ segment: Segment) throws(IOError) {
        try ActiveSegment.writeIndexFiles(segment, directory: directory)
        try indexing?.indexFileWriter(for: segment, periodic: false)?()
    }

    /// Runs `work` (a checkpoint of the layer above) on the index writer's
    /// queue once `commit` reports bytes up to `sequence` on disk.
    func scheduleCheckpoint(_ work: @escaping @Sendable () throws(IOError) -> Void, durableAt sequence: UInt64, commit: GroupCommit) {
        let (lockHold, logger, onFailedSync) = (self.lockHold, self.logger, self.onFailedSync)
        indexWriter.async {
            defer { withExtendedLifetime(lockHold) {} }
            do {
                try commit.waitDurable(upTo: sequence)
                try work()
            } catch {
                logger.warning("could not write a checkpoint; the next open replays the log", metadata: ["error": "\(error)"])
                if let failed = error as? IOError, failed.isFailedSync { onFailedSync(failed.description) }
            }
        }
    }

    /// True when the published set holds the segment with this id. Whatever
    /// replaces segments must do it on the index writer's queue (or wait for
    /// it), so that this check and the write that follows it are not raced.
    func contains(_ id: SegmentID) -> Bool {
        published.withLock { snapshot in
            snapshot.active?.id == id || snapshot.sealed.contains { $0.id == id }
        }
    }

    /// Waits for every index write queued so far.
    func waitForIndexWrites() { indexWriter.sync {} }

    // MARK: Retention (writer only)

    /// Removes the sealed segments wholly below `start` from the set and
    /// unlinks their files and index files, then syncs the directory. The
    /// caller wrote `start` to `eventlog.start` first (Format.md §3.1), so a
    /// crash in between leaves files the next open removes. Readers holding
    /// an older snapshot keep reading the removed segments: their mappings
    /// stay valid, and the disk space returns when they are released.
    ///
    /// Runs on the index writer's queue, so that no index file of a removed
    /// segment is written after its segment is gone. Returns the segments
    /// removed.
    func removeSegments(below start: UInt64) throws(IOError) -> [Segment] {
        let result: Result<[Segment], IOError> = indexWriter.sync {
            let removed = published.withLock { snapshot -> [Segment] in
                let count = snapshot.sealed.prefix { $0.endPosition <= start }.count
                let removed = Array(snapshot.sealed.prefix(count))
                snapshot.sealed.removeFirst(count)
                return removed
            }
            guard !removed.isEmpty else { return .success([]) }
            indexing?.segmentsRemoved(removed.map(\.id))
            batchCache?.drop(segments: removed.map(\.id))
            do throws(IOError) {
                _ = try Self.removeFiles(
                    ofSegments: removed.map(\.basePosition), present: Set(try directory.list()), in: directory)
                try directory.sync()
            } catch {
                return .failure(error)
            }
            return .success(removed)
        }
        return try result.get()
    }

    // MARK: Scavenging (writer only)

    /// Puts the rewritten file `temporary` (written and synced by
    /// `SegmentRewriter`) in place of the sealed segment `old`, in this
    /// order, so that a crash at any point leaves the old file or the new
    /// one, each with index files that describe it or none (Format.md §4,
    /// "Rewritten segments"):
    /// 1. the old segment's index files are unlinked (an open rebuilds
    ///    missing ones from whichever file is in place);
    /// 2. `temporary` is renamed over the segment file, the directory synced;
    /// 3. the new file is opened (its offset and time index files written),
    ///    the layer above indexes it, and it replaces `old` in the published
    ///    set. Readers holding an older snapshot keep reading `old`: its
    ///    mapping stays valid, and its disk space returns when they let go.
    ///
    /// Runs on the index writer's queue, after any index file queued for
    /// `old`. Returns the new segment; nil (and `temporary` removed) when
    /// `old` is no longer in the set (retention removed it meanwhile).
    /// `indexFile` goes to the layer above (`SegmentIndexing.segmentReplaced`).
    func replaceSegment(
        _ old: Segment, with temporary: String, indexFile: (@Sendable (Segment) -> [UInt8]?)? = nil, opener: () -> Opener
    ) throws(EventLogError) -> Segment? {
        let result: Result<Segment?, EventLogError> = indexWriter.sync {
            do {
                guard snapshot().sealed.contains(where: { $0.id == old.id }) else {
                    try directory.remove(temporary)
                    return .success(nil)
                }
                let base = old.basePosition
                // The old file's index files go first (derived data: a crash
                // that keeps any of them leaves them to the open's checks); the
                // rename's directory sync covers these unlinks too.
                for name in [FileNames.offsetIndex(base), FileNames.timeIndex(base), FileNames.streamIndex(base)] {
                    try directory.removeUnsynced(name)
                }
                try directory.rename(temporary, to: FileNames.segment(base))
                var opener = opener()
                let new = try opener.openSegment(
                    base: base, isLast: false, nextBase: nil, metadata: metadata, marker: nil, tableCovered: nil
                ).segment
                try indexing?.segmentReplaced(old.id, by: new, readOnly: false, indexFile: indexFile)
                published.withLock { snapshot in
                    if let i = snapshot.sealed.firstIndex(where: { $0.id == old.id }) { snapshot.sealed[i] = new }
                }
                batchCache?.drop(segments: [old.id])
                return .success(new)
            } catch {
                return .failure(.wrapping(error))
            }
        }
        return try result.get()
    }

    // MARK: Merging (writer only)

    /// True once a segment merge failed after its manifest was committed
    /// (or may have been): the files are then in neither the old state nor
    /// the one this set publishes, and only a writer's next open (which
    /// finishes the swap, Format.md §4.2) puts them right. Maintenance
    /// refuses to run meanwhile: it would name files by base positions
    /// that no longer hold what this set thinks.
    var hasUnfinishedSwap: Bool { unfinishedSwap.load(ordering: .relaxed) }

    /// Puts the merged file (written and synced by `SegmentMerger` at
    /// `MergeSwap.temporary(manifest.newBase)`) in place of the sealed
    /// segments `olds` (consecutive, oldest first): commits and finishes
    /// the swap (`MergeSwap`), opens the new file (its offset and time
    /// index files written), lets the layer above index it, and publishes
    /// it in place of `olds`. Readers holding an older snapshot keep
    /// reading `olds`: their mappings stay valid after the unlinks, and the
    /// disk space returns when they let go.
    ///
    /// Runs on the index writer's queue, after any index file queued for
    /// `olds`. Returns the new segment; nil (and the merged file removed)
    /// when `olds` are no longer consecutive in the set (retention removed
    /// one meanwhile).
    func mergeSegments(_ olds: [Segment], manifest: CompactionManifest, opener: () -> Opener) throws(EventLogError) -> Segment? {
        let temporary = MergeSwap.temporary(manifest.newBase)
        let result: Result<Segment?, EventLogError> = indexWriter.sync {
            let ids = olds.map(\.id)
            guard let first = snapshot().sealed.firstIndex(where: { $0.id == ids.first }),
                  Array(snapshot().sealed.dropFirst(first).prefix(ids.count).map(\.id)) == ids
            else {
                try? directory.remove(temporary)
                return .success(nil)
            }
            var committed = false
            do {
                try MergeSwap.commit(manifest, in: directory)
                committed = true
                var opener = opener()
                let new = try opener.openSegment(
                    base: manifest.newBase, isLast: false, nextBase: nil, metadata: metadata, marker: nil, tableCovered: nil
                ).segment
                try indexing?.segmentReplaced(ids[0], by: new, readOnly: false, indexFile: nil)
                indexing?.segmentsRemoved(Array(ids.dropFirst()))
                published.withLock { snapshot in
                    if let i = snapshot.sealed.firstIndex(where: { $0.id == ids[0] }) {
                        snapshot.sealed.replaceSubrange(i..<min(i + ids.count, snapshot.sealed.count), with: [new])
                    }
                }
                batchCache?.drop(segments: ids)
                return .success(new)
            } catch {
                if committed || DirectoryOperations.exists(directory.file(FileNames.compactionManifest)) {
                    unfinishedSwap.store(true, ordering: .relaxed)
                } else {
                    try? directory.remove(temporary)
                    try? directory.remove(FileNames.compactionManifest + ".tmp")
                }
                return .failure(.wrapping(error))
            }
        }
        return try result.get()
    }

    // MARK: Refresh (read-only logs)

    /// For a read-only log beside a writer in another process: finds what
    /// that writer added since (new batches of the last segment, new
    /// segments), lets the layer above catch up, then publishes it. Returns
    /// true when new events appeared. A batch or segment still being
    /// written is left for the next call. Calls are serialised.
    func refresh(opener: () -> Opener) throws(EventLogError) -> Bool {
        try refreshLock.withLock { (_) throws(EventLogError) -> Bool in
            do {
                var opener = opener()
                return try refreshLocked(opener: &opener)
            } catch {
                throw .wrapping(error)
            }
        }
    }

    private func refreshLocked(opener: inout Opener) throws -> Bool {
        var snapshot = self.snapshot()
        let before = snapshot.endPosition

        // The last segment's file, opened once per refresh (a `tail -f` calls this every 50 ms);
        // nil when it is gone or another file now has its name (a merge took it in: step 2).
        let lastFile = snapshot.active.flatMap { active -> FileHandle? in
            guard let file = try? FileHandle.open(active.path, readOnly: true, faults: directory.faults) else { return nil }
            return active.fileIdentity == nil || (try? file.identity()) == active.fileIdentity ? file : nil
        }

        // 0. The last segment grew since it was mapped (an empty segment grown
        //    for a large batch, or one seen before its length was set): map it
        //    again, or its new bytes would never be looked at.
        if let last = snapshot.active, let length = try? lastFile?.length(), Int(length) != last.mapping.length {
            guard let reopened = try openIfReady(base: last.basePosition, opener: &opener) else { return false }
            snapshot.active = reopened
        }

        // 1. New batches at the end of the last segment (unless its file is
        //    gone: a merge took it in, found in step 2).
        if var last = snapshot.active, let file = lastFile, let bytes = last.mapping.bytes(at: 0, count: last.mapping.length) {
            var policy = IndexPolicy(resuming: last, interval: indexInterval)
            // Past the data the file is a hole, and a batch being written may be too.
            let outcome = SegmentScanner.scan(
                bytes, from: last.dataEnd, end: bytes.count, previousCRC: last.lastBatchCRC, expectedBase: last.endPosition,
                lastBatchOffset: last.lastBatchOffset, readable: ReadableRegions(file: file, length: bytes.count)
            ) { batch, offset in
                policy.add(
                    batch: batch, at: offset, records: batch.plainRecords(in: bytes, at: offset), segmentBase: last.basePosition,
                    offsetIndex: last.offsetIndex, timeIndex: last.timeIndex)
            }
            if case .unreadable(let offset) = outcome.stop {
                throw EventLogError.corruption(file: last.path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
            }
            if outcome.batches > 0 {
                last.extend(with: outcome)
                snapshot.active = last
            }
        }

        // 2. Segments retention removed: the log start moved past them.
        //    Segments scavenging replaced, or merged (Format.md §4.2): the
        //    count of rewrites changed. Looked at before new segments, since
        //    a merge may have taken in segments this process never saw.
        var replaced = false
        // A damaged start file changes nothing here: the open reported it (Format.md §10.2).
        let found: LogStart?
        do { found = try LogStart.read(in: directory) } catch let error as EventLogError where FileDamage(error) != nil { found = nil }
        if let logStart = found {
            snapshot.sealed.removeAll { $0.endPosition <= logStart.startPosition }
            if seenRewrites.withLock({ seen in defer { seen = logStart.rewrites }; return seen != logStart.rewrites }) {
                replaced = try reopenReplaced(in: &snapshot, opener: &opener)
            }
        }

        // 3. Segments created since. They are consecutive, so the first new one is
        //    named by the end position: the directory (thousands of names in a long
        //    log) is listed only once that file exists, not on every refresh (a
        //    read-only log refreshes on every append another process makes).
        let successor = directory.file(FileNames.segment(snapshot.endPosition))
        let names = DirectoryOperations.exists(successor) ? try directory.list() : []
        let lastBase = snapshot.last?.basePosition
        let newBases = Self.bases(in: names).filter { base in lastBase.map { base > $0 } ?? true }
        for (k, base) in newBases.enumerated() {
            // Not yet complete, or a gap: next time.
            guard Self.succession(of: base, after: snapshot.endPosition) == .follows else { break }
            let segment: Segment
            if k < newBases.count - 1 {
                // Sealed already (it may be a rewritten or merged one).
                segment = try opener.openSegment(
                    base: base, isLast: false, nextBase: newBases[k + 1], metadata: metadata, marker: nil, tableCovered: nil
                ).segment.sealed()
            } else {
                // A segment whose header the writer has not written yet: next time.
                guard let last = try openIfReady(base: base, opener: &opener) else { break }
                segment = last
            }
            if let previous = snapshot.active { snapshot.sealed.append(previous.sealed()) }
            snapshot.active = segment
        }
        // (Still no active segment: a merge took in the last one seen, and its
        // successor is not ready yet. Every segment read is then sealed.)

        let current = self.snapshot()
        guard replaced || snapshot.endPosition > before || snapshot.count != current.count
            || snapshot.active?.mapping.length != current.active?.mapping.length
        else { return false }
        try indexing?.catchUp(with: snapshot)
        let refreshed = snapshot
        published.withLock { $0 = refreshed }
        if batchCache?.isEnabled == true {
            let kept = Set(refreshed.segmentIDs)
            batchCache?.drop(segments: current.segmentIDs.filter { !kept.contains($0) })
        }
        notifier.notify()
        return snapshot.endPosition > before
    }

    /// Maps again each sealed segment of `snapshot` whose file changed
    /// (device and inode) since it was mapped: a rewritten segment, or the
    /// file of a merge, which also replaces the segments after it up to its
    /// declared end (whose files are gone, or about to go). Returns true
    /// when one was. Readers holding the old mappings keep reading them.
    private func reopenReplaced(in snapshot: inout LogSnapshot, opener: inout Opener) throws -> Bool {
        var replaced = false
        var i = 0
        while i < snapshot.sealed.count {
            let segment = snapshot.sealed[i]
            guard let now = FileIdentity.of(segment.path), now != segment.fileIdentity else {
                i += 1
                continue
            }
            let new = try opener.openSegment(
                base: segment.basePosition, isLast: false, nextBase: nil, metadata: metadata, marker: nil, tableCovered: nil
            ).segment
            var mergedAway: [SegmentID] = []
            while i + 1 < snapshot.sealed.count, snapshot.sealed[i + 1].basePosition < new.endPosition {
                mergedAway.append(snapshot.sealed.remove(at: i + 1).id)
            }
            if let active = snapshot.active, active.basePosition < new.endPosition {
                mergedAway.append(active.id)
                snapshot.active = nil
            }
            try indexing?.segmentReplaced(segment.id, by: new, readOnly: true, indexFile: nil)
            if !mergedAway.isEmpty { indexing?.segmentsRemoved(mergedAway) }
            snapshot.sealed[i] = new
            replaced = true
            i += 1
        }
        // The last segment this process saw, which the writer sealed since and
        // then rewrote, or merged with the segments after it: sealed here too.
        if let active = snapshot.active, let now = FileIdentity.of(active.path), now != active.fileIdentity {
            let new = try opener.openSegment(
                base: active.basePosition, isLast: false, nextBase: nil, metadata: metadata, marker: nil, tableCovered: nil
            ).segment
            try indexing?.segmentReplaced(active.id, by: new, readOnly: true, indexFile: nil)
            snapshot.sealed.append(new)
            snapshot.active = nil
            replaced = true
        }
        return replaced
    }

    /// Opens segment `base` as the last one, or returns nil when its writer
    /// is still creating it (shorter than a header, or the header still
    /// zeros): such a file is looked at again by the next refresh, instead of
    /// reading as damage.
    private func openIfReady(base: UInt64, opener: inout Opener) throws -> Segment? {
        let path = directory.file(FileNames.segment(base))
        var header = [UInt8](repeating: 0, count: SegmentHeader.size)
        let file = try FileHandle.open(path, readOnly: true, faults: directory.faults)
        var read: Result<Int, IOError> = .success(0)
        header.withUnsafeMutableBytes { raw in
            do throws(IOError) { read = .success(try file.read(into: raw, at: 0)) } catch { read = .failure(error) }
        }
        if try read.get() < SegmentHeader.size || header.allSatisfy({ $0 == 0 }) { return nil }
        return try opener.openSegment(base: base, isLast: true, nextBase: nil, metadata: metadata, marker: nil, tableCovered: nil).segment
    }
}

// MARK: - The rules of the set

/// How segment files make up a log (Format.md §2 and §4): named by their
/// base position, consecutive from the log start position, each starting
/// where the one before it ends. Open, refresh, verify and inspect all read
/// the set through these.
extension SegmentSet {
    /// The base positions of the segment files among `names` (a directory
    /// listing), ascending.
    static func bases(in names: [String]) -> [UInt64] {
        names.compactMap(FileNames.segmentBase).sorted()
    }

    /// `bases` (ascending) split into the log's segments and the leftovers
    /// of retention: retention writes the new start before it unlinks the
    /// segments below it (Format.md §3.1), so when a segment starts exactly
    /// at `start`, every one below it is what a crash left of that step.
    static func leftoversOfRetention(in bases: [UInt64], start: UInt64) -> (log: [UInt64], leftovers: [UInt64]) {
        guard start > 0, bases.contains(start) else { return (bases, []) }
        return (bases.filter { $0 >= start }, bases.filter { $0 < start })
    }

    /// Unlinks the files (segment and index files, those among `present`)
    /// of the segments at `bases`; returns their names. The caller syncs
    /// the directory.
    static func removeFiles(ofSegments bases: [UInt64], present: Set<String>, in directory: DirectoryOperations) throws(IOError) -> [String] {
        var removed: [String] = []
        for base in bases {
            for name in FileNames.segmentFiles(base) where present.contains(name) {
                try directory.remove(name)
                removed.append(name)
            }
        }
        return removed
    }

    /// How a segment starting at `base` follows what ends at `expected` (the
    /// log start position, or the end of the segment before it).
    enum Succession: Equatable {
        /// It starts exactly there.
        case follows
        /// Positions in between are in no segment.
        case missing(Range<UInt64>)
        /// It starts before: it overlaps what comes before it.
        case overlaps
    }

    static func succession(of base: UInt64, after expected: UInt64) -> Succession {
        if base == expected { return .follows }
        return base > expected ? .missing(expected..<base) : .overlaps
    }
}
