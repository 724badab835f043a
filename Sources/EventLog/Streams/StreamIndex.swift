import Synchronization

/// The stream index of one segment (Format.md §13): the active segment's
/// entries in memory (and a sealed one's until its `.streamindex` file is
/// written), or a sealed segment's file.
enum SegmentStreamIndex: Sendable {
    /// Entries below `count` are published.
    case entries(StreamEntries, count: Int)
    case file(StreamIndexView)
}

/// The stream layer's index: every stream's state (`table`) and, per
/// segment, where each stream's events are. It keeps its per-segment part by
/// segment id, told of every change to the segment set through
/// `SegmentIndexing`.
///
/// ## Concurrency
/// Only the writer (under the writer lock) changes it; readers look up under
/// the table's lock and the per-segment lock, each held for a few loads. The
/// writer updates both before the segment set publishes the batch, so a
/// reader that took its log snapshot first finds every entry the snapshot
/// shows (and ignores entries past it).
final class StreamIndex: SegmentIndexing {
    let table: StreamTable
    let directory: DirectoryOperations
    /// Bytes written between two stream table checkpoints, at least.
    let checkpointBytes: UInt64
    private let indexes: Mutex<Indexes>
    /// The writer's sequence when the stream table was last checkpointed.
    private let tableCheckpointSequence = Atomic<UInt64>(0)
    /// Reused scratch of the batch builder's streams (writer only).
    let batchScratch = Mutex<BatchStreams>(BatchStreams())

    struct Indexes: Sendable {
        /// The active segment's id and entries (nil before the first segment).
        var active: (id: SegmentID, base: UInt64, entries: StreamEntries, count: Int)?
        /// Sealed segments.
        var sealed: [SegmentID: SegmentStreamIndex] = [:]
        /// The position up to which the table and entries hold every record
        /// (what a read-only log's `catchUp` goes on from).
        var indexedEnd: UInt64 = 0
    }

    init(
        table: StreamTable, directory: DirectoryOperations, checkpointBytes: Int,
        sealed: [SegmentID: SegmentStreamIndex], active: (id: SegmentID, base: UInt64, entries: StreamEntries)?, indexedEnd: UInt64
    ) {
        self.table = table
        self.directory = directory
        self.checkpointBytes = UInt64(checkpointBytes)
        var indexes = Indexes(sealed: sealed, indexedEnd: indexedEnd)
        if let active { indexes.active = (active.id, active.base, active.entries, active.entries.writtenCount) }
        self.indexes = Mutex(indexes)
    }

    // MARK: Lookups

    /// The stream index of `segment` as published (nil when unknown).
    func index(of segment: Segment) -> SegmentStreamIndex? {
        indexes.withLock { indexes in
            if let active = indexes.active, active.id == segment.id { return .entries(active.entries, count: active.count) }
            return indexes.sealed[segment.id]
        }
    }

    /// The active segment's entries, for the writer.
    func activeEntries(for segment: Segment) -> StreamEntries? {
        indexes.withLock { indexes in
            guard let active = indexes.active, active.id == segment.id else { return nil }
            return active.entries
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
            indexes.active = (segment.id, segment.basePosition, StreamEntries(), 0)
        }
    }

    func indexFileWriter(for segment: Segment) -> (@Sendable () throws(IOError) -> Void)? {
        guard case .entries(let entries, let count)? = index(of: segment) else { return nil }
        let directory = self.directory
        let table = self.table
        return { [weak self] () throws(IOError) in
            let name = FileNames.streamIndex(segment.basePosition)
            let bytes = StreamIndexBuilder.encode(segment, entries: entries, count: count, table: table)
            try directory.writeAtomically(name, bytes: bytes)
            guard segment.isSealed, let view = StreamIndexView.open(path: directory.file(name), faults: directory.faults) else { return }
            self?.indexes.withLock { indexes in
                // Only the segment this file was written for: never one that replaced it.
                if indexes.sealed[segment.id] != nil { indexes.sealed[segment.id] = .file(view) }
            }
        }
    }

    func checkpoint(covering position: UInt64, writtenBytes: UInt64, force: Bool) -> (@Sendable () throws(IOError) -> Void)? {
        if !force {
            // The stream table costs O(streams) to copy and write: written
            // when the log grew by 16 times its size since the last time.
            let tableBytes = UInt64(table.count) * 48
            let since = writtenBytes &- tableCheckpointSequence.load(ordering: .relaxed)
            guard since >= max(checkpointBytes, 16 * tableBytes) else { return nil }
        }
        tableCheckpointSequence.store(writtenBytes, ordering: .relaxed)
        // A copy-on-write reference now (under the writer lock), encoded later on the index writer's queue.
        let states = table.read { $0.streams }
        let directory = self.directory
        return { () throws(IOError) in
            try directory.writeAtomically(
                FileNames.streamTable, bytes: StreamTableFile.encode(states.lazy.map(\.row), coveredPosition: position))
        }
    }

    func catchUp(with snapshot: LogSnapshot) throws(EventLogError) {
        do {
            try catchUpThrowing(with: snapshot)
        } catch {
            throw .wrapping(error)
        }
    }

    private func catchUpThrowing(with snapshot: LogSnapshot) throws {
        let (known, from) = indexes.withLock { indexes in
            (Set(indexes.sealed.keys).union(indexes.active.map { [$0.id] } ?? []), indexes.indexedEnd)
        }
        for i in 0..<snapshot.count {
            let segment = snapshot[i]
            if known.contains(segment.id) {
                guard segment.endPosition > from, let entries = activeEntries(for: segment) else { continue }
                // The active segment grew: its new records.
                try StreamIndexBuilder.replay(
                    segment: segment, from: from, tableFrom: from, entriesFrom: from, entries: entries, table: table)
                publishActiveCount(entries.writtenCount, position: segment.endPosition)
                continue
            }
            // New (or mapped again): its entries from its first record, the table from where it stood.
            let entries = StreamEntries()
            try StreamIndexBuilder.replay(
                segment: segment, from: segment.basePosition, tableFrom: from, entriesFrom: segment.basePosition,
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

    /// A sealed segment's index: its file when one describes it, else its entries.
    private static func sealedIndex(
        _ segment: Segment, entries: StreamEntries, count: Int, directory: DirectoryOperations
    ) -> SegmentStreamIndex {
        if let view = StreamIndexView.open(path: directory.file(FileNames.streamIndex(segment.basePosition)), faults: directory.faults),
           view.describes(segment) {
            return .file(view)
        }
        return .entries(entries, count: count)
    }
}
