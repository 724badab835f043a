/// Merging (Format.md §4.2): after a scavenging pass, each group of small
/// neighbouring sealed segments (`MergePlan`) becomes one segment file.
/// For each group, in this order:
/// 1. `SegmentMerger` writes the merged file as `NNNN.segment.tmp` and syncs it;
/// 2. `SegmentSet.mergeSegments` commits the swap with the compaction
///    manifest `eventlog.swap` and finishes it (`MergeSwap`), then publishes
///    the new segment in place of the old ones.
///
/// Merging removes no record and moves no position, so it needs no sync of
/// the log first (scavenging's swap already made its markers durable), and
/// the stream table runs, which name streams' positions and versions, stay
/// valid as they are.
///
/// ## Concurrency
/// Used by `Maintenance` under its `running` lock only. Appends go on
/// meanwhile: only sealed segments merge.
struct SegmentMerging {
    let log: BatchLog

    struct Outcome: Sendable, Equatable {
        /// Segments taken into merges (a merge of n counts n).
        var segmentsMerged = 0
        /// Segments fewer afterwards (a merge of n counts n − 1).
        var segmentsRemoved = 0
        /// The merged segments' file lengths, before and after.
        var bytesBefore: UInt64 = 0
        var bytesAfter: UInt64 = 0
    }

    /// Merges the groups of the current snapshot's sealed segments, or,
    /// dry, says what it would merge once scavenging left `dataEndsAfter`
    /// (base position → data end) of the segments it would rewrite. Ends
    /// early, between groups, when `shouldStop` says so.
    func run(
        dryRun: Bool, dataEndsAfter: [UInt64: Int] = [:], shouldStop: () -> Bool = { false }
    ) throws(EventLogError) -> Outcome {
        let sealed = log.snapshot().sealed
        let candidates = sealed.map { segment in
            MergePlan.Candidate(
                base: segment.basePosition, end: segment.endPosition,
                dataBytes: dryRun ? dataEndsAfter[segment.basePosition] ?? segment.dataEnd : segment.dataEnd)
        }
        let groups = MergePlan.make(candidates, segmentBytes: Self.segmentBytes(log), maxSpan: log.options.maxMergedSpan)
        var outcome = Outcome()
        for group in groups {
            if shouldStop() { break }
            let segments = Array(sealed[group])
            outcome.segmentsMerged += segments.count
            outcome.segmentsRemoved += segments.count - 1
            if dryRun {
                outcome.bytesBefore += segments.reduce(0) { total, segment in
                    total + UInt64(dataEndsAfter[segment.basePosition] ?? segment.mapping.length)
                }
                outcome.bytesAfter += UInt64(SegmentMerger.mergedBytes(dataEnds: candidates[group].map(\.dataBytes)))
                continue
            }
            outcome.bytesBefore += segments.reduce(0) { $0 + UInt64($1.mapping.length) }
            outcome.bytesAfter += UInt64(try merge(segments))
        }
        return outcome
    }

    /// The segment size merging fills up to: the smaller of the size this
    /// writer rolls segments at (`LogOptions.segmentBytes`) and the one the
    /// log was created with (`eventlog.meta`), so that a process opened
    /// with other options (a command-line tool with the defaults) never
    /// makes segments larger than the log's own.
    static func segmentBytes(_ log: BatchLog) -> Int {
        let created = Int(log.metadata.segmentBytes)
        return created >= Limits.minSegmentBytes ? min(log.options.segmentBytes, created) : log.options.segmentBytes
    }

    /// Merges `segments` (steps 1 and 2 above); returns the new file's length.
    private func merge(_ segments: [Segment]) throws(EventLogError) -> Int {
        let directory = log.directory
        let base = segments[0].basePosition
        let temporary = MergeSwap.temporary(base)
        do {
            let written = try SegmentMerger.merge(
                segments, logID: log.segments.logID, to: directory.file(temporary), modes: directory.modes, faults: directory.faults,
                paces: log.backgroundCopyPaces)
            let manifest = CompactionManifest(
                oldBases: segments.map(\.basePosition), newBase: base, newDeclaredEnd: written.header.declaredEnd ?? base,
                newHeaderChecksum: written.header.checksum)
            let path = log.path
            let options = log.options
            _ = try log.segments.mergeSegments(segments, manifest: manifest) { Opener(path: path, options: options) }
            return written.bytes
        } catch {
            // Before the commit nothing else changed; after it, the set says it is unfinished.
            if !log.segments.hasUnfinishedSwap { try? directory.remove(temporary) }
            throw .wrapping(error)
        }
    }
}
