import Synchronization
import Logging
import struct Foundation.UUID
import class Foundation.Thread
import Dispatch

/// An event log: a directory of segment files holding checksummed batches of
/// events, each event at a global position.
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
/// pool.
public final class Log: Sendable {
    /// The directory holding the log's files.
    public let path: String
    /// The log's identity (also in every segment header).
    public let logID: UUID
    public let options: LogOptions
    /// What opening found and did (previous shutdown, tail cut, indexes rebuilt).
    public let recovery: RecoveryReport

    let directory: DirectoryOperations
    let metadata: LogMetadata
    let writer: Mutex<WriterState>
    let published: Mutex<LogSnapshot>
    /// Every stream's state (Format.md, "Stream table").
    let streams: StreamTable
    /// Named cursors and consumer groups' parked events (Format.md §15).
    let consumers: ConsumerStore
    /// Wakes subscribers when a batch is published.
    let notifier = AppendNotifier()
    let closedFlag = Atomic<Bool>(false)
    /// Serialises `refresh()` of a read-only log.
    let refreshLock = Mutex<Void>(())
    /// Consumer groups of this log, by name (one shared instance each while
    /// anyone holds it). Weak: a group holds its log, and a log released
    /// without close() must be freed (its lock released) like after a crash.
    let groups = Mutex<[String: WeakConsumerGroup]>([:])
    let groupCommit = GroupCommit()
    let lockFile: FileHandle?
    let flusherState = Mutex<FlusherState>(.notStarted)
    /// Zeros ahead of the writer under `.always` (nil otherwise).
    let preallocator: Preallocator?
    /// Writes index files (of sealed segments, and checkpoints of the active
    /// one) in the background, in order. Not the Swift concurrency pool.
    let indexWriter = DispatchQueue(label: "EventLog.indexWriter")
    static let logger = Logger(label: "EventLog")

    init(
        path: String, options: LogOptions, directory: DirectoryOperations, metadata: LogMetadata,
        writer: consuming WriterState, snapshot: LogSnapshot, lockFile: FileHandle?, recovery: RecoveryReport,
        streams: StreamTable, consumers: ConsumerStore
    ) {
        self.streams = streams
        self.consumers = consumers
        self.path = path
        self.options = options
        self.directory = directory
        self.metadata = metadata
        self.logID = UUID(uuid: metadata.logID.withUnsafeBytes { $0.loadUnaligned(as: uuid_bytes.self) })
        self.writer = Mutex(writer)
        self.published = Mutex(snapshot)
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
        groupCommit.publishDurable = { [weak self] snapshot, sequence in self?.publish(active: snapshot, sequence: sequence) }
    }

    /// Publishes the active segment as `snapshot` shows it, unless readers
    /// already see a later state; wakes subscribers when it is new.
    func publish(active snapshot: SegmentSnapshot, sequence: UInt64) {
        let newer = published.withLock { published -> Bool in
            guard sequence > published.sequence else { return false }
            published.active = snapshot
            published.sequence = sequence
            return true
        }
        if newer { notifier.notify() }
    }

    deinit {
        // A log released without close() is left as after a crash: the next
        // open recovers the tail. Nothing acknowledged is lost.
        preallocator?.stop()
        groupCommit.wakeAll()  // the flusher, if sleeping, leaves at once
    }

    /// The snapshot readers work on.
    @inline(__always) func snapshot() -> LogSnapshot {
        published.withLock { $0 }
    }

    /// The first position still in the log.
    public var startPosition: UInt64 { snapshot().startPosition }
    /// The position the next appended event will get (one past the last).
    public var endPosition: UInt64 { snapshot().endPosition }

    /// Makes everything appended so far durable, whatever the durability
    /// policy: fdatasync of the active segment (sealed ones were synced when
    /// sealed) and of the directory. Blocks on the disk.
    public func sync() throws(EventLogError) {
        if options.readOnly { throw .readOnly }
        try groupCommit.syncNow()
        try consumers.sync()
        do { try directory.sync() } catch { throw .io(error) }
    }

    /// Closes the log: stops the flusher, syncs, writes the active segment's
    /// indexes and the clean-shutdown marker (so the next open skips
    /// recovery) and releases the writer lock. Further calls fail with
    /// `.closed`. Reads already running finish on their snapshot.
    public func close() throws(EventLogError) {
        stopFlusher()
        preallocator?.stop()
        closedFlag.store(true, ordering: .relaxed)
        defer { notifier.wakeAll() }
        if options.readOnly {
            writer.withLock { $0.closed = true }
            try consumers.sync()  // cursor commits of a reader with allowsCursorCommits
            return
        }
        let result: Result<Void, EventLogError> = writer.withLock { state in
            if state.closed { return .success(()) }
            state.closed = true
            if let failure = state.failure ?? groupCommit.failureReason {
                return .failure(.writerStopped(reason: failure))
            }
            // Background index writes (seals, checkpoints) land before the final ones.
            indexWriter.sync {}
            do throws(EventLogError) { try consumers.sync() } catch { return .failure(error) }
            do throws(IOError) {
                try state.active.file.datasync()
                // Synced: readers may see every batch written (under `.always`
                // one whose appender is still waiting for its sync).
                publish(active: state.active.snapshot, sequence: state.writtenSequence)
                try writeIndexFiles(state.active.snapshot)
                let tableBytes = StreamTableFile.encode(
                    streams.read { $0.streams }.lazy.map(\.row), coveredPosition: state.active.snapshot.endPosition)
                try directory.writeAtomically(FileNames.streamTable, bytes: tableBytes)
                let marker = CleanShutdownMarker(
                    endPosition: state.active.snapshot.endPosition, lastSegmentBase: state.active.snapshot.basePosition,
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
    /// Total bytes ever written by this writer: the group commit's sequence.
    /// Starts at the bytes of the recovered active segment not known to be
    /// on disk, so the first sync covers them too.
    var writtenSequence: UInt64 = 0
    /// The sequence the group commit last reported durable (may lag behind: it only ever claims less).
    var knownDurable: UInt64 = 0
    /// Data end of the active segment at its last index checkpoint.
    var checkpointEnd = 0
    /// Reused scratch of the batch builder's streams.
    var batchStreams = BatchStreams()
    /// `writtenSequence` when the stream table was last written as a checkpoint.
    var tableCheckpointSequence: UInt64 = 0
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

private typealias uuid_bytes = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

// MARK: - Index files in the background

extension Log {
    /// Writes the index files describing `segment` as it is in this snapshot
    /// (offset, time and stream index), on the index writer's queue. For a
    /// sealed segment, readers then switch from its in-memory stream entries
    /// to the file. Failures are logged: indexes are derived data, and the
    /// next open rebuilds what is missing.
    ///
    /// With `durableAt` (a checkpoint of the active segment), the files are
    /// written only once the data they describe is on disk: a checkpoint is
    /// then evidence, for recovery, that its data was synced (Format.md §10).
    func scheduleIndexWrite(_ segment: SegmentSnapshot, durableAt sequence: UInt64? = nil) {
        // Weak: a log released without close() (a crash, as far as the files
        // are concerned) must not be kept alive, and its lock held, by this.
        indexWriter.async { [weak self] in
            guard let self else { return }
            do {
                if let sequence { try self.groupCommit.waitDurable(upTo: sequence) }
                try self.writeIndexFiles(segment)
            } catch {
                Log.logger.warning("could not write index files; they will be rebuilt", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Writes the offset, time and stream index files of `segment` now.
    func writeIndexFiles(_ segment: SegmentSnapshot) throws(IOError) {
        try ActiveSegment.writeIndexFiles(segment, directory: directory)
        guard let entries = segment.streamEntries else { return }
        let name = FileNames.streamIndex(segment.basePosition)
        let bytes = StreamIndexBuilder.encode(segment, entries: entries, count: segment.streamEntryCount, table: streams)
        try directory.writeAtomically(name, bytes: bytes)
        if segment.isSealed, let view = StreamIndexView.open(path: directory.file(name), faults: options.storageFaults) {
            published.withLock { snapshot in
                guard let i = snapshot.sealed.firstIndex(where: { $0.basePosition == segment.basePosition }) else { return }
                snapshot.sealed[i].streamIndex = view
                snapshot.sealed[i].streamEntries = nil
                snapshot.sealed[i].streamEntryCount = 0
            }
        }
    }

    /// Writes the stream table as of `covered` (every record before it), on
    /// the index writer's queue, once the writer's bytes up to `sequence` are
    /// on disk (so the table never covers data a power loss can take).
    func scheduleStreamTableWrite(covered: UInt64, durableAt sequence: UInt64) {
        let states = streams.read { $0.streams }
        let directory = self.directory
        let commit = groupCommit
        indexWriter.async {
            do {
                try commit.waitDurable(upTo: sequence)
                try directory.writeAtomically(FileNames.streamTable, bytes: StreamTableFile.encode(states.lazy.map(\.row), coveredPosition: covered))
            } catch {
                Log.logger.warning("could not write the stream table; the next open replays the log", metadata: ["error": "\(error)"])
            }
        }
    }
}

// MARK: - The interval flusher

extension Log {
    /// Starts the background thread of `.interval` durability: it syncs every
    /// interval when something was written. A failed sync stops the writer.
    func startFlusherIfNeeded() {
        guard case .interval(let ms) = options.durability, !options.readOnly else { return }
        flusherState.withLock { $0 = .running }
        let seconds = Double(ms) / 1000
        let commit = groupCommit
        let thread = Thread { [weak self] in
            while true {
                // Sleep first: a sync is due an interval after the writes it
                // covers (and an open is not followed by a sync at a moment
                // that depends on thread timing).
                commit.sleep(seconds: seconds) { self?.flusherState.withLock({ $0 }) != .running }
                // Hold the log only while working, not while sleeping, so a
                // log released without close() can still be freed.
                guard let log = self, log.flusherState.withLock({ $0 }) == .running else { break }
                if log.groupCommit.hasUnsyncedWrites {
                    do { try log.groupCommit.syncNow() } catch {
                        log.writer.withLock { $0.failure = $0.failure ?? "\(error)" }
                    }
                }
                if log.consumers.groupCommit.hasUnsyncedWrites { try? log.consumers.sync() }
            }
            self?.flusherState.withLock { $0 = .stopped }
        }
        thread.name = "EventLog.flusher"
        thread.start()
    }

    func stopFlusher() {
        let wasRunning = flusherState.withLock { state -> Bool in
            if state == .running { state = .stopping; return true }
            return false
        }
        guard wasRunning else { return }
        groupCommit.wakeAll()
        // Wait for the thread to leave its loop (at most one sync).
        while flusherState.withLock({ $0 }) == .stopping {
            groupCommit.sleep(seconds: 0.001)
        }
    }
}
