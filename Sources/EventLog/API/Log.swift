import Logging
import Metrics
import Synchronization
import struct Foundation.UUID

/// An event log: a directory of segment files holding checksummed batches of
/// events, each event at a global position, in named streams.
///
/// `Log` is the public surface, and only that: every call is forwarded to
/// the layer that owns it (see README, "Architecture"):
/// - the ordered log of batches (`BatchLog`, with its `SegmentSet`):
///   positions, durability, reads by position or time;
/// - the stream layer (`Streams`): versions, expectations, reads by stream;
/// - the consumer layer (`Consumers`): cursors, groups, subscriptions.
///
/// ## Concurrency
/// A `Log` is safe to share between threads. Appends are serialized by one
/// writer lock; durable appends then wait for a shared `fdatasync` outside
/// it (group commit). Readers never take the writer lock: each read works on
/// an immutable snapshot of the segments (taken under a separate lock held
/// only to copy a few references) and sees whole, published batches only.
///
/// ## Blocking
/// Every method may block on the disk: `append` (write, and under
/// `.always` a sync), reads (page faults on the mapped segments), `sync`,
/// `close`. Call them from your own threads, not from the Swift concurrency
/// pool. From a task, use the same calls through `async` (`AsyncLog`):
/// they run on the log's own threads (`LogOptions.asyncThreadCount`, at
/// most 4 by default), never on the cooperative pool.
public final class Log: Sendable {
    /// The directory holding the log's files.
    public let path: String
    /// The log's identity (also in every segment header).
    public let logID: UUID
    /// The options the log was opened with.
    public let options: LogOptions
    /// What opening found and did (previous shutdown, tail cut, indexes rebuilt).
    public let recovery: RecoveryReport

    /// The ordered log of batches.
    let batches: BatchLog
    /// The stream layer over it.
    let streams: Streams
    /// The consumer layer over it.
    let consumers: Consumers
    /// Retention, over all three.
    let maintenance: Maintenance
    /// The log's state for swift-metrics, on a timer (`LogOptions.metricsInterval`).
    let metricsReporter: MetricsReporter

    private init(batches: BatchLog, streams: Streams, consumers: Consumers) {
        self.batches = batches
        self.streams = streams
        self.consumers = consumers
        self.maintenance = Maintenance(log: batches, index: streams.index, consumers: consumers)
        self.metricsReporter = MetricsReporter(path: batches.path, factory: batches.options.resolvedMetricsFactory)
        self.path = batches.path
        self.options = batches.options
        self.recovery = batches.recovery
        self.logID = UUID(uuid: batches.metadata.logID.withUnsafeBytes { $0.loadUnaligned(as: uuid_bytes.self) })
    }

    /// Released without `close()`: background merges stop soon, so the
    /// writer lock they hold is let go (the background writes that remain
    /// are small; the next open recovers as after a crash). An open of the
    /// same log in this process meanwhile waits for them to end
    /// (`ReleasedWriterLocks`) instead of refusing the log as locked.
    deinit {
        streams.index.requestStopMerging()
        consumers.executor.shutdown()
    }

    /// The log's threads for its `async` calls (`AsyncLog`).
    var executor: LogExecutor { consumers.executor }

    /// What an open found and did, for operators: `info` for a new log and
    /// when it had something to recover or report, `debug` after a clean
    /// shutdown with nothing to report.
    static func logRecovery(_ report: RecoveryReport, path: String, took: Duration, logger: Logger) {
        let shutdown: String
        switch report.previousShutdown {
        case .newLog: shutdown = "new log"
        case .clean: shutdown = "clean"
        case .unclean: shutdown = "unclean"
        }
        var clean = false
        if case .clean = report.previousShutdown { clean = true }
        let eventful = !clean || report.tailCut != nil || !report.rebuiltIndexes.isEmpty
            || !report.damagedFiles.isEmpty || !report.clampedCursors.isEmpty || report.pendingMerge != nil
            || report.upgradedFromVersion != nil
        var metadata: Logger.Metadata = [
            "path": "\(path)", "previous_shutdown": "\(shutdown)", "scanned_bytes": "\(report.scannedBytes)",
            "replayed_records": "\(report.replayedRecords)", "rebuilt_indexes": "\(report.rebuiltIndexes.count)",
            "duration": "\(took)",
        ]
        if let cut = report.tailCut { metadata["tail_cut"] = "\(cut.file) at byte \(cut.offset)" }
        if !report.clampedCursors.isEmpty { metadata["clamped_cursors"] = "\(report.clampedCursors.map(\.name))" }
        if !report.damagedFiles.isEmpty { metadata["damaged_files"] = "\(report.damagedFiles.map(\.description))" }
        if let version = report.upgradedFromVersion { metadata["upgraded_from_version"] = "\(version)" }
        logger.log(level: eventful ? .info : .debug, "opened the log", metadata: metadata)
    }

    /// Opens the log in `path`, creating it when missing (unless
    /// `options.createIfMissing` is false or the log is opened read-only).
    ///
    /// After a clean `close()` this reads only the small index files. After a
    /// crash it checks the last segment from its last index checkpoint on,
    /// cuts a torn final batch, and rebuilds missing or damaged indexes
    /// (`recovery` says what it did). Damage anywhere else, a missing
    /// segment, a foreign file or an unknown format version is an error
    /// naming the file and byte offset; nothing is silently dropped.
    ///
    /// Blocks on the disk.
    public static func open(at path: String, options: LogOptions = LogOptions()) throws -> Log {
        try options.validate()
        return try open(at: path, options: options, executor: LogExecutor(threadLimit: options.asyncThreadCount))
    }

    /// `open(at:options:)` with the executor the log's `async` calls will
    /// use (`AsyncLog.open` runs the open itself on it). Options are valid.
    static func open(at path: String, options: LogOptions, executor: LogExecutor) throws(EventLogError) -> Log {
        let started = ContinuousClock.now
        do {
            let (batches, (index, store)) = try BatchLog.open(at: path, options: options) { opened in
                // Every check of the segments passed; nothing was changed yet.
                let directory = DirectoryOperations(path: path, faults: options.storageFaults, modes: options.createModes)
                let index = try StreamIndex.open(&opened, options: options, directory: directory)
                let store = try ConsumerStore.open(
                    directory: directory, logID: opened.metadata.logID,
                    durability: options.durability, writable: !options.readOnly || options.allowsCursorCommits,
                    required: ConsumerStore.isRequired(segmentsExist: !opened.segments.isEmpty, metadata: opened.metadata), logger: options.logger, slowSyncThreshold: options.slowSyncThreshold, metrics: options.resolvedMetricsFactory)
                store.reportDamage(into: &opened.report)
                if !options.readOnly {
                    opened.report.clampedCursors = try store.clamp(toEnd: opened.endPosition)
                    for cursor in opened.report.clampedCursors {
                        options.logger.warning(
                            "moved a cursor back to the recovered end of the log",
                            metadata: ["cursor": "\(cursor.name)", "was": "\(cursor.was)", "now": "\(cursor.now)"])
                    }
                    if !opened.report.clampedCursors.isEmpty {
                        // Durable before any new event takes those positions: a cursor that
                        // came back after another power loss would skip events it never saw.
                        try store.sync()
                    }
                }
                return (index, store)
            }
            if let active = batches.snapshot().active { index.activeSegmentChanged(to: active) }
            index.hold(whileMerging: batches.lockFile)
            batches.segments.attach(index)
            // One writer, one stop: a failed sync of a segment or of the cursor journal stops both.
            batches.groupCommit.stopsTogether(with: store.groupCommit)
            let log = Log(
                batches: batches, streams: Streams(log: batches, index: index),
                consumers: Consumers(log: batches, store: store, executor: executor))
            batches.startFlusherIfNeeded { [weak store] in
                if let store, store.groupCommit.hasUnsyncedWrites { try? store.sync() }
            }
            if !options.readOnly, let interval = options.maintenanceInterval { log.maintenance.start(every: interval) }
            let took = ContinuousClock.now - started
            Self.logRecovery(log.recovery, path: path, took: took, logger: options.logger)
            Metrics.Timer(label: "eventlog_open_duration", dimensions: [("log", path)], factory: options.resolvedMetricsFactory)
                .recordNanoseconds(took.wholeNanoseconds)
            if let interval = options.metricsInterval { log.metricsReporter.start(every: interval, for: log) }
            return log
        } catch {
            throw EventLogError.wrapping(error)
        }
    }

    /// The first position still in the log.
    public var startPosition: UInt64 { batches.snapshot().startPosition }
    /// The position the next appended event will get (one past the last).
    public var endPosition: UInt64 { batches.snapshot().endPosition }
    /// True once `close()` was called.
    public var isClosed: Bool { batches.isClosed }

    /// Makes everything appended so far durable, whatever the durability
    /// policy: fdatasync of the active segment (sealed ones were synced when
    /// sealed), of the cursor journal and of the directory. Blocks on the disk.
    public func sync() throws {
        try batches.sync()
        try consumers.store.sync()
        do { try batches.directory.sync() } catch {
            batches.groupCommit.fail(error.description)  // a failed directory fsync stops the writer (Format.md §11)
            throw EventLogError.io(error)
        }
    }

    /// Closes the log: stops the flusher, syncs, writes the active segment's
    /// indexes and the clean-shutdown marker (so the next open skips
    /// recovery) and releases the writer lock. Further calls fail with
    /// `.closed`. Reads already running finish on their snapshot. The log's
    /// executor (`async` calls) takes no new work; what it has queued still
    /// runs (and fails with `.closed`), then its threads end.
    public func close() throws {
        metricsReporter.stop()
        // A retention run under way finishes first; none starts after.
        maintenance.stop()
        batches.stopFlusher()
        // A run merge under way finishes first; none starts after.
        streams.index.stopMerging()
        var failure: EventLogError?
        // Cursor commits (of a writer, or of a reader with allowsCursorCommits).
        do { try consumers.store.sync() } catch { failure = error }
        // A read-only log's waiter on the directory watch sees the log closed.
        defer {
            consumers.wakeWaiters()
            consumers.appendWatch.close()
            consumers.executor.shutdown()
        }
        try batches.close()
        if let failure { throw failure }
    }
}

private typealias uuid_bytes = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
