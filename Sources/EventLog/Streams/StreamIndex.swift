import Dispatch
import Logging
import Synchronization

/// The stream index of one segment (Format.md §13): the active segment's
/// entries in memory (and a sealed one's until its `.streamindex` file is
/// written), or a sealed segment's file.
enum SegmentStreamIndex: Sendable {
    /// Entries below `count` are published.
    case entries(SegmentStreamEntries, count: Int)
    case file(StreamIndexView)
}

/// The stream layer's index: every stream's state (`table`) and, per
/// segment, where each stream's events are. It keeps its per-segment part by
/// segment id, told of every change to the segment set through
/// `SegmentIndexing`, and writes the table's generations as stream table
/// runs at each checkpoint, merging runs in the background.
///
/// ## Concurrency
/// Only the writer (under the writer lock) changes it; readers look up under
/// the table's lock and the per-segment lock, each held for a few loads. The
/// writer updates both before the segment set publishes the batch, so a
/// reader that took its log snapshot first finds every entry the snapshot
/// shows (and ignores entries past it). Runs are written on the segment
/// set's index writer queue, and merged on `merger`.
final class StreamIndex: SegmentIndexing {
    let table: StreamTable
    let directory: DirectoryOperations
    /// The current generation is checkpointed early once its states take more than this.
    let generationBytes: Int
    /// `LogOptions.checkpointBytes`: the writer's checkpoints come this far apart.
    let checkpointBytes: Int
    private let indexes: Mutex<Indexes>
    /// Reused scratch of the batch builder's streams (writer only).
    let batchScratch = Mutex<BatchStreams>(BatchStreams())
    /// Merges stream table runs, one at a time, off the writer's path.
    private let merger = DispatchQueue(label: "EventLog.streamTableMerger")
    /// Held by every merge under way (the writer lock's file, set by
    /// `hold(whileMerging:)`): a log released without `close()` keeps its
    /// lock until the merge stops writing files.
    private let mergeHold = Mutex<(any Sendable & AnyObject)?>(nil)
    private let closing = Atomic<Bool>(false)
    /// The end position of the newest checkpoint of the active segment
    /// scheduled: an older one still queued is skipped (each rewrites the
    /// segment's whole stream index, so a writer faster than the index
    /// writer would otherwise queue them without bound).
    private let newestCheckpoint = Atomic<UInt64>(0)
    /// Deletions, truncations and limits the writer applied since the log
    /// opened: scavenging looks again at a segment it found without dead
    /// events only when this changed. Equal to `recentMarkers`' count,
    /// which goes up first (`noteMarker`).
    let markersApplied = Atomic<UInt64>(0)
    /// The streams of those markers (`RecentMarkers`): which segments to look at again.
    private let recentMarkers = Mutex(RecentMarkers())
    /// `LogOptions.logger`.
    let logger: Logger

    struct Indexes: Sendable {
        /// The active segment's id and entries (nil before the first segment).
        var active: (id: SegmentID, base: UInt64, entries: SegmentStreamEntries, count: Int)?
        /// Sealed segments.
        var sealed: [SegmentID: SegmentStreamIndex] = [:]
        /// The position up to which the table and entries hold every record
        /// (what a read-only log's `catchUp` goes on from).
        var indexedEnd: UInt64 = 0
        /// A checkpoint of the active segment written since the writer's last
        /// batch: its next batch starts the active entries again on it.
        var pendingBase: (segment: SegmentID, base: VerifiedStreamIndex)?
    }

    init(
        table: StreamTable, directory: DirectoryOperations, memoryBytes: Int, checkpointBytes: Int,
        sealed: [SegmentID: SegmentStreamIndex], active: (id: SegmentID, base: UInt64, entries: SegmentStreamEntries)?,
        indexedEnd: UInt64, logger: Logger = Logger(label: "EventLog")
    ) {
        self.logger = logger
        self.table = table
        self.directory = directory
        self.generationBytes = max(memoryBytes / 2, 1)
        self.checkpointBytes = checkpointBytes
        var indexes = Indexes(sealed: sealed, indexedEnd: indexedEnd)
        if let active { indexes.active = (active.id, active.base, active.entries, active.entries.writtenCount) }
        self.indexes = Mutex(indexes)
    }

    // MARK: Markers

    /// Notes a marker applied to the stream whose hash is `hash` (the writer, as it applies it).
    func noteMarker(hash: UInt64) {
        recentMarkers.withLock { markers in
            markers.note(hash)
            markersApplied.store(markers.count, ordering: .relaxed)
        }
    }

    /// The stream hashes of the markers applied after the first `after`
    /// through the first `through` (`markersApplied` values); nil when
    /// they are no longer all known.
    func markerHashes(after: UInt64, through: UInt64) -> Set<UInt64>? {
        recentMarkers.withLock { $0.hashes(after: after, through: through) }
    }

    /// True when `segment`'s stream index may hold events of a stream whose
    /// hash is in `hashes` (also when the segment's index is unknown, or
    /// cannot be read: the caller then looks at the segment itself).
    func mayHoldEvents(of hashes: Set<UInt64>, in segment: Segment) -> Bool {
        guard let index = index(of: segment) else { return true }
        do throws(EventLogError) {
            for hash in hashes {
                switch index {
                case .file(let view):
                    if try !view.groups(withHash: hash).isEmpty { return true }
                case .entries(let entries, let count):
                    if try !entries.chain(of: hash, count: count).isEmpty { return true }
                }
            }
        } catch {
            return true
        }
        return false
    }

    // MARK: Lookups

    /// The stream index of `segment` as published (nil when unknown).
    func index(of segment: Segment) -> SegmentStreamIndex? {
        indexes.withLock { indexes in
            if let active = indexes.active, active.id == segment.id { return .entries(active.entries, count: active.count) }
            return indexes.sealed[segment.id]
        }
    }

    /// The active segment's entries, for the writer: started again on the
    /// last checkpoint file when one was written since (so memory holds only
    /// the entries since the last stream index file, `rewritesActiveFile`).
    func activeEntries(for segment: Segment) -> SegmentStreamEntries? {
        indexes.withLock { indexes in
            guard let active = indexes.active, active.id == segment.id else { return nil }
            guard let pending = indexes.pendingBase else { return active.entries }
            indexes.pendingBase = nil
            // The checkpoint holds every event before its end: the entries
            // from there on stay in memory. (Checkpoints taken from an
            // earlier value of the entries count as well as the last one.)
            let end = pending.base.view.header.endPosition
            guard pending.segment == active.id, end > active.entries.baseEnd(segmentBase: active.base) else { return active.entries }
            let covered = active.entries.firstIndex(atOrAfter: end - active.base, below: active.count)
            let rebased = active.entries.rebased(on: pending.base, covered: covered)
            indexes.active = (active.id, active.base, rebased, active.count - covered)
            return rebased
        }
    }

    /// Publishes the count of the active segment's entries (writer only).
    func publishActiveCount(_ count: Int, position: UInt64) {
        indexes.withLock {
            $0.active?.count = count
            $0.indexedEnd = position
        }
    }

    // MARK: SegmentIndexing

    func activeSegmentChanged(to segment: Segment) {
        indexes.withLock { indexes in
            if let active = indexes.active {
                if active.id == segment.id { return }
                // A sealed segment keeps its entries until its file is
                // written; an empty one that was grown (same base) has none.
                if active.base != segment.basePosition {
                    indexes.sealed[active.id] = .entries(active.entries, count: active.count)
                }
            }
            indexes.active = (segment.id, segment.basePosition, SegmentStreamEntries(), 0)
        }
    }

    func indexFileWriter(for segment: Segment, periodic: Bool) -> (@Sendable () throws(IOError) -> Void)? {
        guard case .entries(let entries, let count)? = index(of: segment) else { return nil }
        if periodic && !segment.isSealed {
            let fileEnd = entries.base.map { Int($0.view.header.dataEnd) } ?? SegmentHeader.size
            guard Self.rewritesActiveFile(fileEnd: fileEnd, dataEnd: segment.dataEnd, checkpointBytes: checkpointBytes) else { return nil }
        }
        let directory = self.directory
        if !segment.isSealed { newestCheckpoint.store(segment.endPosition, ordering: .relaxed) }
        return { [weak self] () throws(IOError) in
            if !segment.isSealed, let self, self.newestCheckpoint.load(ordering: .relaxed) > segment.endPosition { return }
            let name = FileNames.streamIndex(segment.basePosition)
            let file = entries.file(segment.indexFileHeader, count: count)
            try withExtendedLifetime(file) { () throws(IOError) in
                try directory.writeAtomically(name, bytes: UnsafeRawBufferPointer(start: file.base, count: file.byteCount))
            }
            guard let view = StreamIndexView.open(path: directory.file(name), faults: directory.faults) else { return }
            self?.indexes.withLock { indexes in
                if segment.isSealed {
                    // Only the segment this file was written for: never one that replaced it.
                    if indexes.sealed[segment.id] != nil { indexes.sealed[segment.id] = .file(view) }
                } else if let base = try? VerifiedStreamIndex(view) {
                    // A checkpoint of the active segment: the writer starts its entries again on it.
                    indexes.pendingBase = (segment.id, base)
                }
            }
        }
    }

    /// How far the active segment's stream index file may lag behind its
    /// data, in `checkpointBytes`: a periodic checkpoint rewrites the file
    /// (`rewritesActiveFile`) once the data written since it is as much as
    /// the file covers, or this many times `checkpointBytes`.
    static let activeFileLagCheckpoints = 4

    /// Whether a periodic checkpoint of the active segment rewrites its
    /// stream index file, which covers the segment's data up to `fileEnd`
    /// (its header's data end; the segment header's size when there is no
    /// file yet), now that the data reaches `dataEnd`: when the data since
    /// is at least what the file covers, or at least
    /// `activeFileLagCheckpoints` × `checkpointBytes`.
    ///
    /// Each rewrite copies the whole file (the previous one and the entries
    /// since): at every checkpoint, a segment of n checkpoints cost about
    /// n²/2 checkpoints' worth of entries written, encoded and verified, in
    /// the background but on the appenders' machine. Doubling costs about 2n
    /// (128 MiB segments, 16 MiB checkpoints: files at 16, 32 and 64 MiB, and
    /// at the seal). The price: the entries since the file stay in memory
    /// (32 bytes an event), and recovery replays them from the records, up
    /// to `activeFileLagCheckpoints` × `checkpointBytes` of log.
    static func rewritesActiveFile(fileEnd: Int, dataEnd: Int, checkpointBytes: Int) -> Bool {
        let covered = fileEnd - SegmentHeader.size
        let since = dataEnd - fileEnd
        return covered <= 0 || since >= min(covered, activeFileLagCheckpoints * checkpointBytes)
    }

    /// True when the current generation outgrew its share of
    /// `LogOptions.streamMemoryBytes`: the writer checkpoints now. Writer only.
    var wantsCheckpoint: Bool { table.current.memoryBytes >= generationBytes }

    func checkpoint(covering position: UInt64, writtenBytes: UInt64, force: Bool) -> (@Sendable () throws(IOError) -> Void)? {
        // Under the writer lock: every record before `position` is applied.
        let pending = table.mutate { t in
            // Inherited while they take at most half the generation's share:
            // room for the streams the next generation adds.
            _ = t.freeze(at: position, inheritingUpTo: force ? 0 : generationBytes / 2)
            return !t.table.levels.frozen.isEmpty
        }
        guard pending else { return nil }
        return { [weak self] () throws(IOError) in
            guard let self else { return }
            try self.writeFrozenGenerations()
            if !force { self.scheduleMerge() }
        }
    }

    /// Writes every frozen generation, oldest first, as a stream table run,
    /// and publishes each in its generation's place. Called (on the index
    /// writer's queue) once the records they hold changes of are on disk: a
    /// run is evidence, for recovery, that its positions were synced.
    private func writeFrozenGenerations() throws(IOError) {
        for frozen in table.read({ $0.levels.frozen }) {
            let generation = frozen.generation
            let name = FileNames.streamTableRun(from: frozen.from, to: frozen.to)
            try StreamTableRunWriter.write(
                rows: generation.idsInRunOrder().lazy.map { (generation[$0].hash, generation[$0].row) },
                to: name, in: directory, from: frozen.from, to: frozen.to, expectedRows: generation.changedCount)
            guard let run = StreamTableRunView.open(path: directory.file(name), faults: directory.faults) else {
                throw IOError(operation: "open", path: directory.file(name), errno: 5)  // EIO: just written, unreadable
            }
            table.publish(run, replacing: frozen)
        }
    }

    /// Makes every merge from now on hold `object` (the writer lock's file)
    /// until it is done.
    func hold(whileMerging object: (any Sendable & AnyObject)?) {
        mergeHold.withLock { $0 = object }
    }

    /// Asks a merge under way to stop soon (within 4,096 rows) and none to
    /// start, without waiting: a log released without `close()`, whose
    /// writer lock the merge holds until it stops.
    func requestStopMerging() {
        closing.store(true, ordering: .relaxed)
    }

    /// Stops merging: waits for a merge under way (close).
    func stopMerging() {
        closing.store(true, ordering: .relaxed)
        merger.sync {}
    }

    /// Merges runs in the background while the policy asks for it.
    private func scheduleMerge() {
        let hold = mergeHold.withLock { $0 }
        merger.async { [weak self] in
            defer { withExtendedLifetime(hold) {} }
            guard let self else { return }
            while !self.closing.load(ordering: .relaxed), let inputs = RunMergePolicy.next(self.table.read({ $0.levels.runs })) {
                do {
                    try self.merge(inputs)
                } catch {
                    // Closing: the inputs stay, and a later writer merges them.
                    if case .closed? = error as? EventLogError { return }
                    logger.warning("could not merge stream table runs; they stay as they are", metadata: ["error": "\(error)"])
                    return
                }
            }
        }
    }

    /// Merges `inputs` (contiguous, oldest first) into one run, publishes
    /// it in their place, then removes their files.
    private func merge(_ inputs: [StreamTableRunView]) throws {
        guard let first = inputs.first, let last = inputs.last else { return }
        let name = FileNames.streamTableRun(from: first.from, to: last.to)
        let merged = try StreamTableRunMerge.merge(inputs, into: name, in: directory) { self.closing.load(ordering: .relaxed) }
        guard table.replace(inputs, with: merged) else {
            try directory.remove(name)
            return
        }
        // The merged run is synced and named first: a crash from here on
        // leaves both, and an open takes the one reaching furthest.
        for input in inputs where input.path != merged.path {
            try directory.remove(FileNames.streamTableRun(from: input.from, to: input.to))
        }
        try directory.sync()
    }

    func catchUp(with snapshot: LogSnapshot) throws(EventLogError) {
        do {
            try catchUpThrowing(with: snapshot)
        } catch {
            throw .wrapping(error)
        }
    }

    /// How far the table's runs reach from position 0 without a gap (0:
    /// no run): what an open's chain (Format.md §14.2) would cover.
    func runsReach() -> UInt64 {
        let runs = table.read { $0.levels.runs }
        var reach: UInt64 = 0
        for run in runs {
            guard run.from == reach else { break }
            reach = run.to
        }
        return reach
    }

    func segmentReplaced(
        _ old: SegmentID, by new: Segment, readOnly: Bool, indexFile: (@Sendable (Segment) -> [UInt8]?)?
    ) throws(EventLogError) {
        let name = FileNames.streamIndex(new.basePosition)
        let view: StreamIndexView?
        do {
            // The old file went before the rewritten segment took its place
            // (a crash in between leaves none, rebuilt by the next open).
            if !readOnly, let found = StreamIndexView.open(path: directory.file(name), faults: directory.faults), found.describes(new) {
                view = found
            } else {
                let bytes = try indexFile?(new) ?? StreamIndexBuilder.scan(new, hash: table.hash)
                if !readOnly { try directory.writeAtomically(name, bytes: bytes) }
                view = (readOnly ? nil : StreamIndexView.open(path: directory.file(name), faults: directory.faults))
                    ?? StreamIndexView.inMemory(bytes, path: directory.file(name))
            }
        } catch {
            throw .wrapping(error)
        }
        indexes.withLock { indexes in
            indexes.sealed[old] = nil
            if let view { indexes.sealed[new.id] = .file(view) }
        }
    }

    /// A sealed segment's index, for a reader whose snapshot still shows a
    /// segment that scavenging replaced since (its index was dropped): built
    /// from the segment's records, in memory. Slow, and rare.
    func indexByScanning(_ segment: Segment) throws -> SegmentStreamIndex? {
        let bytes = try StreamIndexBuilder.scan(segment, hash: table.hash)
        return StreamIndexView.inMemory(bytes, path: segment.path).map { .file($0) }
    }

    func segmentsRemoved(_ ids: [SegmentID]) {
        indexes.withLock { indexes in
            for id in ids { indexes.sealed[id] = nil }
        }
    }

    private func catchUpThrowing(with snapshot: LogSnapshot) throws {
        // Segments retention removed: their indexes go (and their mappings with them).
        let present = Set((0..<snapshot.count).map { snapshot[$0].id })
        indexes.withLock { indexes in
            indexes.sealed = indexes.sealed.filter { present.contains($0.key) }
        }
        let (known, from) = indexes.withLock { indexes in
            (Set(indexes.sealed.keys).union(indexes.active.map { [$0.id] } ?? []), indexes.indexedEnd)
        }
        // A long-lived reader keeps no more in memory than a writer would:
        // past its share, it takes the runs the writer wrote since instead.
        if table.current.memoryBytes >= generationBytes { try adoptNewerRuns(upTo: from, snapshot: snapshot) }
        for i in 0..<snapshot.count {
            let segment = snapshot[i]
            if known.contains(segment.id) {
                guard segment.endPosition > from else { continue }
                guard let entries = activeEntries(for: segment) else {
                    // A sealed segment indexed before this catch-up that reaches past what
                    // was replayed (a merge's new file, which took in segments this
                    // process had not seen): the table takes its newer records.
                    _ = try StreamIndexBuilder.replay(
                        segments: [segment], from: from, tableFrom: from, entriesFrom: .max, entries: nil, table: table)
                    continue
                }
                // The active segment grew: its new records.
                try StreamIndexBuilder.replay(
                    segments: [segment], from: from, tableFrom: from, entriesFrom: from, entries: entries, table: table)
                publishActiveCount(entries.writtenCount, position: segment.endPosition)
                continue
            }
            // New (or mapped again): its entries from its first record, the table from where it stood.
            let entries = SegmentStreamEntries()
            try StreamIndexBuilder.replay(
                segments: [segment], from: segment.basePosition, tableFrom: from, entriesFrom: segment.basePosition,
                entries: entries, table: table)
            let previous = i > 0 ? snapshot[i - 1] : nil
            indexes.withLock { indexes in
                if let active = indexes.active {
                    if active.base == segment.basePosition {
                        indexes.active = nil  // mapped again: replaced
                    } else if let previous, active.id == previous.id {
                        // Sealed since: its file, once the writer wrote it, or its entries.
                        indexes.sealed[active.id] = Self.sealedIndex(
                            previous, entries: active.entries, count: active.count, directory: directory)
                        indexes.active = nil
                    }
                }
                if i == snapshot.count - 1 {
                    indexes.active = (segment.id, segment.basePosition, entries, entries.writtenCount)
                } else {
                    indexes.sealed[segment.id] = Self.sealedIndex(
                        segment, entries: entries, count: entries.writtenCount, directory: directory)
                }
                indexes.indexedEnd = max(indexes.indexedEnd, segment.endPosition)
            }
        }
        indexes.withLock { $0.indexedEnd = max($0.indexedEnd, snapshot.endPosition) }
    }

    /// A read-only log whose current generation outgrew its share: when the
    /// writer's runs now reach further than this table's, the table starts
    /// again from them, replaying only the records after them up to `end`.
    private func adoptNewerRuns(upTo end: UInt64, snapshot: LogSnapshot) throws {
        let chain = StreamTableRunChain.select(in: directory, end: end)
        guard let to = chain.last?.to, to > table.from else { return }
        table.mutate { $0.reset(runs: chain, from: to) }
        let segments = (0..<snapshot.count).map { snapshot[$0] }
        try StreamIndexBuilder.replay(segments: segments, from: to, tableFrom: to, entriesFrom: .max, entries: nil, table: table, upTo: end)
    }

    /// A sealed segment's index: its file when one describes it, else its entries.
    private static func sealedIndex(
        _ segment: Segment, entries: SegmentStreamEntries, count: Int, directory: DirectoryOperations
    ) -> SegmentStreamIndex {
        if let view = StreamIndexView.open(path: directory.file(FileNames.streamIndex(segment.basePosition)), faults: directory.faults),
           view.describes(segment) {
            return .file(view)
        }
        return .entries(entries, count: count)
    }
}

/// When to merge stream table runs: like a binary counter, two adjacent runs
/// merge when the older holds at most `sizeRatio` times the newer's rows, so a
/// log keeps about log₂(streams ÷ streams per checkpoint) runs and each row
/// is rewritten about that many times. Any adjacent pair qualifies, the
/// newest first, not only the newest two: under sustained appends a new run
/// is published while a merge is under way, and a policy that looked only at
/// the newest pair would leave the merged run beside its equal for good (a
/// 10M-stream load ended with 12 runs of the same size, and every lookup
/// asked 12 bloom filters). Past `maxRuns`, the adjacent pair with the fewest
/// rows merges whatever their sizes.
enum RunMergePolicy {
    static let maxRuns = 12
    /// How much larger than its newer neighbour a run may be and still merge with it.
    static let sizeRatio = 2

    /// The runs to merge next (contiguous, oldest first), nil for none.
    static func next(_ runs: [StreamTableRunView]) -> [StreamTableRunView]? {
        next(rowCounts: runs.map(\.rowCount)).map { Array(runs[$0]) }
    }

    /// `next(_:)` over the runs' row counts (oldest first): the indexes of the pair to merge.
    static func next(rowCounts rows: [Int]) -> Range<Int>? {
        guard rows.count >= 2 else { return nil }
        for i in stride(from: rows.count - 1, through: 1, by: -1) where rows[i - 1] <= sizeRatio * rows[i] {
            return (i - 1)..<(i + 1)
        }
        guard rows.count > maxRuns else { return nil }
        var best = 1
        for i in 1..<rows.count where rows[i - 1] + rows[i] < rows[best - 1] + rows[best] { best = i }
        return (best - 1)..<(best + 1)
    }
}
