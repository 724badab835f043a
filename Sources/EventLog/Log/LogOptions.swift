import CoreMetrics
import Logging

/// When an append counts as acknowledged (Format.md and README, "Durability").
public enum Durability: Sendable, Equatable {
    /// An append returns only after its bytes, and any new file's directory
    /// entry, are on disk (`fdatasync`). Concurrent appenders share one sync
    /// (group commit).
    case always
    /// A background thread syncs every interval (1 ms to 1 hour): a process
    /// crash loses nothing acknowledged, a power loss at most that window.
    case interval(Duration)
    /// The operating system decides when data reaches the disk; `sync()` and
    /// `close()` force it.
    case none
}

/// Settings for opening a log. `segmentBytes`, `indexInterval` and
/// `compression` take effect for new segments and new batches; an existing
/// log keeps what its files say.
public struct LogOptions: Sendable {
    /// Size at which the active segment is sealed and a new one started.
    public var segmentBytes: Int = 128 << 20
    /// Age after which a non-empty active segment is sealed at the next append; nil: never by age.
    public var segmentMaxAge: Duration? = nil
    /// About one offset-index entry per this many bytes of log (Format.md, "Index files"),
    /// chosen when the log is created and kept in its metadata. A point read
    /// walks at most about this many bytes of records from the entry before
    /// it; each entry costs 12 bytes of index file and of memory while its
    /// segment is open (2048: ~6 KiB per MiB of log).
    public var indexInterval: Int = 2048
    /// The active segment's index files are written in the background every
    /// this many bytes of log: the checkpoint from which recovery after a
    /// crash scans, so its work is bounded by this, not by the segment size.
    /// Its stream index file is rewritten whole, so only when the log since
    /// the last one is as much as that one covers, or 4 × this (Format.md
    /// §13.2): recovery replays the stream entries of at most that much.
    public var checkpointBytes: Int = 16 << 20
    /// Memory for stream states (Format.md §14): the states the writer
    /// changed since the last stream table run, and those waiting to be
    /// written as one. Half of it is the current generation's; past that,
    /// the writer checkpoints early. Every other stream's state stays on
    /// disk, so memory does not grow with the number of streams. It also
    /// bounds a compaction pass's cache of the streams it asks about (about
    /// 96 bytes a stream, `DeadRecordRule.cacheBytesPerStream`).
    public var streamMemoryBytes: Int = 64 << 20
    /// Memory for key compaction's map of each key's latest position
    /// (`LogSettings.keyCompaction`, Format.md §4.1), about
    /// 48 bytes a key (`KeyMap.bytesPerKey`). A pass maps the keys of as many sealed
    /// segments, oldest first from where the last pass stopped, as fit;
    /// what did not fit waits for the next pass (Kafka's dedupe buffer).
    public var keyMapMemoryBytes: Int = 64 << 20
    /// Memory for batches that point and stream reads decompressed and
    /// opened whole, kept for the reads after them (`BatchCache`): sealed
    /// batches (an encrypted log), and LZ4 batches of one block (format
    /// version 8 and before). A read of a kept batch neither decompresses
    /// nor checksums it again (it was verified when it was decompressed)
    /// and goes straight to its record. Taken on the first such read, never
    /// by a log whose batches are plain or plain LZ4 units (a point read
    /// decompresses one unit, `compressionUnitBytes`); a scan
    /// (`read(from:)`) decompresses into a buffer of its own and keeps
    /// nothing. Shared by all of the log's readers; the least recently read
    /// batches make room (a clock). 0 turns it off.
    public var batchCacheBytes: Int = 32 << 20
    /// When an append's batch is on disk (README, "Guarantees"): `.always`
    /// (default) before the append returns, `.interval(d)` within `d`,
    /// `.none` when the OS writes it back, or `sync()`/`close()` force it.
    public var durability: Durability = .always
    /// How new batches are stored: `.none` (default), or `.lz4` for each
    /// batch whose records shrink by compressing them. A log holds both kinds.
    public var compression: Compression = .none
    /// With LZ4, the decompressed bytes after which the writer closes a
    /// unit compressed alone (Format.md §5.2): the units of a segment's
    /// first batch, which gives the segment's dictionary, and of every batch
    /// when `dictionaryUnitBytes` is 0. A point or stream read decompresses
    /// the one unit that holds its record, up to the record. Smaller units
    /// make those reads faster and compress worse: on the benchmark workload
    /// (batches of 100 events, about 23 KB; N = 1M), 4 KiB units alone read
    /// about 1.7× the random events per second of the default, 12 KiB, at a
    /// disk ratio of 0.56 against 0.49. A record is never split. Within
    /// 1 KiB...32 MiB; readers do not depend on it. Scavenging's rewrites and
    /// `import` write units of this size too.
    public var compressionUnitBytes: Int = 12 << 10
    /// With LZ4, the unit size of the batches compressed against their
    /// segment's dictionary (Format.md §5.4): every batch of a segment but
    /// its first, whose first 16 KiB of records are the dictionary. A unit
    /// of 1 KiB (the default) then compresses a little better than a 12 KiB
    /// unit alone, and a point or stream read decompresses that much: on the
    /// benchmark workload (N = 1M), about 2× the random point reads and 3×
    /// the random stream reads of 12 KiB units alone, at a disk ratio of
    /// 0.48 against 0.49, for about a third fewer appended events per second
    /// (compressing against a dictionary costs liblz4 about twice the time
    /// per byte). Within 128...32 MiB, or 0: no dictionary, every batch in
    /// units of `compressionUnitBytes`. Readers do not depend on it.
    public var dictionaryUnitBytes: Int = LZ4Units.dictionaryTargetBytes
    /// Without compression or encryption: each batch whose events' types
    /// repeat stores them once, in a type table after its header, and its
    /// records name their type by a 1-byte index (Format.md §5.3). On the
    /// benchmark workload (8 types of about 13 bytes, batches of 100) that
    /// makes the log about 5% smaller (disk ratio, indexes included, 1.05
    /// instead of 1.10), and costs a point or stream read the cache lines of
    /// the table next to the batch header: about 10% of random point and
    /// stream reads per second there, a few percent of appends and scans.
    /// `false` keeps each type in its record (as format version 9 did).
    /// Readers read both kinds, whatever this says.
    public var typeTables: Bool = true
    /// A long scan (`read(from:maxCount:_:)` that may lend 65,536 events or
    /// more, over 8 MiB or more of segments not read this way before) starts
    /// a thread that reads at most 2 MiB ahead of it, so that the scan finds
    /// its pages mapped and its bytes in the CPU's caches. The scan still
    /// verifies every checksum itself. On the benchmark machine a cold scan
    /// of 1M events runs at 32M events/s instead of 18.6M, using a second
    /// core while it runs. `false`: scans read alone.
    public var scanReadAhead: Bool = true
    /// With LZ4 compression, the writer compresses a batch's units on two
    /// cores: a helper thread (one per writer) compresses each unit of the
    /// batch being built as soon as its records are written, while the
    /// builder goes on; once the batch is complete, the writer's thread and
    /// the helper take the units left, and the bytes written are the same as
    /// by one thread. The writer never waits for the helper to wake. Waiting
    /// for work, the helper looks for it for 200 µs (yielding its core)
    /// before it sleeps. On the benchmark machine, A1 with LZ4 appends about
    /// 1.26M events/s instead of 1.02M alone. `false`: no helper thread.
    public var parallelCompression: Bool = true
    /// How often a writer applies the retention of its settings
    /// (`LogSettings`, `Log.compact()`) in the background; nil: only when
    /// `compact()` is called. Nothing is removed while the settings retain
    /// everything (the default).
    public var maintenanceInterval: Duration? = .seconds(60)
    /// Create the directory and a new log when none exists.
    public var createIfMissing: Bool = true
    /// Open without the writer lock and without changing any file: no recovery
    /// writes, no appends. For inspection tools and readers beside a live writer.
    public var readOnly: Bool = false
    /// With `readOnly`: still allow cursor commits (the cursor journal is
    /// shared by every process that opens the log, under its own lock), so a
    /// consumer in another process can record its progress beside a live
    /// writer. Its cursor journal is the one file such a log changes.
    public var allowsCursorCommits: Bool = false
    /// The permission bits of every file the log creates (segments, indexes,
    /// the lock, the cursor journal, the stream table, temporary and
    /// moved-aside files): `0o600` (the owner only) by default; `0o640`
    /// lets the group read, `0o644` everyone. Directories get an x bit
    /// wherever the mode has an r bit (`0o700`, `0o750`, `0o755`). Never
    /// writable by the group or others: opening refuses a log whose
    /// directory or files are (`EventLogError.insecurePermissions`). Files
    /// that exist keep their mode (`chmod` changes those).
    public var fileMode: UInt32 = 0o600
    /// Encryption at rest (Format.md §5.1, §16): every event's data and
    /// metadata sealed with AES-256-GCM under data keys that the master key
    /// from `LogEncryption.keyProvider` wraps. Chosen when the log is
    /// created; an encrypted log must be opened with it (its master key), a
    /// plain log without it (`EventLogError.encryptionMismatch`). Nil: plain.
    public var encryption: LogEncryption? = nil
    /// Fault injection for tests: every file operation asks it first.
    public var storageFaults: StorageFaults? = nil
    /// Where the log reports what an operator needs (swift-log): recovery
    /// (what an open found, cut and rebuilt, and how long it took) at
    /// `info` after an unclean shutdown (`debug` after a clean one),
    /// segment rolls at `info`, compaction runs at `info`, a failed sync at
    /// `error` (the writer stops), a sync slower than `slowSyncThreshold`
    /// and damage an open went around at `warning`. Nothing per event.
    /// Default: a logger labelled "EventLog" from the bootstrapped backend.
    public var logger = Logger(label: "EventLog")
    /// A sync (`fdatasync`) that takes longer is logged as a warning.
    public var slowSyncThreshold: Duration = .seconds(1)
    /// How often the log's state goes to swift-metrics (README, "Metrics"):
    /// positions, segments, appended and read events and bytes, cursor lag,
    /// consumer groups. Nil: never (syncs are still timed). Read on a timer
    /// of its own, never on an append or a read (a read call only adds to
    /// the log's read counters once, when it ends). At least 10 ms.
    public var metricsInterval: Duration? = .seconds(10)
    /// The most threads the log's executor starts for its `async` calls
    /// (`Log.async`, `Subscription.async`, `ConsumerGroup.async`, the live
    /// `EventSequence`): the blocking work of those calls runs there, never
    /// on the Swift cooperative pool, at most this many calls at once (the
    /// rest wait in order). Threads start on first use and end when the log
    /// closes. Waiting for appends holds none of them. Within 1...64.
    public var asyncThreadCount: Int = 4
    /// Where the metrics go: nil for the bootstrapped `MetricsSystem.factory`
    /// (as read when the log opens), or a factory of the caller's.
    public var metricsFactory: (any MetricsFactory)? = nil
    /// `metricsFactory`, or the bootstrapped one.
    var resolvedMetricsFactory: any MetricsFactory { metricsFactory ?? MetricsSystem.factory }
    /// Test hook: stream hashes are masked with this (0 makes every stream
    /// collide). Must be the same every time a log is opened.
    var streamHashMask: UInt64 = .max
    /// Test hook: under `.always`, write zeros ahead of the writer in the
    /// background (the simulation turns it off so a seed replays exactly).
    var preallocates = true
    /// The writer lock (`eventlog.lock`), already taken: `Log.repair` holds it
    /// while it changes the log and hands it to the open that ends the repair.
    var heldWriterLock: FileHandle? = nil
    /// Test hook: reserve the active segment's space (`fallocate`) ahead of
    /// each write; off, a full disk shows as a failed write (a torn batch).
    var reservesSpace = true
    /// Test hook: the most positions a merged segment may cover (Format.md
    /// §4.2, `Limits.maxMergedSegmentSpan`); a test lowers it to see merging stop there.
    var maxMergedSpan: UInt64 = Limits.maxMergedSegmentSpan
    /// Test hook: the most keys key compaction's map holds, instead of
    /// what `keyMapMemoryBytes` allows; a test lowers it to see passes go window by window.
    var keyMapKeyLimit: Int?
    /// Test hook: the most streams a compaction pass's cache of stream
    /// floors holds (`DeadRecordRule`), instead of what `streamMemoryBytes`
    /// allows; a test lowers it to see the cache empty and fill again.
    var floorsCacheLimit: Int?
    /// Test hook: a read-only log watches its directory for another
    /// process's appends (inotify); off, it only polls (`AppendWatch`).
    var watchesDirectory = true
    /// Test hook: a read-only open calls this on the last segment, with its
    /// path, just before the scan and just after the look past the stop: a
    /// test plays a live writer whose writes land between the two.
    var tailRace: (@Sendable (TailRacePoint, String) -> Void)? = nil

    /// Options with these values, and the defaults of the other
    /// properties. Checked when the log opens (an out-of-range value is
    /// `EventLogError.invalidArgument` then).
    public init(
        segmentBytes: Int = 128 << 20, indexInterval: Int = 2048, durability: Durability = .always,
        compression: Compression = .none, createIfMissing: Bool = true, readOnly: Bool = false
    ) {
        self.segmentBytes = segmentBytes
        self.indexInterval = indexInterval
        self.durability = durability
        self.compression = compression
        self.createIfMissing = createIfMissing
        self.readOnly = readOnly
    }

    /// The modes files and directories are created with.
    var createModes: CreateModes { CreateModes(file: fileMode) }

    func validate() throws(EventLogError) {
        guard segmentBytes >= Limits.minSegmentBytes, segmentBytes <= Limits.maxSegmentBytes else {
            throw .invalidArgument("segmentBytes must be within \(Limits.minSegmentBytes)...\(Limits.maxSegmentBytes), got \(segmentBytes)")
        }
        guard indexInterval >= 64, indexInterval <= 1 << 24 else {
            throw .invalidArgument("indexInterval must be within 64...16777216, got \(indexInterval)")
        }
        if case .interval(let interval) = durability, interval < .milliseconds(1) || interval > .seconds(3600) {
            throw .invalidArgument("durability interval must be within 1 ms...1 hour, got \(interval)")
        }
        guard checkpointBytes >= 4096 else {
            throw .invalidArgument("checkpointBytes must be at least 4096, got \(checkpointBytes)")
        }
        guard streamMemoryBytes >= 1 << 20 else {
            throw .invalidArgument("streamMemoryBytes must be at least 1048576, got \(streamMemoryBytes)")
        }
        guard keyMapMemoryBytes >= 1 << 20 else {
            throw .invalidArgument("keyMapMemoryBytes must be at least 1048576, got \(keyMapMemoryBytes)")
        }
        guard compressionUnitBytes >= 1 << 10, compressionUnitBytes <= Limits.maxBatchBytes else {
            throw .invalidArgument("compressionUnitBytes must be within 1024...\(Limits.maxBatchBytes), got \(compressionUnitBytes)")
        }
        guard dictionaryUnitBytes == 0 || (dictionaryUnitBytes >= 128 && dictionaryUnitBytes <= Limits.maxBatchBytes) else {
            throw .invalidArgument("dictionaryUnitBytes must be 0 or within 128...\(Limits.maxBatchBytes), got \(dictionaryUnitBytes)")
        }
        guard batchCacheBytes >= 0, batchCacheBytes <= 1 << 40 else {
            throw .invalidArgument("batchCacheBytes must be within 0...\(1 << 40), got \(batchCacheBytes)")
        }
        if let interval = maintenanceInterval, interval < .milliseconds(10) {
            throw .invalidArgument("maintenanceInterval must be at least 10 ms, got \(interval)")
        }
        if let interval = metricsInterval, interval < .milliseconds(10) {
            throw .invalidArgument("metricsInterval must be at least 10 ms, got \(interval)")
        }
        guard asyncThreadCount >= 1, asyncThreadCount <= LogExecutor.maxThreadLimit else {
            throw .invalidArgument("asyncThreadCount must be within 1...\(LogExecutor.maxThreadLimit), got \(asyncThreadCount)")
        }
        guard fileMode & 0o600 == 0o600, fileMode & ~UInt32(0o644) == 0 else {
            throw .invalidArgument(
                "fileMode must be 0o600 with at most the group's and others' read bits (0o640, 0o604, 0o644), got 0o\(String(fileMode, radix: 8))")
        }
        if let age = segmentMaxAge, age <= .zero {
            throw .invalidArgument("segmentMaxAge must be positive, got \(age)")
        }
    }
}

/// Where a read-only open of the last segment calls `LogOptions.tailRace`.
enum TailRacePoint: Sendable {
    /// The segment is mapped; its scan has not begun.
    case beforeScan
    /// The scan stopped and the look past the stop is done; nothing is judged yet.
    case afterLook
}
