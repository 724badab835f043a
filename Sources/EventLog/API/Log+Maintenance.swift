/// Retention and scavenging: the log's settings and compaction (Format.md §3.1–§3.2, §4.1).
extension Log {
    /// The log's settings (`eventlog.settings`; the defaults, which retain
    /// everything, when the file does not exist). A damaged file is
    /// `corruption` naming it. Any open log.
    public func settings() throws -> LogSettings {
        try maintenance.settings()
    }

    /// Checks and stores new settings (atomically). A writer only; they
    /// apply from the next `compact()` or background run on.
    public func updateSettings(_ settings: LogSettings) throws {
        try maintenance.updateSettings(settings)
    }

    /// Applies retention now: removes the oldest sealed segments that the
    /// settings' age or size limit no longer keeps and that no cursor the
    /// settings name, and no parked event, still needs (never the active
    /// segment). The log start moves to the first segment kept; reads from
    /// a position below it go on from the start, and a read of one removed
    /// position fails with `positionRemoved`. Readers that hold older
    /// snapshots keep reading the removed segments until they let them go.
    ///
    /// Then scavenges (unless `scavenging` is false): rewrites each sealed
    /// segment in which at least 1/16 of the events are dead (events of
    /// deleted streams, events below a stream's truncate-before) without
    /// them (Format.md §4.1). Positions never change; a read of a removed
    /// one fails with `positionRemoved`. Finding dead events reads every
    /// record of the sealed segments not known to be clean.
    ///
    /// With `dryRun`, changes nothing and says what would be removed (any
    /// open log; a rewritten segment's size is estimated). Otherwise a
    /// writer only. A writer also runs this every
    /// `LogOptions.maintenanceInterval` in the background. Blocks on the
    /// disk; appends go on meanwhile.
    public func compact(dryRun: Bool = false, scavenging: Bool = true) throws -> CompactionResult {
        try maintenance.compact(dryRun: dryRun, scavenging: scavenging)
    }

    /// The last result and the last failure of compaction, background runs
    /// included (a failing background run is reported here and logged).
    public var maintenanceStatus: MaintenanceStatus { maintenance.currentStatus }
}
