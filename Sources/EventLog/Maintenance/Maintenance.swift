import Dispatch
import Logging
import Metrics
import Synchronization

/// The maintenance layer, over the log, the stream layer and the consumer
/// layer: applies the log's retention settings (`LogSettings`, Format.md
/// §3.1–§3.2), then scavenges (`Scavenger`, §4.1) and merges small
/// neighbouring sealed segments (`SegmentMerging`, §4.2), on demand
/// (`compact`) and in the background.
///
/// Retention removes whole sealed segments from the oldest, in four steps
/// that leave the old or the new state after a crash at any point:
/// 1. the stream table's runs are made to cover every record written so
///    far (`BatchLog.checkpointNow`), since they become the only record of
///    the streams of the removed segments (Format.md §14.3);
/// 2. the new start is written to `eventlog.start` (atomically, synced);
/// 3. the segments below it leave the published set (readers that hold an
///    older snapshot keep reading them);
/// 4. their files are unlinked and the directory synced. An open that finds
///    files below the start removes them (a writer) or ignores them.
///
/// ## Concurrency
/// Runs are serialised by `running`; a run never holds the writer lock
/// longer than it takes to take a checkpoint, so appends go on. Background
/// runs are on the maintenance queue (never the Swift concurrency pool).
final class Maintenance: Sendable {
    let log: BatchLog
    let index: StreamIndex
    let consumers: Consumers
    let scavenger: Scavenger
    private let running = Mutex<Void>(())
    /// Set by `stop()`: a scavenging pass under way ends after the segment it is rewriting.
    private let stopping = Atomic<Bool>(false)
    private let status = Mutex<MaintenanceStatus>(MaintenanceStatus())
    private let queue = DispatchQueue(label: "EventLog.maintenance")
    private let timer = Mutex<TimerHandle?>(nil)
    /// `LogOptions.logger`.
    var logger: Logger { log.options.logger }

    init(log: BatchLog, index: StreamIndex, consumers: Consumers) {
        self.log = log
        self.index = index
        self.consumers = consumers
        self.scavenger = Scavenger(log: log, index: index)
        // A writer starts from the file; a read-only process reads it on each ask (`currentStatus`).
        if !log.options.readOnly { status.withLock { $0 = Self.readLastCompaction(in: log.directory, logger: log.options.logger) } }
    }

    /// A log released without `close()`: its timer stops too (a resumed
    /// dispatch source lives until it is cancelled).
    deinit { timer.withLock { $0 }?.source.cancel() }

    var directory: DirectoryOperations { log.directory }

    // MARK: Settings

    /// The log's settings: `eventlog.settings`, or the defaults when the
    /// file does not exist. A damaged file is an error naming it.
    func settings() throws(EventLogError) -> LogSettings {
        let bytes: [UInt8]?
        do { bytes = try directory.readWhole(FileNames.settings, atMost: LogSettingsFile.maxSize) } catch { throw .io(error) }
        guard let bytes else { return LogSettings() }
        return try LogSettingsFile.decode(bytes, file: directory.file(FileNames.settings))
    }

    /// Checks and writes the settings (atomically: a crash leaves the old
    /// file or the new one).
    func updateSettings(_ settings: LogSettings) throws(EventLogError) {
        if log.options.readOnly { throw .readOnly }
        try settings.validate()
        do { try directory.writeAtomically(FileNames.settings, bytes: LogSettingsFile.encode(settings)) } catch {
            if error.isFailedSync { log.groupCommit.fail(error.description) }  // Format.md §11: the writer stops
            throw .io(error)
        }
    }

    /// How the last compaction went. A writer's own runs keep it in
    /// memory; a read-only process reads `eventlog.compaction` again each
    /// time, to see the writer's latest.
    var currentStatus: MaintenanceStatus {
        if log.options.readOnly { return Self.readLastCompaction(in: directory, logger: log.options.logger) }
        return status.withLock { $0 }
    }

    /// The last compaction file's status; none when there is no file, and
    /// none (with a warning) when it is damaged: it only reports, and the
    /// writer's next compaction replaces it.
    static func readLastCompaction(in directory: DirectoryOperations, logger: Logger = Logger(label: "EventLog")) -> MaintenanceStatus {
        do {
            guard let bytes = try directory.readWhole(FileNames.lastCompaction, atMost: LastCompactionFile.maxSize) else { return MaintenanceStatus() }
            return try LastCompactionFile.decode(bytes, file: directory.file(FileNames.lastCompaction))
        } catch {
            logger.warning("the last compaction file cannot be read; it is ignored", metadata: ["error": "\(error)"])
            var status = MaintenanceStatus()
            status.unreadableReport = "\(error)"
            return status
        }
    }

    /// Records a run's outcome in the status and, when it removed something
    /// or failed (or a failure is to be cleared), in `eventlog.compaction`.
    /// A failure to write the file is logged, not thrown: the run's own
    /// outcome stands.
    private func record(_ outcome: Result<CompactionResult, EventLogError>) {
        let changed: MaintenanceStatus? = status.withLock { status in
            // A failure to clear, or a damaged file to replace.
            let fileNeedsReplacing = status.lastFailure != nil || status.unreadableReport != nil
            status.unreadableReport = nil
            switch outcome {
            case .success(let result):
                if !result.dryRun {
                    let (dimensions, factory) = ([("log", log.path)], log.options.resolvedMetricsFactory)
                    Counter(label: "eventlog_compaction_runs_total", dimensions: dimensions, factory: factory).increment()
                    Counter(label: "eventlog_compaction_bytes_removed_total", dimensions: dimensions, factory: factory)
                        .increment(by: Int64(clamping: result.bytesBefore - min(result.bytesAfter, result.bytesBefore)))
                    Counter(label: "eventlog_compaction_events_removed_total", dimensions: dimensions, factory: factory)
                        .increment(by: Int64(clamping: result.eventsRemoved))
                }
                status.lastFailure = nil
                status.lastFailureAt = nil
                guard result.eventsRemoved > 0 || result.segmentsRewritten > 0 || result.segmentsMerged > 0
                        || result.startPosition != result.startPositionBefore
                        || fileNeedsReplacing
                else { return nil }
                status.lastResult = result
            case .failure(let error):
                status.lastFailure = error.description
                status.lastFailureAt = currentTimestamp()
            }
            return status
        }
        guard let changed else { return }
        do {
            try directory.writeAtomically(FileNames.lastCompaction, bytes: LastCompactionFile.encode(changed))
        } catch {
            logger.warning("the last compaction file could not be written", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Runs

    /// Applies retention, then scavenging, now (or, with `dryRun`, says
    /// what they would remove).
    ///
    /// The pass runs on a thread of its own at a lower CPU priority
    /// (`LowPriorityThread`), whoever calls: appends and their syncs go
    /// first when cores are contended. The caller waits for it.
    func compact(dryRun: Bool, scavenging: Bool = true) throws(EventLogError) -> CompactionResult {
        let outcome: Result<CompactionResult, EventLogError> = LowPriorityThread.run { [self] in
            // The status changes with the run, under the same lock: a reader of
            // `maintenanceStatus` never sees an older result than the last run's.
            running.withLock { _ in
                let outcome: Result<CompactionResult, EventLogError>
                do throws(EventLogError) {
                    outcome = .success(try run(dryRun: dryRun, scavenging: scavenging))
                } catch {
                    // A failed sync of any file it wrote (a segment, an index, the manifest) stops the writer (Format.md §11).
                    if let failed = error.failedSync { log.groupCommit.fail(failed.description) }
                    outcome = .failure(error)
                }
                if !dryRun && !log.options.readOnly { record(outcome) }
                return outcome
            }
        }
        return try outcome.get()
    }

    private func run(dryRun: Bool, scavenging: Bool) throws(EventLogError) -> CompactionResult {
        if log.isClosed { throw .closed }
        if log.options.readOnly && !dryRun { throw .readOnly }
        if !dryRun && log.segments.hasUnfinishedSwap {
            throw .writerStopped(reason: "a segment merge failed part way; the next open of the log finishes it, and compaction waits until then")
        }
        let settings = try settings()
        let hold = consumers.retentionHold(keepingCursors: settings.retainCursors)
        let snapshot = log.snapshot()
        let segments = (0..<snapshot.count).map { i in
            let segment = snapshot[i]
            return RetentionPlan.Segment(
                base: segment.basePosition, end: segment.endPosition, bytes: UInt64(segment.mapping.length),
                newestTimestamp: segment.maxTimestamp)
        }
        let plan = RetentionPlan.make(
            segments: segments, settings: settings, floor: hold.position, floorReason: hold.reason, now: currentTimestamp())
        let bytesBefore = segments.reduce(UInt64(0)) { $0 + $1.bytes }
        var result = CompactionResult(
            dryRun: dryRun, segmentsBefore: segments.count, segmentsAfter: segments.count - plan.removedSegments,
            bytesBefore: bytesBefore, bytesAfter: bytesBefore - plan.removedBytes, eventsRemoved: plan.removedEvents,
            startPositionBefore: snapshot.startPosition, startPosition: dryRun ? snapshot.startPosition : plan.start,
            heldBackBy: plan.heldBack, finishedAt: 0)
        if !dryRun && plan.removedSegments > 0 {
            // 1. The stream table covers every removed record: what the
            // runs reach afterwards is checked, not what was asked for.
            try log.checkpointNow()
            try checkRunsCover(plan.start)
            // 2. The new start, durable before any file goes.
            do {
                var logStart = try LogStart.read(in: directory) ?? LogStart(startPosition: 0, writtenAt: 0)
                logStart.startPosition = plan.start
                logStart.writtenAt = currentTimestamp()
                try logStart.write(in: directory)
                // 3 and 4.
                _ = try log.segments.removeSegments(below: plan.start)
            } catch {
                throw .wrapping(error)
            }
            logger.info(
                "retention removed segments", metadata: ["segments": "\(plan.removedSegments)", "bytes": "\(plan.removedBytes)", "start": "\(plan.start)"])
        }
        // Scavenging, in the segments retention kept.
        let scavenged = scavenging
            ? try scavenger.run(
                dryRun: dryRun,
                keyCompaction: settings.keyCompaction
                    ? Scavenger.KeyCompaction(tombstoneRetentionMicroseconds: Int64(clamping: settings.tombstoneRetentionSeconds) * 1_000_000)
                    : nil
            ) { self.stopping.load(ordering: .relaxed) }
            : Scavenger.Outcome()
        result.segmentsRewritten = scavenged.segmentsRewritten
        result.eventsRemoved += scavenged.eventsRemoved
        result.eventsScavenged = scavenged.eventsRemoved
        result.bytesAfter -= min(result.bytesAfter, scavenged.bytesBefore)
        result.bytesAfter += scavenged.bytesAfter
        if scavenged.segmentsRewritten > 0 && !dryRun {
            logger.info(
                "scavenging rewrote segments",
                metadata: ["segments": "\(scavenged.segmentsRewritten)", "events": "\(scavenged.eventsRemoved)"])
        }
        // Merging, of what scavenging left (Format.md §4.2).
        if scavenging && !self.stopping.load(ordering: .relaxed) {
            let merged = try SegmentMerging(log: log).run(dryRun: dryRun, dataEndsAfter: scavenged.dataEndsAfter) {
                self.stopping.load(ordering: .relaxed)
            }
            result.segmentsMerged = merged.segmentsMerged
            result.segmentsAfter -= merged.segmentsRemoved
            result.bytesAfter -= min(result.bytesAfter, merged.bytesBefore)
            result.bytesAfter += merged.bytesAfter
            if merged.segmentsMerged > 0 && !dryRun {
                logger.info(
                    "merging combined small segments",
                    metadata: ["segments": "\(merged.segmentsMerged)", "fewer": "\(merged.segmentsRemoved)"])
            }
        }
        result.finishedAt = currentTimestamp()
        return result
    }

    /// Throws unless the stream table's runs, from position 0, reach `start`
    /// without a gap (what an open will need once the segments are gone).
    private func checkRunsCover(_ start: UInt64) throws(EventLogError) {
        let reached = index.runsReach()
        guard reached >= start else {
            throw .corruption(
                file: directory.file(FileNames.logStart), offset: 16,
                reason: "the stream table's runs reach only position \(reached), not the new start \(start); nothing was removed")
        }
    }

    // MARK: Background

    /// Runs `compact()` every `interval` on the maintenance queue until
    /// `stop()`. A failed run is logged and kept in the status; the next
    /// one tries again.
    func start(every interval: Duration) {
        let source = DispatchSource.makeTimerSource(queue: queue)
        let nanoseconds = Int(interval.wholeNanoseconds)
        source.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds))
        source.setEventHandler { [weak self] in
            guard let self, !self.log.isClosed else { return }
            do {
                _ = try self.compact(dryRun: false)
            } catch {
                logger.warning("background retention failed; it tries again later", metadata: ["error": "\(error)"])
            }
        }
        timer.withLock { $0 = TimerHandle(source: source) }
        source.resume()
    }

    /// Stops the background runs and waits for one under way (a
    /// scavenging pass ends after the segment it is rewriting).
    func stop() {
        stopping.store(true, ordering: .relaxed)
        timer.withLock { $0 }?.source.cancel()
        queue.sync {}
    }
}

/// A dispatch timer, which is safe to use from any thread (Dispatch's own
/// guarantee; the type is not marked `Sendable`).
private struct TimerHandle: @unchecked Sendable {
    let source: any DispatchSourceTimer
}
