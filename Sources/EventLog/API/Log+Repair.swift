extension Log {
    /// Plans, and with `apply` carries out, the repair of the log in `path`:
    /// the explicit way past damage that `open` refuses or `verify` reports
    /// (Format.md §10.1, "Repair"). It takes the writer lock as a writer's
    /// open does (throwing `locked` when a writer has the log open), checks
    /// every byte as `verify(at:)` does, and plans from the first damage:
    ///
    /// - damage in a batch of the last segment: the segment is cut at that
    ///   batch; the bytes from there on are first copied into the damaged
    ///   directory `DIR/damaged-<UTC time>/` as `<segment>.from-<offset>`;
    /// - damage in a sealed segment or a segment header, or a missing
    ///   segment: that segment and every later one (with their index files)
    ///   are moved into the damaged directory;
    /// - derived files that describe what left, or that `verify` found
    ///   damaged, are moved aside too, and rebuilt by an open that ends the
    ///   repair (which also moves cursors past the new end back to it);
    /// - a damaged cursor journal is copied aside and rewritten with what
    ///   its sound records hold: a cursor that damaged records name keeps
    ///   the position the records before the damage gave it (its consumer
    ///   reads again from there), or is dropped when none did; the plan's
    ///   action for the journal names each one's fate.
    ///
    /// Nothing is deleted: the events from the new end (`endPositionAfter`)
    /// on are in the damaged directory, and `readSegmentFile(at:from:_:)`
    /// reads a segment moved there. The next append gets the new end.
    /// A repair that would lose what only the log's files hold (the streams
    /// of segments retention removed, what scavenging removed) is refused:
    /// `refusal` says why, and nothing changes.
    ///
    /// Without `apply`, nothing changes (the lock file is created when
    /// missing). With it, a crash or a failure at any step leaves the
    /// damaged log (on which a repair can run again) or the repaired one.
    /// Blocks on the disk; reads every byte of the log, and again to verify
    /// the result.
    ///
    /// - Parameters:
    ///   - path: the log directory.
    ///   - options: for the open that ends the repair (its durability,
    ///     fault injection in tests); retention does not run during it.
    ///   - apply: false: only plan (a dry run); true: carry the plan out.
    public static func repair(at path: String, options: LogOptions = LogOptions(), apply: Bool = false) throws -> RepairPlan {
        do {
            let repair = try LogRepair(at: path, faults: options.storageFaults, modes: options.createModes)
            var (plan, steps) = try repair.plan(from: try verify(at: path))
            if steps.rewritesJournal {
                let (bytes, fates) = ConsumerStore.salvage(
                    in: DirectoryOperations(path: path, faults: options.storageFaults), logID: repair.metadata.logID)
                steps.journalBytes = bytes
                if let i = plan.actions.firstIndex(where: { $0.file == FileNames.cursorJournal && $0.kind == .rebuild }) {
                    plan.actions[i].reason += fates.isEmpty ? "; every cursor keeps its position" : "; " + fates.joined(separator: "; ")
                }
            }
            guard apply, !plan.isSound, plan.refusal == nil else { return plan }
            try repair.apply(steps)
            var reopen = options
            reopen.readOnly = false
            reopen.createIfMissing = false
            reopen.maintenanceInterval = nil
            reopen.heldWriterLock = repair.lock
            let log = try open(at: path, options: reopen)
            plan.clampedCursors = log.recovery.clampedCursors
            try log.close()
            plan.applied = true
            plan.problemsAfter = try verify(at: path).problems
            return plan
        } catch {
            throw EventLogError.wrapping(error)
        }
    }
}
