import struct Foundation.Date

extension Log {
    // MARK: Cursors

    /// Creates the cursor `name` at `start` when it does not exist; returns its position.
    /// Cursor names are 1 to 255 UTF-8 bytes.
    @discardableResult
    public func createCursor(_ name: String, at start: StartPoint = .start) throws -> UInt64 {
        try consumers.createCursor(name, at: start)
    }

    /// The position of cursor `name` (the next event to consume), nil when it does not exist.
    ///
    /// - Throws: `cursorDamaged` when damaged records of the cursor journal
    ///   name it (its position is unknown; see `damagedCursors()`).
    public func cursorPosition(_ name: String) throws -> UInt64? {
        try consumers.cursorPosition(name)
    }

    /// The cursors that damaged records of the cursor journal name, sorted by
    /// name (also in `recovery.damagedCursors`). Each is unusable until
    /// `resetCursor` or `deleteCursor` gives it a known state, or
    /// `Log.repair` settles the journal.
    public func damagedCursors() -> [DamagedCursor] {
        consumers.damagedCursors()
    }

    /// Commits that every event before `position` was processed. A cursor is
    /// created by its first commit. A commit never moves a cursor backwards
    /// (that is `resetCursor`) nor past the end of the log. Cheap: one small
    /// journal write; under `.always` durable on return (sharing syncs).
    public func commitCursor(_ name: String, position: UInt64) throws {
        try consumers.commitCursor(name, position: position)
    }

    /// Moves cursor `name` to `start`, backwards or forwards (creating it when missing).
    @discardableResult
    public func resetCursor(_ name: String, to start: StartPoint) throws -> UInt64 {
        try consumers.resetCursor(name, to: start)
    }

    /// Deletes cursor `name` (and, for a consumer group, its parked events). Deleting a missing cursor does nothing.
    public func deleteCursor(_ name: String) throws {
        try consumers.deleteCursor(name)
    }

    /// Every cursor with its lag, sorted by name.
    public func cursors() throws -> [CursorInfo] {
        try consumers.cursors()
    }

    /// How far cursor `name` is behind; nil when it does not exist.
    public func lag(ofCursor name: String) throws -> Lag? {
        try consumers.lag(ofCursor: name)
    }

    /// How far a consumer at `position` is behind the end of the log.
    public func lag(from position: UInt64) throws -> Lag {
        try consumers.lag(from: position)
    }

    /// The lowest position retention must keep for these cursors (a
    /// missing cursor needs everything) and for the events consumer groups
    /// parked: retention (`compact()`) removes only segments wholly below
    /// it, for the cursors `settings` names.
    public func retentionFloor(keepingCursors names: [String]) -> UInt64 {
        consumers.retentionFloor(keepingCursors: names)
    }

    // MARK: Groups and subscriptions

    /// The consumer group `name` (one shared instance per log and name while
    /// any worker holds it: give it to every worker).
    public func consumerGroup(_ name: String, options: ConsumerGroupOptions = ConsumerGroupOptions()) throws -> ConsumerGroup {
        try consumers.consumerGroup(name, options: options)
    }

    /// A subscription from `start`, catching up then following the log.
    public func subscribe(from start: StartPoint = .start, filter: EventFilter = EventFilter()) throws -> Subscription {
        try consumers.subscribe(from: start, filter: filter)
    }

    /// A subscription bound to cursor `name`: it starts at the cursor's
    /// committed position (creating the cursor at `createAt` when missing)
    /// and commits its progress there.
    public func subscribe(
        cursor name: String, createAt: StartPoint = .start, filter: EventFilter = EventFilter(), autoCommit: AutoCommit? = nil
    ) throws -> Subscription {
        try consumers.subscribe(cursor: name, createAt: createAt, filter: filter, autoCommit: autoCommit)
    }

    /// The live events from `start` on, as an endless `AsyncSequence`: it
    /// catches up, then waits for appends, and ends only when the task is
    /// cancelled or the log closes. It reads only as the consumer asks (at
    /// most `bufferSize` events ahead), so a slow consumer never makes
    /// anything grow; its reads run on the log's executor, never on the
    /// cooperative pool (`EventSequence`). For a finite array of owned
    /// events, `events(from:maxCount:)`.
    public func liveEvents(
        from start: StartPoint = .start, filter: EventFilter = EventFilter(), bufferSize: Int = 256
    ) throws -> EventSequence {
        try consumers.liveEvents(from: start, filter: filter, bufferSize: bufferSize)
    }

    // MARK: Read-only logs

    /// For a log opened read-only beside a writer in another process: picks
    /// up what that writer appended since this log was opened (or last
    /// refreshed): new batches of the last segment, new segments, and their
    /// streams. Returns true when new events appeared (and wakes this log's
    /// subscribers). A batch still being written is left for the next call.
    ///
    /// Also reads the cursor commits other processes made.
    ///
    /// Read-only logs only (a writable log sees its own appends at once).
    /// Safe to call from any thread; calls are serialised. Blocks on the disk.
    @discardableResult
    public func refresh() throws -> Bool {
        try consumers.refreshFromDisk()
    }

    /// Blocks until the log holds events past `end` (default: `endPosition`
    /// now), `timeout` passes (nil: no limit) or the log closes;
    /// returns true when it does.
    ///
    /// A writable log is woken by its own appends. A read-only log is woken
    /// by another process's: it watches the log directory (inotify, Linux)
    /// and refreshes (`refresh()`) as soon as the writer's write of a batch
    /// returns, so a reader learns of it within a fraction of a millisecond,
    /// without polling. As a safety net it also refreshes every second while
    /// it waits; where the directory cannot be watched, every 50 ms.
    /// Subscriptions (`poll`, `liveEvents(from:)`, consumer groups) of a
    /// read-only log wait the same way.
    ///
    /// Safe to call from several threads (one of them watches, the others
    /// wait for its refresh). Blocks: call it from your own thread, or use
    /// `log.async.waitForAppends`.
    @discardableResult
    public func waitForAppends(after end: UInt64? = nil, timeout: Duration? = nil) throws -> Bool {
        let end = end ?? endPosition
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.timeInterval) }
        let consumers = self.consumers
        _ = try consumers.waitForChange(until: { consumers.isClosed || consumers.endPosition > end }, deadline: deadline)
        return consumers.endPosition > end
    }

    /// `AsyncLog.waitForAppends(after:timeout:)`.
    func waitForAppendsAsync(after end: UInt64?, timeout: Duration?) async throws(EventLogError) -> Bool {
        let end = end ?? endPosition
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.timeInterval) }
        let consumers = self.consumers
        _ = try await consumers.waitForChange(until: { consumers.isClosed || consumers.endPosition > end }, deadline: deadline)
        return consumers.endPosition > end
    }
}
