import Logging
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
/// the stream's next version, so every event of a deleted stream is dead),
/// or below the first of its stream's last max-count versions, or when it
/// is older than its stream's max age and not the stream's last event
/// (`StreamLimits`). With key compaction (`LogSettings.keyCompaction`), an
/// event is also dead when a later event of the sealed segments has its key
/// (`KeyMap`), and a tombstone when it is its key's latest event and older
/// than the tombstone retention. The stream's last event never is, nor any
/// marker: a stream's versions survive in its state and in the records that
/// remain, so a replay of the log still rebuilds them (Format.md §14.3).
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
/// 4. once per pass, after its last replacement (and after a pass that
///    failed part way), `eventlog.start`'s count of rewrites goes up by
///    one, so read-only processes look for the replaced files (Format.md
///    §3.1); until then they read the old files, whose mappings stay valid.
///
/// Finding dead events reads a segment's records; a segment found with too
/// few is not read again until a marker of a stream it holds events of is
/// applied (`StreamIndex.markerHashes`; any marker, when this process no
/// longer knows their streams), or until the first of its events that a
/// max age will make dead is that old. A writer keeps what it found in the
/// cleaner checkpoint (`CleanerCheckpoint`, Format.md §3.4), so that the
/// first pass after a restart reads only the records appended since the
/// checkpoint (looking for markers), not every segment again.
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
    /// Segments found without enough dead events, each with the time from
    /// which a max age or a tombstone's retention makes more of them dead
    /// (`.max`: never), and what they were judged under.
    private let clean = Mutex<(judgedUnder: Judgement, segments: [SegmentID: Timestamp])>((Judgement(), [:]))

    /// What a segment found clean was judged under: when any of it changes,
    /// it may not be clean any more.
    private struct Judgement: Equatable {
        /// The markers applied (`StreamIndex.markersApplied`).
        var markers: UInt64 = 0
        /// With key compaction: the end of the sealed segments, the tombstone
        /// retention and where the key map's window started.
        var sealedEnd: UInt64 = 0
        var tombstoneRetention: Int64 = -1
        var keyWindowStart: UInt64 = 0
    }
    /// Where the next pass's key map starts (`KeyMap`): where the last one's
    /// window ended when its keys did not all fit, else 0.
    private let keyWindow: Mutex<UInt64>
    /// The cleaner checkpoint read at open (a writer's), until the first
    /// pass adopts it or finds it out of date.
    private let restored: Mutex<CleanerCheckpoint?>
    /// The checkpoint last read or written: a pass writes only a changed one.
    private let persisted: Mutex<CleanerCheckpoint?>

    /// What key compaction asks of a pass.
    struct KeyCompaction: Sendable {
        var tombstoneRetentionMicroseconds: Int64
    }

    init(log: BatchLog, index: StreamIndex) {
        self.log = log
        self.index = index
        let checkpoint = log.options.readOnly ? nil : Self.readCheckpoint(in: log.directory, logger: log.options.logger)
        restored = Mutex(checkpoint)
        persisted = Mutex(checkpoint)
        keyWindow = Mutex(checkpoint?.keyWindowStart ?? 0)
    }

    /// The cleaner checkpoint, nil when there is none or it cannot be read
    /// (derived data: every segment is then judged again; `verify` reports
    /// the damage).
    static func readCheckpoint(in directory: DirectoryOperations, logger: Logger) -> CleanerCheckpoint? {
        do {
            guard let bytes = try directory.readWhole(FileNames.cleanerCheckpoint, atMost: CleanerCheckpoint.maxSize) else { return nil }
            return try CleanerCheckpoint.decode(bytes, file: directory.file(FileNames.cleanerCheckpoint))
        } catch {
            logger.warning("the cleaner checkpoint cannot be read; every segment is judged again", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// What a pass did (or, dry, would do).
    struct Outcome: Sendable, Equatable {
        /// Sealed segments whose records the pass read to judge them (the
        /// others it remembered clean).
        var segmentsJudged = 0
        var segmentsRewritten = 0
        var eventsRemoved: UInt64 = 0
        /// File lengths of the rewritten segments, before and after (an
        /// appended segment's file has its full capacity, sparse past its data).
        var bytesBefore: UInt64 = 0
        var bytesAfter: UInt64 = 0
        /// A dry run's rewritten segments: base position → the data end
        /// (header and batches) the rewrite would leave, as counted (what
        /// merging would then see; `SegmentMerging`).
        var dataEndsAfter: [UInt64: Int] = [:]
    }

    /// One pass over the sealed segments of the current snapshot; it ends
    /// early, between segments, when `shouldStop` says so (a closing log).
    func run(
        dryRun: Bool, keyCompaction: KeyCompaction? = nil, shouldStop: () -> Bool = { false }
    ) throws(EventLogError) -> Outcome {
        let snapshot = log.snapshot()
        // Read before the count of markers: a marker is applied (and
        // counted) before its batch is published, so every marker before
        // this position is in the count.
        let judgedTo = snapshot.endPosition
        let markers = index.markersApplied.load(ordering: .relaxed)
        let now = currentTimestamp()
        let sealed = snapshot.sealed
        // With key compaction, a newly sealed segment may supersede keys of any older one.
        let sealedEnd = keyCompaction == nil ? 0 : sealed.last?.endPosition ?? 0
        let windowStart = keyCompaction == nil ? 0 : keyWindow.withLock { $0 }
        // Settings changed since, or the key map's window moved: what was clean may not be.
        let judgement = Judgement(
            markers: markers, sealedEnd: sealedEnd, tombstoneRetention: keyCompaction?.tombstoneRetentionMicroseconds ?? -1,
            keyWindowStart: windowStart)
        var known = clean.withLock { memory -> [SegmentID: Timestamp] in
            if memory.judgedUnder != judgement {
                memory = (judgement, stillClean(memory.segments, judgedUnder: memory.judgedUnder, now: judgement, sealed: sealed))
            }
            return memory.segments
        }
        if let checkpoint = restored.withLock({ restored in defer { restored = nil }; return restored }), known.isEmpty {
            known = try adopt(checkpoint, judgement: judgement, judgedTo: judgedTo, start: snapshot.startPosition, sealed: sealed)
        }
        var outcome = Outcome()
        var keys: KeyMap?
        if keyCompaction != nil && sealed.contains(where: { segment in known[segment.id].map { now >= $0 } ?? true }) {
            let (map, windowEnd) = try Self.keyMap(
                of: sealed, from: windowStart, capacity: KeyMap.capacity(log.options), logID: log.segments.logID)
            keys = map
            if !dryRun { keyWindow.withLock { $0 = windowEnd ?? 0 } }
        }
        var states = DeadRecordRule(
            index: index, now: now, keys: keys, tombstoneRetention: keyCompaction?.tombstoneRetentionMicroseconds ?? 0,
            cacheLimit: DeadRecordRule.cacheLimit(for: log.options))
        states.forgottenKeys = log.keyRing?.forgottenKeys() ?? []
        var replaced = false
        defer {
            // Step 4, also when the pass stops part way (an error here is the
            // pass's second; the first stands).
            if replaced { try? Self.countRewrite(in: log.directory) }
        }
        for segment in sealed {
            if let recheck = known[segment.id], now < recheck { continue }
            if shouldStop() { break }
            outcome.segmentsJudged += 1
            let (dead, events, nextExpiry, dataEndAfter) = try count(in: segment, states: &states, stopWhenSure: !dryRun)
            guard dead > 0, dead * Self.minimumDeadShare.denominator >= events * Self.minimumDeadShare.numerator else {
                if !dryRun { remember(segment.id, until: nextExpiry, judgedUnder: judgement) }
                continue
            }
            outcome.segmentsRewritten += 1
            outcome.bytesBefore += UInt64(segment.mapping.length)
            if dryRun {
                outcome.eventsRemoved += UInt64(dead)
                // An estimate: the data in proportion to the events that stay.
                outcome.bytesAfter += UInt64(segment.dataEnd) * UInt64(events - dead) / UInt64(max(events, 1))
                outcome.dataEndsAfter[segment.basePosition] = dataEndAfter
                continue
            }
            let rewritten = try rewrite(segment, states: &states)
            // The rewrite's own count: the walk above may have stopped part way.
            outcome.eventsRemoved += UInt64(rewritten.outcome.removedRecords)
            outcome.bytesAfter += UInt64(rewritten.outcome.bytesAfter)
            if let new = rewritten.segment {
                replaced = true
                remember(new.id, until: rewritten.nextExpiry, judgedUnder: judgement)
            }
        }
        if replaced {
            replaced = false
            do { try Self.countRewrite(in: log.directory) } catch { throw .wrapping(error) }
        }
        if !dryRun { try persist(judgedUnder: judgement, judgedTo: judgedTo) }
        return outcome
    }

    /// Forgets which segments were found clean (in memory and the cleaner
    /// checkpoint): after a data key is forgotten, segments found clean may
    /// hold events it sealed, which are now dead.
    func forgetCleanSegments() throws(EventLogError) {
        clean.withLock { $0 = (Judgement(), [:]) }
        restored.withLock { $0 = nil }
        persisted.withLock { $0 = nil }
        do { try log.directory.remove(FileNames.cleanerCheckpoint) } catch { throw .io(error) }
    }

    // MARK: The cleaner checkpoint (Format.md §3.4)

    /// The segments of `sealed` that `checkpoint` found clean, with their
    /// recheck times, when it still holds: judged under the same key
    /// compaction, at or after the log start, and no marker at or after
    /// the position it was judged to (the records since are read to see).
    /// Adopted as this process's memory of clean segments; empty when it
    /// does not hold.
    private func adopt(
        _ checkpoint: CleanerCheckpoint, judgement: Judgement, judgedTo: UInt64, start: UInt64, sealed: [Segment]
    ) throws(EventLogError) -> [SegmentID: Timestamp] {
        guard checkpoint.sealedEnd == judgement.sealedEnd, checkpoint.tombstoneRetention == judgement.tombstoneRetention,
              checkpoint.keyWindowStart == judgement.keyWindowStart,
              checkpoint.judgedTo >= start, checkpoint.judgedTo <= judgedTo,
              let markerStreams = try markerStreams(from: checkpoint.judgedTo, to: judgedTo)
        else { return [:] }
        var byBase: [UInt64: CleanerCheckpoint.Segment] = [:]
        for segment in checkpoint.segments { byBase[segment.basePosition] = segment }
        var adopted: [SegmentID: Timestamp] = [:]
        for segment in sealed {
            // The same file: a rewrite or a merge changes its end or its data end.
            guard let found = byBase[segment.basePosition], found.endPosition == segment.endPosition,
                  found.dataEnd == UInt64(segment.dataEnd)
            else { continue }
            adopted[segment.id] = found.recheckAt
        }
        if !markerStreams.isEmpty { adopted = keeping(adopted, clearOf: markerStreams, sealed: sealed) }
        return clean.withLock { memory in
            guard memory.judgedUnder == judgement, memory.segments.isEmpty else { return memory.segments }
            memory.segments = adopted
            return adopted
        }
    }

    /// The stream hashes of the stream markers in `[from, to)` (the records
    /// are read to see); nil when there are more than `RecentMarkers.capacity`
    /// distinct streams.
    private func markerStreams(from: UInt64, to: UInt64) throws(EventLogError) -> Set<UInt64>? {
        struct Stop: Error {}
        var hashes = Set<UInt64>()
        var tooMany = false
        guard from < to else { return hashes }
        do {
            _ = try log.read(from: from) { event in
                if event.position >= to { throw Stop() }
                guard event.isMarker else { return }
                hashes.insert(index.table.hash(event.streamBytes))
                if hashes.count > RecentMarkers.capacity {
                    tooMany = true
                    throw Stop()
                }
            }
        } catch is Stop {
            // At `to`, or too many.
        } catch {
            throw .wrapping(error)
        }
        return tooMany ? nil : hashes
    }

    /// Writes the cleaner checkpoint when what this process remembers
    /// changed: the sealed segments found clean under `judgement`, judged to
    /// `judgedTo`. A failed sync stops the writer (Format.md §11).
    private func persist(judgedUnder judgement: Judgement, judgedTo: UInt64) throws(EventLogError) {
        let remembered = clean.withLock { memory in memory.judgedUnder == judgement ? memory.segments : nil }
        guard let remembered else { return }
        let segments = log.snapshot().sealed.compactMap { segment in
            remembered[segment.id].map {
                CleanerCheckpoint.Segment(
                    basePosition: segment.basePosition, endPosition: segment.endPosition, dataEnd: UInt64(segment.dataEnd), recheckAt: $0)
            }
        }
        let checkpoint = CleanerCheckpoint(
            judgedTo: judgedTo, sealedEnd: judgement.sealedEnd, tombstoneRetention: judgement.tombstoneRetention,
            keyWindowStart: judgement.keyWindowStart, segments: segments)
        guard persisted.withLock({ $0 != checkpoint }) else { return }
        do {
            try log.directory.writeAtomically(FileNames.cleanerCheckpoint, bytes: checkpoint.encode())
        } catch {
            if error.isFailedSync { log.groupCommit.fail(error.description) }
            throw .io(error)
        }
        persisted.withLock { $0 = checkpoint }
    }

    /// Of the segments found clean under `before`, those still clean under
    /// `now`: when only markers came since (and this process knows their
    /// streams), the segments that hold no event of their streams (a
    /// marker changes what is dead of its own stream only); else none.
    private func stillClean(
        _ segments: [SegmentID: Timestamp], judgedUnder before: Judgement, now: Judgement, sealed: [Segment]
    ) -> [SegmentID: Timestamp] {
        var sameButMarkers = before
        sameButMarkers.markers = now.markers
        guard !segments.isEmpty, sameButMarkers == now, now.markers > before.markers,
              let hashes = index.markerHashes(after: before.markers, through: now.markers)
        else { return [:] }
        return keeping(segments, clearOf: hashes, sealed: sealed)
    }

    /// The entries of `segments` whose sealed segment holds no event of the
    /// streams whose hashes are `hashes` (by its stream index). Bounded: past
    /// `maxContainmentChecks` lookups, none are kept (every segment is
    /// judged again, as a pass does anyway).
    private func keeping(_ segments: [SegmentID: Timestamp], clearOf hashes: Set<UInt64>, sealed: [Segment]) -> [SegmentID: Timestamp] {
        guard hashes.count * segments.count <= Self.maxContainmentChecks else { return [:] }
        var kept: [SegmentID: Timestamp] = [:]
        for segment in sealed {
            guard let recheck = segments[segment.id], !index.mayHoldEvents(of: hashes, in: segment) else { continue }
            kept[segment.id] = recheck
        }
        return kept
    }

    /// The most stream index lookups (marker streams × segments) spent on
    /// keeping segments found clean after markers, instead of judging every
    /// segment again.
    static let maxContainmentChecks = 1 << 20

    /// Remembers a segment found clean until `recheck`, unless what it was
    /// found under changed meanwhile.
    private func remember(_ id: SegmentID, until recheck: Timestamp, judgedUnder judgement: Judgement) {
        clean.withLock { memory in
            if memory.judgedUnder == judgement { memory.segments[id] = recheck }
        }
    }

    /// The key map of the events of `sealed` from position `start` on (one
    /// walk, `KeyMap`), and where its window ended: the position of the
    /// first event whose key did not fit (nil: every key fitted).
    private static func keyMap(
        of sealed: [Segment], from start: UInt64, capacity: Int, logID: [UInt8]
    ) throws(EventLogError) -> (KeyMap, windowEnd: UInt64?) {
        var keys = KeyMap(capacity: capacity)
        var windowEnd: UInt64?
        for segment in sealed where segment.endPosition > start {
            do {
                _ = try SegmentRewriter.rewrite(segment, logID: logID, to: nil, modes: .ownerOnly, faults: nil, paces: { false }) { head in
                    if !head.isMarker, head.position >= start, !keys.note(head.key, at: head.position), windowEnd == nil {
                        windowEnd = head.position
                    }
                    return true
                }
            } catch {
                throw .wrapping(error)
            }
        }
        return (keys, windowEnd)
    }

    /// Dead events and all events (markers left out) of `segment`, when
    /// the first of the others a max age makes dead will be (`.max`: none),
    /// and the data end a rewrite would leave (uncompressed frames: LZ4 may
    /// save more): the rewrite's own walk, writing nothing.
    ///
    /// With `stopWhenSure`, the walk stops as soon as the dead events reach
    /// `minimumDeadShare` of every position the segment covers (more than
    /// its events can be): the segment is rewritten whatever the rest
    /// holds, and the rewrite's own walk finds the rest. The counts are
    /// then those of the part walked (a 30% dead segment is decided after
    /// about a fifth of it).
    private func count(
        in segment: Segment, states: inout DeadRecordRule, stopWhenSure: Bool
    ) throws(EventLogError) -> (dead: Int, events: Int, nextExpiry: Timestamp, dataEndAfter: Int) {
        struct Sure: Error {}
        var events = 0
        var dead = 0
        var nextExpiry = Timestamp.max
        let positions = Int(clamping: segment.endPosition - segment.basePosition)
        var outcome: SegmentRewriter.Outcome?
        do {
            outcome = try SegmentRewriter.rewrite(
                segment, logID: log.segments.logID, to: nil, modes: .ownerOnly, faults: nil, paces: { false }
            ) { head in
                if head.isMarker { return true }
                events += 1
                if try states.keeps(head, nextExpiry: &nextExpiry) { return true }
                dead += 1
                if stopWhenSure, dead * Self.minimumDeadShare.denominator >= positions * Self.minimumDeadShare.numerator {
                    throw Sure()
                }
                return false
            }
        } catch is Sure {
            outcome = nil
        } catch {
            throw .wrapping(error)
        }
        return (dead, events, nextExpiry, outcome?.bytesAfter ?? segment.dataEnd)
    }

    /// Rewrites `segment` without its dead events and puts the new file in
    /// its place (steps 1–4 above). The new segment is nil when retention
    /// removed the old one meanwhile.
    private func rewrite(
        _ segment: Segment, states: inout DeadRecordRule
    ) throws(EventLogError) -> (outcome: SegmentRewriter.Outcome, segment: Segment?, nextExpiry: Timestamp) {
        let directory = log.directory
        let temporary = FileNames.segment(segment.basePosition) + ".tmp"
        var nextExpiry = Timestamp.max
        // The new file's stream index entries, as its frames are written: it is not read again to index it.
        var entries: [StreamIndexBuilder.RecordEntry] = []
        let base = segment.basePosition
        let table = index.table
        do {
            let outcome = try SegmentRewriter.rewrite(
                segment, logID: log.segments.logID, to: directory.file(temporary), modes: directory.modes, faults: directory.faults,
                paces: log.backgroundCopyPaces, unitBytes: log.options.compressionUnitBytes,
                dictionaryUnitBytes: log.options.dictionaryUnitBytes,
                kept: { head, frameOffset, recordOffset in
                    guard !head.isMarker else { return }
                    entries.append(StreamIndexBuilder.RecordEntry(
                        hash: table.hash(head.stream), position: head.position, version: head.version, in: base,
                        frameOffset: frameOffset, recordOffset: recordOffset))
                }
            ) { head in
                if head.isMarker { return true }
                return try states.keeps(head, nextExpiry: &nextExpiry)
            }
            try log.sync()
            let path = log.path
            let options = log.options
            let kept = entries
            let new = try log.segments.replaceSegment(
                segment, with: temporary, indexFile: { StreamIndexBuilder.file(of: $0, entries: kept) }
            ) { Opener(path: path, options: options) }
            return (outcome, new, nextExpiry)
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

/// Which events a scavenging pass keeps: each stream's floors (its
/// readable floor, `StreamState.readableFrom`, its max age and next
/// version) looked up in the stream table once per stream and pass, and
/// applied at the pass's `now`. A floor read early in a pass is never too
/// high for a truncation or deletion, which only raise it; limits set
/// during a pass apply from the next one (and lowering a limit reveals
/// hidden events only until a pass removes them: README, "Stream limits").
struct DeadRecordRule {
    let index: StreamIndex
    let now: Timestamp
    /// With key compaction: each key's latest position in the sealed segments.
    let keys: KeyMap?
    /// Microseconds a tombstone stays once it is its key's latest event.
    let tombstoneRetention: Int64
    /// An encrypted log's forgotten data keys: the events they sealed are dead.
    var forgottenKeys: Set<UInt32> = []
    struct Floors {
        var versionFloor: UInt64
        /// Microseconds (0: no max age).
        var maxAge: UInt64
        var nextVersion: UInt64
    }
    /// Hash → the newest entry with it (+ 0); entries of one hash chain through `next`.
    private var byHash = HashIndex()
    /// Each stream asked about: its name's bytes in `names`, its floors.
    private var entries: [(nameStart: Int, nameCount: Int, floors: Floors, next: Int32)] = []
    /// The names of `entries`, back to back (one allocation, not one per stream).
    private var names: [UInt8] = []
    /// The last stream asked about: records of one stream often come in runs.
    private var last = -1
    /// The most streams the cache holds: when it is full it is emptied and
    /// fills again (a stream asked about again is read from the stream table
    /// again), so a pass over millions of streams holds at most this many.
    let cacheLimit: Int

    /// The cache's bytes per stream, as `cacheLimit(for:)` counts them: an
    /// entry (48 bytes), its hash slot and list entry (~24), and a name of ~24 bytes.
    static let cacheBytesPerStream = 96

    /// The cache limit `LogOptions.streamMemoryBytes` allows (at least 1,024 streams).
    static func cacheLimit(for options: LogOptions) -> Int {
        options.floorsCacheLimit ?? max(1024, options.streamMemoryBytes / cacheBytesPerStream)
    }

    init(index: StreamIndex, now: Timestamp, keys: KeyMap? = nil, tombstoneRetention: Int64 = 0, cacheLimit: Int) {
        self.index = index
        self.now = now
        self.keys = keys
        self.tombstoneRetention = tombstoneRetention
        self.cacheLimit = max(1, cacheLimit)
    }

    /// Whether the pass keeps the event `head` (not a marker); for a kept
    /// event a max age or a tombstone's retention will make dead, lowers
    /// `nextExpiry` to when it will.
    mutating func keeps(_ head: RecordHead, nextExpiry: inout Timestamp) throws(EventLogError) -> Bool {
        let floors = try self.floors(head.stream)
        if head.version < floors.versionFloor { return false }
        // The last event stays whatever its age or key: it keeps the stream's version.
        guard head.version &+ 1 < floors.nextVersion else { return true }
        // Sealed under a forgotten data key: unreadable for good.
        if let id = head.keyID, forgottenKeys.contains(id) { return false }
        if floors.maxAge > 0 {
            let expiry = Self.adding(Timestamp(clamping: floors.maxAge), to: head.timestamp)
            if expiry <= now { return false }
            nextExpiry = min(nextExpiry, expiry)
        }
        if let keys, let latest = keys.latestPosition(of: head.key) {
            if latest > head.position { return false }
            if head.isTombstone && latest == head.position {
                let expiry = Self.adding(tombstoneRetention, to: head.timestamp)
                if expiry <= now { return false }
                nextExpiry = min(nextExpiry, expiry)
            }
        }
        return true
    }

    @inline(__always) private static func adding(_ span: Int64, to timestamp: Timestamp) -> Timestamp {
        span > 0 && timestamp > Timestamp.max - span ? Timestamp.max : timestamp &+ span
    }

    /// The floors of the stream named `name`: from the cache, else from
    /// the stream table (once per stream and pass while the cache has room).
    /// Allocates only for a stream new to the cache.
    private mutating func floors(_ name: UnsafeRawBufferPointer) throws(EventLogError) -> Floors {
        if last >= 0, equal(last, name) { return entries[last].floors }
        let hash = StreamHash.hash(name)
        var i = byHash[hash].map { Int32($0) } ?? -1
        while i >= 0 {
            if equal(Int(i), name) {
                last = Int(i)
                return entries[Int(i)].floors
            }
            i = entries[Int(i)].next
        }
        let state = try index.table.state(named: String(decoding: name, as: UTF8.self))
        let floors = Floors(
            versionFloor: state?.readableFrom ?? 0, maxAge: state?.maxAgeMicroseconds ?? 0, nextVersion: state?.nextVersion ?? 0)
        if entries.count >= cacheLimit {
            byHash.removeAll()
            entries.removeAll(keepingCapacity: true)
            names.removeAll(keepingCapacity: true)
        }
        entries.append((names.count, name.count, floors, byHash[hash].map { Int32($0) } ?? -1))
        names.append(contentsOf: name)
        byHash.set(hash, UInt32(entries.count - 1))
        last = entries.count - 1
        return floors
    }

    /// True when entry `i`'s name is `name`.
    @inline(__always) private func equal(_ i: Int, _ name: UnsafeRawBufferPointer) -> Bool {
        let entry = entries[i]
        guard entry.nameCount == name.count else { return false }
        guard let query = name.baseAddress else { return true }
        return names.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return false }
            return memcmp(base + entry.nameStart, query, name.count) == 0
        }
    }
}
