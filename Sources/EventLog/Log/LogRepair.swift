/// `Log.repair`: the explicit way past damage that an open refuses or that
/// `verify` reports (Format.md §10.1, "Repair"). It plans from what `verify`
/// found (`RepairPlanner`), and carries the plan out (`LogRepair+Apply.swift`)
/// under the writer lock, which it holds from `init` until it is released.
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
    init(at path: String, faults: StorageFaults?, modes: CreateModes) throws {
        guard DirectoryOperations.isDirectory(path) else { throw EventLogError.notFound(path: path) }
        directory = DirectoryOperations(path: path, faults: faults, modes: modes)
        // As an open would: a log other users can change is not trusted.
        if let (path, mode) = directory.writableByOthers(among: try directory.list()) {
            throw EventLogError.insecurePermissions(path: path, mode: UInt32(mode))
        }
        let metadataFile = directory.file(FileNames.metadata)
        let firstSegment = SegmentSet.bases(in: try directory.list()).first
        guard DirectoryOperations.exists(metadataFile) || firstSegment != nil else { throw EventLogError.notFound(path: path) }
        lock = try Opener.lockForWriting(directory)
        let damage: (offset: Int64, reason: String)
        switch try LogMetadata.read(in: directory, writing: true) {
        case .success(let found?):
            metadata = found
            metadataRebuild = nil
            return
        case .success(nil): damage = (0, "the log metadata file is missing")
        case .failure(let found): damage = (found.offset, found.reason)
        }
        guard let base = firstSegment else { throw EventLogError.notFound(path: path) }
        // Rebuilt from the segment headers (Format.md §10.1); the settings no other file keeps get their defaults.
        let defaults = LogOptions()
        metadata = try LogMetadata.rebuilt(
            fromSegment: directory.file(FileNames.segment(base)), segmentBytes: defaults.segmentBytes,
            indexInterval: defaults.indexInterval, compression: .none)
        let id = metadata.logID.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        metadataRebuild = RepairAction(
            kind: .rebuild, file: FileNames.metadata, offset: damage.offset,
            reason: "\(damage.reason); rebuilt from the segment headers: log id \(id), format version \(metadata.readVersion); "
                + "the settings no other file keeps get their defaults: segment bytes \(metadata.segmentBytes), "
                + "index interval \(metadata.indexInterval), compression none (eventlog config sets the log's settings)")
    }

    /// Set when `eventlog.meta` is damaged or missing: the action that
    /// writes it again, first of all, from the segment headers.
    let metadataRebuild: RepairAction?

    /// What the apply step does, in its order (see `apply`).
    struct Steps {
        /// The damaged directory's name in the log directory; nil when nothing leaves the log.
        var damagedDirectory: String?
        /// The cursor journal is damaged: copied into the damaged directory,
        /// then replaced by `journalBytes` (which the consumer layer gives).
        var rewritesJournal = false
        var journalBytes: [UInt8]?
        /// `eventlog.meta` written again (atomically) before anything else.
        var metadataBytes: [UInt8]?
        /// `eventlog.start` written again (atomically) next, when damaged or missing.
        var startBytes: [UInt8]?
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
    /// found (`RepairPlanner`). Changes nothing.
    func plan(from report: VerificationReport, now: Timestamp = currentTimestamp()) throws -> (RepairPlan, Steps) {
        var planner = try RepairPlanner(directory: directory, report: report)
        var (plan, steps) = planner.make(now: now)
        if let metadataRebuild, plan.refusal == nil {
            plan.actions.insert(metadataRebuild, at: 0)
            steps.metadataBytes = metadata.encode()
        }
        return (plan, steps)
    }
}
