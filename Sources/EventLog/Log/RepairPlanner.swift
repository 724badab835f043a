/// The rules of a repair (Format.md §10.1) applied to what `verify` found:
/// where the log ends, which files go aside, whether the stream table can be
/// rebuilt, and what the open that ends the repair writes again. Reads the
/// directory's listing and its stream table runs; changes nothing.
struct RepairPlanner {
    let directory: DirectoryOperations
    let report: VerificationReport
    let names: [String]
    let present: Set<String>
    /// The files `verify` named in a problem.
    let flagged: Set<String>
    var plan: RepairPlan
    var steps = LogRepair.Steps()
    /// The segments the log keeps are `checks[..<moveFrom]`.
    var checks: [SegmentCheck]
    var moveFrom = 0
    var newEnd: UInt64 = 0

    init(directory: DirectoryOperations, report: VerificationReport) throws {
        self.directory = directory
        self.report = report
        names = try directory.list()
        present = Set(names)
        flagged = Set(report.problems.map(\.file))
        plan = RepairPlan(path: directory.path)
        checks = report.segmentChecks
    }

    var kept: ArraySlice<SegmentCheck> { checks[..<moveFrom] }

    mutating func make(now: Timestamp) -> (RepairPlan, LogRepair.Steps) {
        // Refined below; what a refusal before then reports.
        plan.endPositionBefore = checks.map(\.reachedPosition).max() ?? 0
        plan.endPositionAfter = plan.endPositionBefore
        let start: UInt64
        switch startFile(now: now) {
        case .success(let found): start = found
        case .failure(let refusal): return refused(refusal.reason)
        }
        if let unknown = report.problems.first(where: { !Self.isPlanned($0.file, in: directory) }) {
            return refused("\(unknown): repair does not rebuild this file (restore it from a backup)")
        }
        if let refusal = endTheLog(start: start) { return refused(refusal) }
        moveDerivedFiles()
        let (reach, refusal) = streamTable(start: start)
        if let refusal { return refused(refusal) }
        listRebuilds(streamTableFrom: reach)
        if steps.cut != nil || !steps.derivedFiles.isEmpty || !steps.segmentFiles.isEmpty || steps.rewritesJournal {
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

    /// A plan that does nothing, and why.
    private mutating func refused(_ reason: String) -> (RepairPlan, LogRepair.Steps) {
        plan.refusal = reason
        plan.actions = []
        return (plan, LogRepair.Steps())
    }

    // MARK: 0. The log start

    struct Refusal: Error { let reason: String }

    /// The log start position. A damaged `eventlog.start`, or a missing one
    /// that `verify` reported (the first segment starts past 0), is written
    /// again with the first segment's base position (Format.md §10.1): the
    /// segments hold every event there is, and nothing else records where
    /// the log starts. Refused when there is no segment to take it from.
    private mutating func startFile(now: Timestamp) -> Result<UInt64, Refusal> {
        let file = directory.file(FileNames.logStart)
        let damage: (offset: Int64, reason: String)
        do {
            if let found = try LogStart.read(in: directory) { return .success(found.startPosition) }
            guard let missing = report.problems.first(where: { $0.file == file && $0.offset == 0 }) else { return .success(0) }
            damage = (0, missing.reason)
        } catch {
            guard let found = (error as? EventLogError).flatMap(FileDamage.init) else {
                return .failure(Refusal(reason: "\(error): repair does not rewrite \(FileNames.logStart) (restore it from a backup)"))
            }
            damage = (found.offset, found.reason)
        }
        guard let first = checks.first?.base else {
            return .failure(Refusal(reason: "\(file) at byte \(damage.offset): \(damage.reason); no segment gives the start: restore it from a backup"))
        }
        steps.startBytes = LogStart(startPosition: first, writtenAt: now).encode()
        plan.actions.append(RepairAction(
            kind: .rebuild, file: FileNames.logStart, offset: damage.offset,
            reason: "\(damage.reason); written again with the first segment's base position \(first) as the log start "
                + "(its count of segment rewrites starts again at 0)"))
        return .success(first)
    }

    // MARK: 1. Where the log ends

    /// Finds the first damage in position order and plans the cut or the
    /// segments moved aside (and a new segment after a rewritten last one);
    /// returns a refusal when a segment before it cannot be read.
    private mutating func endTheLog(start: UInt64) -> String? {
        if let last = checks.last, last.recoveredByOpen?.offset == 0, last.damage == nil {
            // A creation a crash interrupted: the next open removes the file.
            plan.notes.append("\(FileNames.segment(last.base)): \(last.recoveredByOpen?.reason ?? "")")
            checks.removeLast()
        }
        // A torn tail is not part of the log: the next open cuts it.
        plan.endPositionBefore = max(start, checks.map { $0.recoveredByOpen == nil ? $0.reachedPosition : $0.stopPosition }.max() ?? start)
        newEnd = checks.last.map { $0.declaredEnd ?? $0.stopPosition } ?? start
        moveFrom = checks.count
        let first = checks.firstIndex { $0.missingBefore != nil || $0.damage != nil || $0.missingAfter != nil }
        if let unreadable = checks[..<(first.map { $0 + 1 } ?? checks.count)].first(where: { $0.unreadable != nil }) {
            plan.endPositionAfter = plan.endPositionBefore
            return "\(FileNames.segment(unreadable.base)): \(unreadable.unreadable ?? "")"
        }
        if let first { planEnd(at: first) }
        plan.endPositionAfter = newEnd
        if steps.cut == nil, moveFrom == checks.count, let last = checks.last, let torn = last.recoveredByOpen {
            plan.notes.append("\(FileNames.segment(last.base)) at byte \(torn.offset): \(torn.reason)")
        }
        return nil
    }

    /// The log ends at the damage of `checks[i]`, the first one.
    private mutating func planEnd(at i: Int) {
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
        guard moveFrom < checks.count else { return }
        if moveFrom > 0, checks[moveFrom - 1].declaredEnd != nil {
            // A rewritten segment is never the last one (Format.md §4.1): the log goes on in a new one.
            steps.newSegment = newEnd
        }
        for (k, moved) in checks[moveFrom...].enumerated() {
            let segment = FileNames.segment(moved.base)
            if k > 0 {
                plan.actions.append(RepairAction(kind: .moveAside, file: segment, offset: nil, reason: "follows the damaged or missing segment"))
            }
            steps.segmentFiles.append(segment)
            for index in Self.indexFiles(moved.base) where present.contains(index) {
                steps.segmentFiles.append(index)
                plan.actions.append(RepairAction(kind: .moveAside, file: index, offset: nil, reason: "index file of \(segment)"))
            }
        }
    }

    // MARK: 2. Derived files

    /// What describes the part that leaves the log, and what `verify` found damaged.
    private mutating func moveDerivedFiles() {
        if steps.cut != nil || moveFrom < checks.count || steps.newSegment != nil {
            moveAside(FileNames.cleanShutdown, "describes the log before the repair (the next close writes it again)")
        }
        if let cut = steps.cut {
            for name in Self.indexFiles(cut.base) {
                moveAside(name, "describes \(FileNames.segment(cut.base)) past the cut (rebuilt)")
            }
        }
        let keptBases = Set(kept.map(\.base))
        for name in names.sorted() {
            if let range = FileNames.streamTableRunRange(name), range.to > newEnd {
                moveAside(name, "stream table run of positions \(range.from)..<\(range.to), past the new end \(newEnd)")
            } else if let base = Self.indexedBase(name), base >= newEnd, !keptBases.contains(base) {
                moveAside(name, "index file of no segment of the repaired log")
            }
        }
        for problem in report.problems where problem.file != directory.file(FileNames.metadata) {
            let name = String(problem.file.dropFirst(directory.path.count + 1))
            guard FileNames.segmentBase(name) == nil, name != FileNames.logStart else { continue }
            if name == FileNames.cursorJournal {
                // Not moved aside: that would lose its sound cursors. Copied
                // aside, then rewritten with what it still holds (`Log.repair`).
                if !steps.rewritesJournal {
                    steps.rewritesJournal = true
                    plan.actions.append(RepairAction(
                        kind: .rebuild, file: name, offset: problem.offset,
                        reason: present.contains(name)
                            ? "rewritten with the cursors its records still hold; the damaged file is copied aside first"
                            : "written again (Format.md §15, a missing journal)"))
                }
                continue
            }
            if name == FileNames.settings {
                // Not derived, but its defaults remove nothing (Format.md §10.1).
                moveAside(name, problem.reason + "; the settings return to their defaults (retain everything, no key compaction) "
                    + "until eventlog config sets them again")
                continue
            }
            moveAside(name, problem.reason)
        }
    }

    private mutating func moveAside(_ name: String, _ reason: String) {
        guard present.contains(name), !steps.derivedFiles.contains(name), !steps.segmentFiles.contains(name) else { return }
        steps.derivedFiles.append(name)
        plan.actions.append(RepairAction(kind: .moveAside, file: name, offset: nil, reason: reason))
    }

    // MARK: 3. The stream table (Format.md §14.3)

    /// Where the chain of the runs that stay ends (the open replays from
    /// there), and a refusal when that replay cannot rebuild what the runs
    /// that go held.
    private func streamTable(start: UInt64) -> (reach: UInt64, refusal: String?) {
        let runs = StreamTableRunChain.openAll(in: directory).runs
        let staying = runs.filter { !steps.derivedFiles.contains(FileNames.streamTableRun(from: $0.from, to: $0.to)) }
        let reach = StreamTableRunChain.select(from: staying, end: newEnd).last?.to ?? 0
        // Positions from here on any open after a crash replays as well.
        let reachBefore = min(StreamTableRunChain.select(from: runs, end: .max).last?.to ?? 0, newEnd)
        if reach < start {
            return (reach, "the log starts at position \(start) (retention removed the segments before it), and the stream table runs "
                + "that stay reach only position \(reach): the streams of the removed segments are recorded only in the runs from "
                + "there, which are missing, damaged, or also hold changes of positions past \(newEnd) that leave the log; a replay "
                + "of the log cannot rebuild them (Format.md §14.3). Restore the damaged files from a backup.")
        }
        if reach < reachBefore, let scavenged = Self.firstRemoved(in: kept, from: reach, to: reachBefore) {
            return (reach, "without the stream table runs that go aside, the open would replay positions \(reach)..<\(reachBefore), "
                + "and scavenging removed positions \(scavenged.lowerBound)..<\(scavenged.upperBound) among them: a replay "
                + "would restore the streams' versions but not what only the runs hold of the removed events (each stream's "
                + "last append, by which a retried append is recognised, Format.md §14.4). Restore the damaged files from a backup.")
        }
        return (reach, nil)
    }

    // MARK: 4. What the open that ends the repair writes again

    private mutating func listRebuilds(streamTableFrom reach: UInt64) {
        for check in kept {
            for name in Self.indexFiles(check.base) where steps.derivedFiles.contains(name) || flagged.contains(directory.file(name)) {
                plan.actions.append(RepairAction(kind: .rebuild, file: name, offset: nil, reason: "from its segment"))
            }
        }
        // A run `verify` found missing (the chain stops short of a clean shutdown's end) is rebuilt the same way.
        let runMissing = report.problems.contains { problem in
            let name = String(problem.file.dropFirst(directory.path.count + 1))
            return FileNames.streamTableRunRange(name) != nil && !present.contains(name)
        }
        if reach < newEnd, runMissing || steps.derivedFiles.contains(where: { FileNames.streamTableRunRange($0) != nil }) {
            plan.actions.append(RepairAction(
                kind: .rebuild, file: FileNames.streamTableRun(from: reach, to: newEnd), offset: nil,
                reason: "the stream table, replayed from the log from position \(reach)"))
        }
        if let base = steps.newSegment {
            plan.actions.append(RepairAction(
                kind: .rebuild, file: FileNames.segment(base), offset: nil,
                reason: "an empty segment where the log continues: a rewritten segment is never the last one (Format.md §4.1)"))
        }
    }
}

extension RepairPlanner {
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
    /// checks), derived files, the log start (its chain of runs), the
    /// metadata, the cursor journal and the settings.
    static func isPlanned(_ file: String, in directory: DirectoryOperations) -> Bool {
        guard file.hasPrefix(directory.path + "/") else { return false }
        let name = String(file.dropFirst(directory.path.count + 1))
        return FileNames.segmentBase(name) != nil || indexedBase(name) != nil || FileNames.streamTableRunRange(name) != nil
            || name.hasSuffix(FileNames.streamTableRunSuffix + ".tmp")
            || [FileNames.cleanShutdown, FileNames.lastCompaction, FileNames.logStart, FileNames.cursorJournal, FileNames.metadata,
                FileNames.settings, FileNames.cleanerCheckpoint].contains(name)
    }

    /// The first positions scavenging removed from `segments` within `[from, to)`.
    static func firstRemoved(in segments: ArraySlice<SegmentCheck>, from: UInt64, to: UInt64) -> Range<UInt64>? {
        for segment in segments {
            for removed in segment.removedPositions where removed.lowerBound < to && removed.upperBound > from {
                return max(removed.lowerBound, from)..<min(removed.upperBound, to)
            }
        }
        return nil
    }
}
