import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Scavenging (Format.md §4, "Rewritten segments"): removes from sealed
/// segments the events of deleted streams and the events below a stream's
/// truncate-before, by rewriting each segment that holds enough of them.
///
/// An event is **dead** when it is not a stream marker and its version is
/// below its stream's truncate-before (a deletion sets truncate-before to
/// the stream's next version, so every event of a deleted stream is dead).
/// Markers are never removed, and neither is any event at or after
/// truncate-before: a stream's versions survive in its state and in the
/// records that remain, so a replay of the log still rebuilds them
/// (Format.md §14.3).
///
/// A segment is rewritten when at least 1/16 of its events are dead
/// (`minimumDeadShare`), so that a trickle of deletions does not make every
/// pass copy whole segments; the active segment never is. For each
/// segment, in this order (a crash at any point leaves the old file or the
/// new one, both consistent):
/// 1. `SegmentRewriter` writes `NNNN.segment.tmp` and syncs it;
/// 2. every record written so far is synced (`BatchLog.sync`): the markers
///    that made the records dead are durable before the records go;
/// 3. `SegmentSet.replaceSegment` renames it over the segment and
///    publishes it;
/// 4. `eventlog.start`'s count of rewrites goes up by one, so read-only
///    processes look for the replaced file (Format.md §3.1).
///
/// Finding dead events reads a segment's records; a segment found with too
/// few is not read again until a deletion or truncation is applied
/// (`StreamIndex.markersApplied`).
///
/// ## Concurrency
/// Used by `Maintenance` under its `running` lock only. Appends go on
/// meanwhile; a stream deleted during a pass may keep its events until the
/// next one.
final class Scavenger: Sendable {
    /// A segment is rewritten when at least this share of its events is dead.
    static let minimumDeadShare = (numerator: 1, denominator: 16)

    let log: BatchLog
    let index: StreamIndex
    /// Segments found without enough dead events, and the markers applied when they were.
    private let clean = Mutex<(markers: UInt64, segments: Set<SegmentID>)>((0, []))

    init(log: BatchLog, index: StreamIndex) {
        self.log = log
        self.index = index
    }

    /// What a pass did (or, dry, would do).
    struct Outcome: Sendable, Equatable {
        var segmentsRewritten = 0
        var eventsRemoved: UInt64 = 0
        /// File lengths of the rewritten segments, before and after (an
        /// appended segment's file has its full capacity, sparse past its data).
        var bytesBefore: UInt64 = 0
        var bytesAfter: UInt64 = 0
    }

    /// One pass over the sealed segments of the current snapshot; it ends
    /// early, between segments, when `shouldStop` says so (a closing log).
    func run(dryRun: Bool, shouldStop: () -> Bool = { false }) throws(EventLogError) -> Outcome {
        let markers = index.markersApplied.load(ordering: .relaxed)
        let known = clean.withLock { memory -> Set<SegmentID> in
            if memory.markers != markers { memory = (markers, []) }
            return memory.segments
        }
        var outcome = Outcome()
        var states = TruncationCache(index: index)
        for segment in log.snapshot().sealed where !known.contains(segment.id) {
            if shouldStop() { break }
            let (dead, events) = try count(in: segment, states: &states)
            guard dead > 0, dead * Self.minimumDeadShare.denominator >= events * Self.minimumDeadShare.numerator else {
                if !dryRun { clean.withLock { if $0.markers == markers { $0.segments.insert(segment.id) } } }
                continue
            }
            outcome.segmentsRewritten += 1
            outcome.eventsRemoved += UInt64(dead)
            outcome.bytesBefore += UInt64(segment.mapping.length)
            if dryRun {
                // An estimate: the data in proportion to the events that stay.
                outcome.bytesAfter += UInt64(segment.dataEnd) * UInt64(events - dead) / UInt64(max(events, 1))
                continue
            }
            let rewritten = try rewrite(segment, states: &states)
            outcome.bytesAfter += UInt64(rewritten.outcome.bytesAfter)
            if let new = rewritten.segment {
                clean.withLock { if $0.markers == markers { $0.segments.insert(new.id) } }
            }
        }
        return outcome
    }

    /// Dead events and all events (markers left out) of `segment`: the
    /// rewrite's own walk, writing nothing.
    private func count(in segment: Segment, states: inout TruncationCache) throws(EventLogError) -> (dead: Int, events: Int) {
        var events = 0
        let outcome: SegmentRewriter.Outcome
        do {
            outcome = try SegmentRewriter.rewrite(segment, logID: log.segments.logID, to: nil, faults: nil) { head in
                if head.isMarker { return true }
                events += 1
                return head.version >= (try states.truncateBefore(head.stream))
            }
        } catch {
            throw .wrapping(error)
        }
        return (outcome.removedRecords, events)
    }

    /// Rewrites `segment` without its dead events and puts the new file in
    /// its place (steps 1–4 above). The new segment is nil when retention
    /// removed the old one meanwhile.
    private func rewrite(
        _ segment: Segment, states: inout TruncationCache
    ) throws(EventLogError) -> (outcome: SegmentRewriter.Outcome, segment: Segment?) {
        let directory = log.directory
        let temporary = FileNames.segment(segment.basePosition) + ".tmp"
        do {
            let outcome = try SegmentRewriter.rewrite(
                segment, logID: log.segments.logID, to: directory.file(temporary), faults: directory.faults
            ) { head in
                if head.isMarker { return true }
                return head.version >= (try states.truncateBefore(head.stream))
            }
            try log.sync()
            let path = log.path
            let options = log.options
            let new = try log.segments.replaceSegment(segment, with: temporary) { Opener(path: path, options: options) }
            if new != nil { try Self.countRewrite(in: directory) }
            return (outcome, new)
        } catch {
            try? directory.remove(temporary)
            throw .wrapping(error)
        }
    }

    /// Adds one to `eventlog.start`'s count of rewrites (Format.md §3.1).
    static func countRewrite(in directory: DirectoryOperations) throws {
        guard var start = try LogStart.read(in: directory) else {
            throw EventLogError.corruption(file: directory.file(FileNames.logStart), offset: 0, reason: "the log start file is missing")
        }
        start.rewrites &+= 1
        start.writtenAt = currentTimestamp()
        try start.write(in: directory)
    }
}

/// Streams' truncate-before by name, looked up in the stream table once per
/// stream and pass. A value read early in a pass is never too high: a
/// stream's truncate-before only grows.
struct TruncationCache {
    let index: StreamIndex
    /// Hash → the first entry with it; entries of one hash chain through `next`.
    private var byHash: [UInt64: Int32] = [:]
    private var entries: [(name: [UInt8], truncateBefore: UInt64, next: Int32)] = []
    /// The last stream asked about: records of one stream come in runs.
    private var last: (entry: Int, hash: UInt64) = (-1, 0)

    init(index: StreamIndex) { self.index = index }

    mutating func truncateBefore(_ name: UnsafeRawBufferPointer) throws(EventLogError) -> UInt64 {
        if last.entry >= 0, Self.equal(entries[last.entry].name, name) { return entries[last.entry].truncateBefore }
        let hash = StreamHash.hash(name)
        var i = byHash[hash] ?? -1
        while i >= 0 {
            if Self.equal(entries[Int(i)].name, name) {
                last = (Int(i), hash)
                return entries[Int(i)].truncateBefore
            }
            i = entries[Int(i)].next
        }
        let value = try index.table.state(named: String(decoding: name, as: UTF8.self))?.truncateBefore ?? 0
        entries.append((Array(name), value, byHash[hash] ?? -1))
        byHash[hash] = Int32(entries.count - 1)
        last = (entries.count - 1, hash)
        return value
    }

    @inline(__always) private static func equal(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count, let y = b.baseAddress else { return a.count == b.count }
        return a.withUnsafeBytes { x in x.baseAddress.map { memcmp($0, y, b.count) == 0 } ?? false }
    }
}
