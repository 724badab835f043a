import Synchronization
import Logging
import class Foundation.Thread
import Dispatch

/// The ordered log of batches: one writer appending checksummed batches to
/// the active segment, group commit, durability, and reads by position.
/// It knows nothing of streams or consumers: the layers above build the
/// batches they append (`commit`, `writeBatch`) and keep their own indexes
/// per segment (`SegmentIndexing`). The public `Log` composes it with them.
///
/// ## Concurrency
/// Appends are serialized by one writer lock; durable appends then wait for
/// a shared `fdatasync` outside it (group commit). Readers never take the
/// writer lock: each read works on an immutable snapshot of the segments
/// (`segments.snapshot()`), and sees whole, published batches only.
final class BatchLog: Sendable {
    let path: String
    let options: LogOptions
    /// What opening found and did (previous shutdown, tail cut, indexes rebuilt).
    let recovery: RecoveryReport
    let directory: DirectoryOperations
    let metadata: LogMetadata
    let writer: Mutex<WriterState>
    /// The segments, and the snapshot readers see.
    let segments: SegmentSet
    let closedFlag = Atomic<Bool>(false)
    let groupCommit: GroupCommit
    let lockFile: FileHandle?
    /// The interval flusher's state, shared with its thread.
    let flusher = FlusherControl()
    /// Zeros ahead of the writer under `.always` (nil otherwise).
    let preallocator: Preallocator?
    /// Writeback started off the append path (all durabilities but `.always`).
    let writeback: WritebackQueue
    /// The helper that compresses LZ4 units beside the writer (`LogOptions.parallelCompression`).
    let unitCompressor: ParallelUnitCompressor?
    /// `LogOptions.logger`.
    var logger: Logger { options.logger }
    /// What this log's reads lent (the read-throughput metrics).
    let readTally = ReadTally()
    /// Decompressed LZ4 batches kept for later reads (`LogOptions.batchCacheBytes`).
    let batchCache: BatchCache
    /// An encrypted log's data keys (Format.md §16); nil for a plain log.
    let keyRing: KeyRing?

    init(
        path: String, options: LogOptions, directory: DirectoryOperations, metadata: LogMetadata,
        writer: consuming WriterState, snapshot: LogSnapshot, lockFile: FileHandle?, recovery: RecoveryReport,
        keyRing: KeyRing? = nil
    ) {
        self.keyRing = keyRing
        self.path = path
        self.options = options
        self.directory = directory
        self.metadata = metadata
        self.writer = Mutex(writer)
        let batchCache = BatchCache(bytes: options.batchCacheBytes)
        self.batchCache = batchCache
        self.groupCommit = GroupCommit(
            what: "segment", logger: options.logger, slowSyncThreshold: options.slowSyncThreshold, dimensions: [("log", path)],
            metrics: options.resolvedMetricsFactory)
        // Weak: the group commit holds the segment set (`publishDurable`);
        // a cycle would keep both, and the writer lock, alive for good.
        self.segments = SegmentSet(
            directory: directory, metadata: metadata, snapshot: snapshot, lockHold: lockFile, logger: options.logger,
            batchCache: batchCache, onFailedSync: { [weak groupCommit] reason in groupCommit?.fail(reason) })
        self.lockFile = lockFile
        self.recovery = recovery
        if options.durability == .always && !options.readOnly && options.preallocates {
            let active = self.writer.withLock { ($0.active.file, $0.active.capacity, $0.active.dataEnd) }
            let commit = groupCommit
            preallocator = Preallocator(file: active.0, capacity: active.1, dataEnd: active.2) { reason in
                commit.fail(reason)
            }
        } else {
            preallocator = nil
        }
        let commit = groupCommit
        writeback = WritebackQueue { reason in commit.fail(reason) }
        unitCompressor = options.compression == .lz4 && !options.readOnly && options.parallelCompression
            ? ParallelUnitCompressor.start() : nil
        let segments = self.segments
        groupCommit.publishDurable = { segment, sequence in segments.publish(active: segment, sequence: sequence) }
    }

    deinit {
        // A log released without close() is left as after a crash: the next
        // open recovers the tail. Nothing acknowledged is lost.
        preallocator?.stop()
        unitCompressor?.stop()
        flusher.state.withLock { if $0 == .running { $0 = .stopping } }
        groupCommit.wakeAll()  // the flusher, if sleeping, leaves at once
        // Background work under way keeps the writer lock until it ends: an
        // open in this process waits for it (ReleasedWriterLocks).
        if let lockFile, !isClosed { ReleasedWriterLocks.noteReleased(lockFile) }
    }

    /// The snapshot readers work on.
    @inline(__always) func snapshot() -> LogSnapshot { segments.snapshot() }

    var isClosed: Bool { closedFlag.load(ordering: .relaxed) }

    /// Stops the writer for good after a write or sync whose outcome on disk is unknown.
    func stop(_ state: inout WriterState, _ reason: String) {
        state.failure = state.failure ?? reason
        groupCommit.fail(reason)
    }

    /// Makes everything appended so far durable, whatever the durability
    /// policy: fdatasync of the active segment (sealed ones were synced when
    /// sealed). The caller syncs the directory.
    func sync() throws(EventLogError) {
        if options.readOnly { throw .readOnly }
        try groupCommit.syncNow()
    }

    /// How recent a sync must be for appends to count as syncing (`backgroundCopyPaces`).
    static let syncingWindow = Duration.milliseconds(50)

    /// Whether a background copy (scavenging's rewrite, a merge) paces its
    /// writes now (`PacedFileWriter`): true while appends that wait for
    /// their syncs are under way (a sync led within `syncingWindow`), so
    /// that their syncs never stand behind the copy; false on an idle log,
    /// where the copy goes at the device's rate. Asked once per chunk.
    var backgroundCopyPaces: @Sendable () -> Bool {
        let groupCommit = self.groupCommit
        return { groupCommit.syncedWithin(Self.syncingWindow) }
    }

    /// Makes the layer above's persisted state (the stream table's runs)
    /// cover every record written so far: takes a checkpoint under the
    /// writer lock, then, outside it, waits until the data it covers is
    /// synced and runs it on the index writer's queue (after every index
    /// write queued before). Retention calls it before it moves the log
    /// start (Format.md §14.3). Blocks on the disk.
    func checkpointNow() throws(EventLogError) {
        if options.readOnly { throw .readOnly }
        let taken: Result<(sequence: UInt64, work: (@Sendable () throws(IOError) -> Void)?), EventLogError> =
            writer.withLock { state in
                if state.closed { return .failure(.closed) }
                if let failure = state.failure ?? groupCommit.failureReason { return .failure(.writerStopped(reason: failure)) }
                let active = state.active.snapshot
                state.checkpointEnd = state.active.dataEnd
                let work = segments.indexing?.checkpoint(covering: active.endPosition, writtenBytes: state.writtenSequence, force: true)
                return .success((state.writtenSequence, work))
            }
        let (sequence, work) = try taken.get()
        try groupCommit.waitDurable(upTo: sequence)
        guard let work else { return }
        let result: Result<Void, IOError> = segments.indexWriter.sync {
            do throws(IOError) { try work() } catch { return .failure(error) }
            return .success(())
        }
        do { try result.get() } catch {
            if error.isFailedSync { groupCommit.fail(error.description) }
            throw .io(error)
        }
    }

    /// Closes the writer: syncs, writes the active segment's indexes, the
    /// layer above's checkpoint and the clean-shutdown marker (so the next
    /// open skips recovery) and releases the writer lock. The flusher must
    /// be stopped first.
    func close() throws(EventLogError) {
        preallocator?.stop()
        unitCompressor?.stop()
        closedFlag.store(true, ordering: .relaxed)
        defer { segments.notifier.wakeAll() }
        if options.readOnly {
            writer.withLock { $0.closed = true }
            return
        }
        let result: Result<Void, EventLogError> = writer.withLock { state in
            if state.closed { return .success(()) }
            state.closed = true
            if let failure = state.failure ?? groupCommit.failureReason {
                return .failure(.writerStopped(reason: failure))
            }
            // Background index writes (seals, checkpoints) land before the
            // final ones; no writeback is started once the log is closed.
            segments.waitForIndexWrites()
            writeback.drain()
            do throws(IOError) {
                try state.active.file.datasync()
                // Synced: readers may see every batch written (under `.always`
                // one whose appender is still waiting for its sync).
                let active = state.active.snapshot
                segments.publish(active: active, sequence: state.writtenSequence)
                try segments.writeIndexFiles(active)
                if let checkpoint = segments.indexing?.checkpoint(
                    covering: active.endPosition, writtenBytes: state.writtenSequence, force: true) {
                    try checkpoint()
                }
                let marker = CleanShutdownMarker(
                    endPosition: active.endPosition, lastSegmentBase: active.basePosition,
                    lastSegmentDataEnd: UInt32(state.active.dataEnd), closedAt: currentTimestamp())
                try directory.writeAtomically(FileNames.cleanShutdown, bytes: marker.encode())
                return .success(())
            } catch {
                return .failure(.io(error))
            }
        }
        lockFile?.unlock()
        try result.get()
    }
}

/// Everything the writer lock guards.
struct WriterState: ~Copyable, Sendable {
    var active: ActiveSegment
    /// Reused encode and compression buffers: no allocation per batch once grown.
    var encodeBuffer: ByteBuffer?
    var compressBuffer: ByteBuffer
    /// The active segment's LZ4 dictionary (Format.md §5.4), loaded for the
    /// segment `dictionarySegment` (nil: none, or not looked at yet).
    var dictionary: LZ4DictionaryCompressor?
    var dictionarySegment: SegmentID?
    /// Total bytes ever written by this writer: the group commit's sequence.
    /// Starts at the bytes of the recovered active segment not known to be
    /// on disk, so the first sync covers them too.
    var writtenSequence: UInt64 = 0
    /// The sequence the group commit last reported durable (may lag behind: it only ever claims less).
    var knownDurable: UInt64 = 0
    /// Data end of the active segment at its last index checkpoint.
    var checkpointEnd = 0
    /// The active segment's space is allocated up to here (0: not yet looked at).
    var reservedEnd = 0
    /// Set when a write or sync failed in a way that leaves the disk state unknown.
    var failure: String?
    var closed = false

    /// The offset in the active segment before which every byte is known to
    /// be on disk: what a new batch records as its synced lag (Format.md §5).
    var syncedEnd: Int {
        let unsynced = Int(writtenSequence - min(knownDurable, writtenSequence))
        return max(SegmentHeader.size, active.dataEnd - unsynced)
    }
}

enum FlusherState {
    case notStarted, running, stopping, stopped
}

/// The interval flusher's state, held by the log and by the flusher's
/// thread, which must be able to read it without holding the log.
final class FlusherControl: Sendable {
    let state = Mutex<FlusherState>(.notStarted)
}

// MARK: - The interval flusher

extension BatchLog {
    /// Starts the background thread of `.interval` durability: it syncs every
    /// interval when something was written, and then runs `alsoSync` (the
    /// layers above sync their own files). A failed sync stops the writer.
    func startFlusherIfNeeded(alsoSync: @escaping @Sendable () -> Void) {
        guard case .interval(let interval) = options.durability, !options.readOnly else { return }
        let control = flusher
        control.state.withLock { $0 = .running }
        let seconds = interval.timeInterval
        let commit = groupCommit
        let thread = Thread { [weak self] in
            while true {
                // Sleep first: a sync is due an interval after the writes it
                // covers (and an open is not followed by a sync at a moment
                // that depends on thread timing). The check runs under the
                // group commit's lock, so it must not touch the log: the last
                // reference to a log dropped there would run its deinit,
                // which takes that lock, on this thread.
                commit.sleep(seconds: seconds) { control.state.withLock({ $0 }) != .running }
                // Hold the log only while working, not while sleeping, so a
                // log released without close() can still be freed.
                guard control.state.withLock({ $0 }) == .running, let log = self else { break }
                if log.groupCommit.hasUnsyncedWrites {
                    do { try log.groupCommit.syncNow() } catch {
                        log.writer.withLock { $0.failure = $0.failure ?? "\(error)" }
                    }
                }
                alsoSync()
            }
            control.state.withLock { $0 = .stopped }
        }
        thread.name = "EventLog.flusher"
        thread.start()
    }

    func stopFlusher() {
        let wasRunning = flusher.state.withLock { state -> Bool in
            if state == .running { state = .stopping; return true }
            return false
        }
        guard wasRunning else { return }
        groupCommit.wakeAll()
        // Wait for the thread to leave its loop (at most one sync).
        while flusher.state.withLock({ $0 }) == .stopping {
            groupCommit.sleep(seconds: 0.001)
        }
    }
}
