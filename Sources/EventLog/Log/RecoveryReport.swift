/// What opening a log found and did.
public struct RecoveryReport: Sendable, Equatable {
    /// How the previous session ended.
    public enum Shutdown: Sendable, Equatable {
        /// The log was just created.
        case newLog
        /// `close()` completed at this time; no recovery was needed.
        case clean(at: Timestamp)
        /// The process stopped without `close()` (crash, kill, power loss), or
        /// another process still has the log open: the tail was checked.
        case unclean
    }

    /// How the previous session ended.
    public var previousShutdown: Shutdown = .newLog
    /// Bytes of the last segment that were scanned and checked.
    public var scannedBytes: Int = 0
    /// Where a torn final batch was cut off (file and byte offset), if one was.
    public var tailCut: (file: String, offset: Int64, reason: String)? = nil
    /// Index files rebuilt from their segments because they were missing, stale or damaged.
    public var rebuiltIndexes: [String] = []
    /// Files removed: leftover temporary files, an empty segment whose creation a crash interrupted.
    public var removedFiles: [String] = []
    /// The read version of a log this open upgraded (Format.md §12, "Upgrade"); nil when none.
    public var upgradedFromVersion: Int? = nil
    /// Records read again to bring the stream table and the active segment's
    /// stream index up to date (0 after a clean shutdown).
    public var replayedRecords: Int = 0
    /// Cursors that were ahead of the recovered end of the log (their events
    /// were lost with an unsynced tail) and were moved back to it; consumer
    /// groups' parked events past the end were dropped with them.
    public var clampedCursors: [ClampedCursor] = []
    /// A segment merge this open found under way (its compaction manifest,
    /// Format.md §4.2) and finished or undid; nil when there was none.
    public var pendingMerge: PendingMerge? = nil
    /// Damage confined to a file that the events do not need (Format.md
    /// §10.2): the open went on. A reader reports a damaged or missing
    /// `eventlog.meta`, `eventlog.start` or cursor journal, and a stream
    /// table that no longer reaches the log start; every open reports a
    /// damaged settings file, clean-shutdown marker or last compaction file,
    /// and damaged cursor journal records. `eventlog repair` settles it.
    public var damagedFiles: [DamagedFile] = []
    /// Cursors (and consumer groups' cursors, `group:` + name) that the
    /// damaged records of the cursor journal name, as far as those could be
    /// read: each is unusable (`EventLogError.cursorDamaged`) until it is
    /// reset, deleted or repaired. Its position is never guessed.
    public var damagedCursors: [String] = []

    /// A file found damaged, where, and what was done instead.
    public struct DamagedFile: Sendable, Equatable, CustomStringConvertible {
        /// The file's name in the log directory.
        public var file: String
        /// The byte offset where the damage is.
        public var offset: Int64
        /// What is wrong there.
        public var reason: String

        /// The file, the offset and the reason in one line.
        public var description: String { "\(file) at byte \(offset): \(reason)" }
    }

    /// What an open did with a segment merge it found under way.
    public enum PendingMerge: Sendable, Equatable {
        /// The manifest was committed: the merged segment `[base, end)` took the old segments' place.
        case rolledForward(base: UInt64, end: UInt64)
        /// The swap never reached its rename: the old segments stay, the manifest went.
        case rolledBack(base: UInt64, end: UInt64)
    }

    /// A cursor moved back to the end of the log on open.
    public struct ClampedCursor: Sendable, Equatable {
        /// The cursor's name.
        public var name: String
        /// Where the journal had it.
        public var was: UInt64
        /// The recovered end of the log, where it is now.
        public var now: UInt64
    }

    /// True when both reports say the same of what an open found and did:
    /// the tail cut by file and offset (not its reason's wording), and every
    /// other field but `upgradedFromVersion`.
    public static func == (a: RecoveryReport, b: RecoveryReport) -> Bool {
        a.previousShutdown == b.previousShutdown && a.scannedBytes == b.scannedBytes
            && a.tailCut?.file == b.tailCut?.file && a.tailCut?.offset == b.tailCut?.offset
            && a.rebuiltIndexes == b.rebuiltIndexes && a.removedFiles == b.removedFiles && a.replayedRecords == b.replayedRecords
            && a.clampedCursors == b.clampedCursors && a.pendingMerge == b.pendingMerge
            && a.damagedFiles == b.damagedFiles && a.damagedCursors == b.damagedCursors
    }
}
