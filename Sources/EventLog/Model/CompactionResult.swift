/// What one run of `Log.compact()` removed, or would remove (`dryRun`):
/// retention's whole sealed segments below the log start it moves (Format.md
/// §3.1), and scavenging's dead events (§4.1).
public struct CompactionResult: Sendable, Equatable {
    /// True when nothing was changed (`compact(dryRun: true)`).
    public var dryRun: Bool
    /// Segments in the log before the run, and after it.
    public var segmentsBefore: Int
    /// Segments in the log after the run (for a dry run: after it would have run).
    public var segmentsAfter: Int
    /// The segments' file lengths, in bytes.
    public var bytesBefore: UInt64
    /// The segments' file lengths after the run, in bytes.
    public var bytesAfter: UInt64
    /// Events removed: by retention (whole segments) and by scavenging.
    public var eventsRemoved: UInt64
    /// Sealed segments scavenging rewrote without their dead events
    /// (events of deleted streams, events below a stream's truncate-before).
    public var segmentsRewritten: Int = 0
    /// The part of `eventsRemoved` that scavenging removed (the rest went
    /// with the segments retention removed).
    public var eventsScavenged: UInt64 = 0
    /// Sealed segments that merging combined with their neighbours after
    /// scavenging (Format.md §4.2): a merge of *n* segments counts *n* and
    /// leaves *n* − 1 fewer (`segmentsAfter` counts the merged one once).
    /// A dry run estimates it from the sizes scavenging would leave.
    public var segmentsMerged: Int = 0
    /// The log start before the run.
    public var startPositionBefore: UInt64
    /// The log start after the run (unchanged by a dry run).
    public var startPosition: UInt64
    /// What stopped retention from removing more when a limit still asked
    /// for it (a cursor, a parked event), nil when nothing did.
    public var heldBackBy: String?
    /// When the run finished (microseconds since 1970).
    public var finishedAt: Int64
}

/// How a writer's compactions are doing (`Log.maintenanceStatus`): kept in
/// memory by the writer and in the file `eventlog.compaction` (Format.md
/// §3.3), so that a read-only process (`eventlog inspect`) and the next
/// session see them.
public struct MaintenanceStatus: Sendable, Equatable {
    /// The last run, background or `compact()`, that removed something
    /// (or succeeded after a failure): a run that finds nothing to do
    /// leaves it as it was.
    public var lastResult: CompactionResult?
    /// The error of the last run when it failed (cleared by the next run
    /// that succeeds), with when it happened (microseconds since 1970).
    public var lastFailure: String?
    /// When the last run failed (microseconds since 1970), nil when it did not.
    public var lastFailureAt: Int64?
    /// Why `eventlog.compaction` could not be read (damaged: its report is
    /// lost, and the writer's next compaction replaces it), nil when it
    /// could be, or there is none.
    public var unreadableReport: String?
}
