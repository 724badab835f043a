/// `Log.repair`: the explicit way past damage that an open refuses or that
/// `verify` reports (Format.md §10.1, "Repair"). It plans from what `verify`
/// found, and carries the plan out (`LogRepair+Apply.swift`) under the
/// writer lock, which it holds from `init` until it is released.
///
/// The rules:
/// - The first damage in position order decides where the log ends: damage
///   in a batch or record of the last segment cuts that segment at the
///   damaged batch; damage anywhere else (a sealed segment, a segment
///   header), or a missing segment, ends the log where the damaged or
///   missing segment begins, and every segment from there on is moved aside.
/// - Nothing is deleted: what leaves the log is moved (or, for a cut, first
///   copied) into the damaged directory. Derived files that describe what
///   left, or that `verify` found damaged, are moved aside too and rebuilt
///   by the open that ends the repair.
/// - The stream table runs that end at or before the new end are kept; the
///   others are moved aside and their part is replayed from the log. A
///   replay cannot bring back what retention or scavenging removed, so the
///   repair is refused when it would have to replay such positions.
///
/// Not thread-safe; one repair at a time holds the lock.
struct LogRepair {
    let directory: DirectoryOperations
    let metadata: LogMetadata
    /// The writer lock, held for the whole repair.
    let lock: FileHandle

    /// Takes the writer lock of the log in `path` (throws `locked` when a
    /// writer has it) and reads its metadata, refusing a log this build may
    /// not write (as a writer's open does).
    init(at path: String, faults: StorageFaults?) throws {
        guard DirectoryOperations.isDirectory(path) else { throw EventLogError.notFound(path: path) }
        directory = DirectoryOperations(path: path, faults: faults)
        let metadataFile = directory.file(FileNames.metadata)
        guard DirectoryOperations.exists(metadataFile) else { throw EventLogError.notFound(path: path) }
        lock = try Opener.lockForWriting(directory)
        guard let bytes = try directory.readWhole(FileNames.metadata) else { throw EventLogError.notFound(path: path) }
        metadata = try LogMetadata.decode(bytes, file: metadataFile, writing: true)
    }

    /// What the apply step does, in its order (see `apply`).
    struct Steps {
        /// The damaged directory's name in the log directory; nil when nothing leaves the log.
        var damagedDirectory: String?
        /// The last segment cut at `offset` (the bytes from there on copied aside).
        var cut: (base: UInt64, offset: Int)?
        /// Segment files (each followed by its index files) moved aside, from the lowest base up.
        var segmentFiles: [String] = []
        /// Derived files moved aside next (the clean-shutdown marker, runs, index files).
        var derivedFiles: [String] = []
        /// An empty segment created here, where the log continues after a rewritten segment.
        var newSegment: UInt64?
    }

    /// Plans the repair of what `report` (`Log.verify`, taken under the lock)
    /// found. Changes nothing.
    func plan(from report: VerificationReport, now: Timestamp = currentTimestamp()) throws -> (RepairPlan, Steps) {
        var plan = RepairPlan(path: directory.path)
        var steps = Steps()
        let names = try directory.list()
        let present = Set(names)
        let start: UInt64
        do { start = try LogStart.read(in: directory)?.startPosition ?? 0 } catch {
            plan.refusal = "\(error): repair does not rewrite \(FileNames.logStart) (restore it from a backup)"
            return (plan, steps)
        }
        let flagged = Set(report.problems.map(\.file))
        if let unknown = report.problems.first(where: { !Self.isPlanned($0.file, in: directory) }) {
            plan.refusal = "\(unknown): repair does not rebuild this file (restore it from a backup)"
            return (plan, steps)
        }

        // 1. Where the log ends: the first damage in position order.
        var checks = report.segmentChecks
        if let last = checks.last, last.recoveredByOpen?.offset == 0, last.damage == nil {
            plan.notes.append("\(FileNames.segment(last.base)): \(last.recoveredByOpen?.reason ?? "")")
            checks.removeLast()
        }
        // A torn tail is not part of the log: the next open cuts it.
        plan.endPositionBefore = max(start, checks.map { $0.recoveredByOpen == nil ? $0.reachedPosition : $0.stopPosition }.max() ?? start)
        plan.endPositionAfter = plan.endPositionBefore
        let firstDamaged = checks.firstIndex { $0.missingBefore != nil || $0.damage != nil || $0.missingAfter != nil }
        var newEnd = checks.last.map { $0.declaredEnd ?? $0.stopPosition } ?? start
        var moveFrom = checks.count
        if let unreadable = checks[..<(firstDamaged.map { $0 + 1 } ?? checks.count)].first(where: { $0.unreadable != nil }) {
            plan.refusal = "\(FileNames.segment(unreadable.base)): \(unreadable.unreadable ?? "")"
            return (plan, steps)
        }
        if let i = firstDamaged {
            let check = checks[i]
            let name = FileNames.segment(check.base)
            if let missing = check.missingBefore {
                moveFrom = i
                newEnd = missing.expected
                plan.actions.append(RepairAction(
                    kind: .moveAside, file: name, offset: nil,
                    reason: "\(missing.reason); the log ends at position \(newEnd), before the missing positions"))
            } else if let damage = check.damage, check.isLast, !damage.isInHeader, check.declaredEnd == nil {
                steps.cut = (check.base, damage.offset)
                newEnd = damage.position
                plan.actions.append(RepairAction(
                    kind: .cut, file: name, offset: Int64(damage.offset),
                    reason: "\(damage.reason); positions \(newEnd)..<\(plan.endPositionBefore) go aside, as "
                        + FileNames.cutOff(check.base, from: damage.offset)))
            } else if let damage = check.damage {
                moveFrom = i
                newEnd = check.base
                plan.actions.append(RepairAction(
                    kind: .moveAside, file: name, offset: Int64(damage.offset),
                    reason: "\(damage.reason) (a damaged \(check.isLast ? "header" : "sealed segment"): the segment and every one after it go aside)"))
            } else if let missing = check.missingAfter {
                newEnd = missing.position
                steps.newSegment = newEnd
            }
            if moveFrom < checks.count {
                if moveFrom > 0, checks[moveFrom - 1].declaredEnd != nil {
                    // A rewritten segment is never the last one (Format.md §4.1): the log goes on in a new one.
                    steps.newSegment = newEnd
                }
                for (k, moved) in checks[moveFrom...].enumerated() {
                    let segment = FileNames.segment(moved.base)
                    if k > 0 {
                        plan.actions.append(RepairAction(
                            kind: .moveAside, file: segment, offset: nil, reason: "follows the damaged or missing segment"))
                    }
                    steps.segmentFiles.append(segment)
                    for index in Self.indexFiles(moved.base) where present.contains(index) {
                        steps.segmentFiles.append(index)
                        plan.actions.append(RepairAction(kind: .moveAside, file: index, offset: nil, reason: "index file of \(segment)"))
                    }
                }
            }
        }
        plan.endPositionAfter = newEnd
        if steps.cut == nil, moveFrom == checks.count, let last = checks.last, let torn = last.recoveredByOpen {
            plan.notes.append("\(FileNames.segment(last.base)) at byte \(torn.offset): \(torn.reason)")
        }
        let kept = Array(checks[..<moveFrom])
        let keptBases = Set(kept.map(\.base))
        let changesSegments = steps.cut != nil || moveFrom < checks.count || steps.newSegment != nil

        // 2. Derived files: what describes the removed part, and what verify found damaged.
        func moveDerived(_ name: String, _ reason: String) {
            guard present.contains(name), !steps.derivedFiles.contains(name), !steps.segmentFiles.contains(name) else { return }
            steps.derivedFiles.append(name)
            plan.actions.append(RepairAction(kind: .moveAside, file: name, offset: nil, reason: reason))
        }
        if changesSegments {
            moveDerived(FileNames.cleanShutdown, "describes the log before the repair (the next close writes it again)")
        }
        if let cut = steps.cut {
            for name in Self.indexFiles(cut.base) {
                moveDerived(name, "describes \(FileNames.segment(cut.base)) past the cut (rebuilt)")
            }
        }
        for name in names.sorted() {
            if let range = FileNames.streamTableRunRange(name), range.to > newEnd {
                moveDerived(name, "stream table run of positions \(range.from)..<\(range.to), past the new end \(newEnd)")
            } else if let base = Self.indexedBase(name), base >= newEnd, !keptBases.contains(base) {
                moveDerived(name, "index file of no segment of the repaired log")
            }
        }
        for problem in report.problems where problem.file != directory.file(FileNames.metadata) {
            let name = String(problem.file.dropFirst(directory.path.count + 1))
            guard FileNames.segmentBase(name) == nil, name != FileNames.logStart else { continue }
            moveDerived(name, problem.reason)
        }

        // 3. The stream table: kept runs, and what the open replays (Format.md §14.3).
        let runs = StreamTableRunChain.openAll(in: directory).runs
        let keptRuns = runs.filter { !steps.derivedFiles.contains(FileNames.streamTableRun(from: $0.from, to: $0.to)) }
        let reach = StreamTableRunChain.select(from: keptRuns, end: newEnd).last?.to ?? 0
        let reachBefore = min(StreamTableRunChain.select(from: runs, end: .max).last?.to ?? 0, newEnd)
        if reach < start {
            plan.refusal = "the log starts at position \(start) (retention removed the segments before it), and the stream table runs "
                + "that stay reach only position \(reach): the streams of the removed segments are recorded only in the runs from "
                + "there, which are missing, damaged, or also hold changes of positions past \(newEnd) that leave the log; a replay "
                + "of the log cannot rebuild them (Format.md §14.3). Restore the damaged files from a backup."
        } else if reach < reachBefore, let scavenged = Self.firstRemoved(in: kept, from: reach, to: reachBefore) {
            plan.refusal = "without the stream table runs that go aside, the open would replay positions \(reach)..<\(reachBefore), "
                + "and scavenging removed positions \(scavenged.lowerBound)..<\(scavenged.upperBound) among them: a replay "
                + "would restore the streams' versions but not what only the runs hold of the removed events (each stream's "
                + "last append, by which a retried append is recognised, Format.md §14.4). Restore the damaged files from a backup."
        }
        if plan.refusal != nil {
            plan.actions = []
            steps = Steps()
            return (plan, steps)
        }

        // 4. What the open that ends the repair writes again.
        var rebuilt: [String] = []
        for check in kept {
            for name in Self.indexFiles(check.base) where steps.derivedFiles.contains(name) || flagged.contains(directory.file(name)) {
                rebuilt.append(name)
            }
        }
        for name in rebuilt {
            plan.actions.append(RepairAction(kind: .rebuild, file: name, offset: nil, reason: "from its segment"))
        }
        if reach < newEnd, steps.derivedFiles.contains(where: { FileNames.streamTableRunRange($0) != nil }) {
            plan.actions.append(RepairAction(
                kind: .rebuild, file: FileNames.streamTableRun(from: reach, to: newEnd), offset: nil,
                reason: "the stream table, replayed from the log from position \(reach)"))
        }
        if let base = steps.newSegment {
            plan.actions.append(RepairAction(
                kind: .rebuild, file: FileNames.segment(base), offset: nil,
                reason: "an empty segment where the log continues: a rewritten segment is never the last one (Format.md §4.1)"))
        }
        if steps.cut != nil || !steps.derivedFiles.isEmpty || !steps.segmentFiles.isEmpty {
            var name = FileNames.damagedDirectory(at: now)
            var suffix = 2
            while present.contains(name) {
                name = FileNames.damagedDirectory(at: now) + "-\(suffix)"
                suffix += 1
            }
            steps.damagedDirectory = name
            plan.damagedDirectory = directory.file(name)
        }
        return (plan, steps)
    }

    /// A segment's index files: offset, time and stream index.
    static func indexFiles(_ base: UInt64) -> [String] {
        [FileNames.offsetIndex(base), FileNames.timeIndex(base), FileNames.streamIndex(base)]
    }

    /// The base position of an index file's name; nil for any other name.
    static func indexedBase(_ name: String) -> UInt64? {
        for suffix in [FileNames.offsetIndexSuffix, FileNames.timeIndexSuffix, FileNames.streamIndexSuffix] where name.hasSuffix(suffix) {
            return FileNames.segmentBase(String(name.dropLast(suffix.count)) + FileNames.segmentSuffix)
        }
        return nil
    }

    /// True for the files whose problems a repair plans for: segments (their
    /// checks), derived files, and the log start (its chain of runs).
    static func isPlanned(_ file: String, in directory: DirectoryOperations) -> Bool {
        guard file.hasPrefix(directory.path + "/") else { return false }
        let name = String(file.dropFirst(directory.path.count + 1))
        return FileNames.segmentBase(name) != nil || indexedBase(name) != nil || FileNames.streamTableRunRange(name) != nil
            || name.hasSuffix(FileNames.streamTableRunSuffix + ".tmp")
            || [FileNames.cleanShutdown, FileNames.lastCompaction, FileNames.logStart].contains(name)
    }

    /// The first positions scavenging removed from `segments` within `[from, to)`.
    static func firstRemoved(in segments: [SegmentCheck], from: UInt64, to: UInt64) -> Range<UInt64>? {
        for segment in segments {
            for removed in segment.removedPositions where removed.lowerBound < to && removed.upperBound > from {
                return max(removed.lowerBound, from)..<min(removed.upperBound, to)
            }
        }
        return nil
    }
}
