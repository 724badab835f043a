/// The log's calls for Swift concurrency (`log.async`): the same calls as
/// `Log`'s, by the same names and arguments, as `async` functions whose
/// blocking work runs on the log's own threads, never on the cooperative
/// thread pool.
///
/// ## Where the work runs
/// Each open `Log` owns an executor: at most `LogOptions.asyncThreadCount`
/// threads (4 by default), started on first use and ended by `close()`.
/// Every call here is one job there; at most that many run at once, the
/// rest wait in order. The calling task suspends meanwhile and holds no
/// thread. Waiting for appends (`waitForAppends`, a caught-up
/// `Subscription.async.poll`, `ConsumerGroup.async.receive`, the live
/// `EventSequence`) holds no thread of the executor either: the task
/// suspends until an append wakes it. On a read-only log, one more thread
/// of the log's watches the directory for all its waiting tasks while any
/// waits (`AsyncWaitWatcher`).
///
/// ## The shape
/// Every blocking call of `Log` has its async form here, under the same
/// name (and `Subscription.async`, `ConsumerGroup.async` for theirs). Calls
/// that lend `EventView`s (valid only inside a closure) have owned forms
/// (`events(from:maxCount:)`, `events(inStream:…)`). The only call with a
/// closure, `appendBatch`, runs it on the executor, under the writer lock.
/// `AsyncLog.open(at:options:)` opens a log off the pool.
///
/// ## Cancellation and errors
/// Cancelling the task does not stop a call that started: an append that
/// began is completed (and acknowledged) or fails as the synchronous call
/// would. Waiting calls end at once on cancellation. After `close()` every
/// call fails with `EventLogError.closed`. Errors are those of the
/// synchronous calls (README, "Errors").
public struct AsyncLog: Sendable {
    /// The log these calls go to.
    public let log: Log

    /// Runs `body` on the log's executor and resumes with its result.
    private func run<T: Sendable>(_ body: @escaping @Sendable (Log) throws -> T) async throws -> T {
        let log = self.log
        return try await log.executor.run { try body(log) }
    }

    /// Runs `body` with the log on the log's executor (one of its threads,
    /// never the cooperative pool) and resumes with what it returns or
    /// throws: for blocking work made of several `Log` calls, such as a
    /// library's load, decide and append. `body` holds one of the
    /// executor's threads while it runs (`LogOptions.asyncThreadCount`):
    /// keep it short, and do not wait in it for other executor work.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (Log) throws -> T) async throws -> T {
        try await run(body)
    }

    // MARK: Opening and closing

    /// `Log.open(at:options:)` off the cooperative pool: the open (and any
    /// recovery) runs on the executor the new log then keeps.
    public static func open(at path: String, options: LogOptions = LogOptions()) async throws -> Log {
        try options.validate()
        let executor = LogExecutor(threadLimit: options.asyncThreadCount)
        do {
            return try await executor.run { try Log.open(at: path, options: options, executor: executor) }
        } catch {
            executor.shutdown()
            throw error
        }
    }

    /// `Log.sync()` on the log's executor: makes everything appended so far
    /// durable, whatever the durability policy (an `fdatasync` of the
    /// active segment and of the directory). Throws as `Log.sync()`.
    public func sync() async throws {
        try await run { try $0.sync() }
    }

    /// `Log.close()` on the log's executor: syncs, writes the indexes and the
    /// clean-shutdown marker, and releases the files. The executor's threads
    /// end after this call; later calls fail with `EventLogError.closed`.
    public func close() async throws {
        try await run { try $0.close() }
    }

    // MARK: Appending

    /// `Log.append(_:)` for a batch, on the log's executor: the events, to any
    /// number of streams, as one atomic batch. Returns their positions; under
    /// `.always` the batch is on disk when it returns.
    @discardableResult
    public func append(_ events: [NewEvent]) async throws -> Range<UInt64> {
        try await run { try $0.append(events) }
    }

    /// `Log.append(_:)` for one event, on the log's executor. Returns its position.
    @discardableResult
    public func append(_ event: NewEvent) async throws -> UInt64 {
        try await run { try $0.append(event) }
    }

    /// `Log.append(_:expecting:)`: expectations and idempotent retries by event id.
    @discardableResult
    public func append(_ events: [NewEvent], expecting: [String: ExpectedVersion]) async throws -> AppendResult {
        try await run { try $0.append(events, expecting: expecting) }
    }

    /// `Log.append(to:expectedVersion:_:)`.
    @discardableResult
    public func append(to stream: String, expectedVersion: ExpectedVersion = .any, _ events: [NewEvent]) async throws -> AppendResult {
        try await run { try $0.append(to: stream, expectedVersion: expectedVersion, events) }
    }

    /// `Log.appendBatch(_:)`: `build` runs on the log's executor, under the
    /// writer lock (keep it short; do not call the log from it).
    @discardableResult
    public func appendBatch(_ build: @escaping @Sendable (inout BatchBuilder) throws -> Void) async throws -> Range<UInt64> {
        try await run { try $0.appendBatch(build) }
    }

    /// `Log.deleteStream(_:hard:expectedVersion:)` on the log's executor: a
    /// deletion marker for `stream` (soft: it reads as empty and may be
    /// written again; hard: never again). Returns the marker's position.
    @discardableResult
    public func deleteStream(_ stream: String, hard: Bool = false, expectedVersion: ExpectedVersion = .any) async throws -> UInt64 {
        try await run { try $0.deleteStream(stream, hard: hard, expectedVersion: expectedVersion) }
    }

    /// `Log.truncateStream(_:before:)` on the log's executor: hides the
    /// versions of `stream` below `version`. Returns the marker's position.
    @discardableResult
    public func truncateStream(_ stream: String, before version: UInt64) async throws -> UInt64 {
        try await run { try $0.truncateStream(stream, before: version) }
    }

    /// `Log.setStreamLimits(_:_:)` on the log's executor: a max age and a max
    /// count for `stream`. Returns the marker's position.
    @discardableResult
    public func setStreamLimits(_ stream: String, _ limits: StreamLimits) async throws -> UInt64 {
        try await run { try $0.setStreamLimits(stream, limits) }
    }

    // MARK: Reading (owned events)

    /// `Log.events(from:maxCount:)`: at most `maxCount` events from
    /// `position` on, as a finite array (`liveEvents(from:)` follows the log).
    public func events(from position: UInt64, maxCount: Int = .max) async throws -> [Event] {
        try await run { try $0.events(from: position, maxCount: maxCount) }
    }

    /// `Log.events(from:maxCount:filter:)`: the events `filter` accepts.
    public func events(from position: UInt64, maxCount: Int = .max, filter: EventFilter) async throws -> [Event] {
        try await run { try $0.events(from: position, maxCount: maxCount, filter: filter) }
    }

    /// `Log.event(at:)` on the log's executor: the event at `position`, owned,
    /// its own checksum verified. Throws `positionOutOfRange` or
    /// `positionRemoved` for a position the log does not hold.
    public func event(at position: UInt64) async throws -> Event {
        try await run { try $0.event(at: position) }
    }

    /// `Log.position(atOrAfter:)` on the log's executor: the position of the
    /// first event stamped at or after `timestamp` (the time index), or the
    /// end position when there is none.
    public func position(atOrAfter timestamp: Timestamp) async throws -> UInt64 {
        try await run { try $0.position(atOrAfter: timestamp) }
    }

    /// `Log.events(inStream:from:maxCount:direction:)`: a stream read,
    /// forward or `.backward`.
    public func events(
        inStream stream: String, from version: UInt64? = nil, maxCount: Int = .max, direction: ReadDirection = .forward
    ) async throws -> [Event] {
        try await run { try $0.events(inStream: stream, from: version, maxCount: maxCount, direction: direction) }
    }

    /// `Log.streamInfo(_:)` on the log's executor: the stream's versions,
    /// positions, deletion and limits; nil when it never existed.
    public func streamInfo(_ stream: String) async throws -> StreamInfo? {
        try await run { try $0.streamInfo(stream) }
    }

    /// `Log.streamInfos(prefix:)` on the log's executor: every stream whose
    /// name starts with `prefix`, sorted by name.
    public func streamInfos(prefix: String = "") async throws -> [StreamInfo] {
        try await run { try $0.streamInfos(prefix: prefix) }
    }

    // MARK: Cursors

    /// `Log.createCursor(_:at:)` on the log's executor: creates cursor `name`
    /// at `start` unless it exists; returns its position.
    @discardableResult
    public func createCursor(_ name: String, at start: StartPoint = .start) async throws -> UInt64 {
        try await run { try $0.createCursor(name, at: start) }
    }

    /// `Log.cursorPosition(_:)` on the log's executor: the cursor's committed
    /// position, nil when there is no such cursor.
    public func cursorPosition(_ name: String) async throws -> UInt64? {
        try await run { try $0.cursorPosition(name) }
    }

    /// `Log.commitCursor(_:position:)` on the log's executor: every event
    /// before `position` is processed (never moves a cursor back). Under
    /// `.always` durable on return.
    public func commitCursor(_ name: String, position: UInt64) async throws {
        try await run { try $0.commitCursor(name, position: position) }
    }

    /// `Log.resetCursor(_:to:)` on the log's executor: moves the cursor to
    /// `start`, back or forth (creating it when missing); returns its position.
    @discardableResult
    public func resetCursor(_ name: String, to start: StartPoint) async throws -> UInt64 {
        try await run { try $0.resetCursor(name, to: start) }
    }

    /// `Log.deleteCursor(_:)` on the log's executor.
    public func deleteCursor(_ name: String) async throws {
        try await run { try $0.deleteCursor(name) }
    }

    /// `Log.cursors()` on the log's executor: every cursor, with its lag
    /// (which reads the log: this may block on the disk, off the pool).
    public func cursors() async throws -> [CursorInfo] {
        try await run { try $0.cursors() }
    }

    /// `Log.lag(ofCursor:)` on the log's executor: how far the cursor is
    /// behind the end; nil when there is no such cursor.
    public func lag(ofCursor name: String) async throws -> Lag? {
        try await run { try $0.lag(ofCursor: name) }
    }

    // MARK: Subscriptions and consumer groups

    /// `Log.subscribe(from:filter:)`; poll it with `subscription.async.poll`.
    public func subscribe(from start: StartPoint = .start, filter: EventFilter = EventFilter()) async throws -> Subscription {
        try await run { try $0.subscribe(from: start, filter: filter) }
    }

    /// `Log.subscribe(cursor:createAt:filter:autoCommit:)` on the log's
    /// executor: a subscription from the cursor's position (created at
    /// `createAt` when missing) that commits its progress there; poll it
    /// with `subscription.async.poll`.
    public func subscribe(
        cursor name: String, createAt: StartPoint = .start, filter: EventFilter = EventFilter(), autoCommit: AutoCommit? = nil
    ) async throws -> Subscription {
        try await run { try $0.subscribe(cursor: name, createAt: createAt, filter: filter, autoCommit: autoCommit) }
    }

    /// `Log.consumerGroup(_:options:)`; receive with `group.async.receive`.
    public func consumerGroup(_ name: String, options: ConsumerGroupOptions = ConsumerGroupOptions()) async throws -> ConsumerGroup {
        try await run { try $0.consumerGroup(name, options: options) }
    }

    /// `Log.liveEvents(from:filter:bufferSize:)`, its start resolved on the
    /// executor (a `.timestamp` start reads the time index).
    public func liveEvents(
        from start: StartPoint = .start, filter: EventFilter = EventFilter(), bufferSize: Int = 256
    ) async throws -> EventSequence {
        try await run { try $0.liveEvents(from: start, filter: filter, bufferSize: bufferSize) }
    }

    // MARK: Read-only logs and maintenance

    /// `Log.refresh()` on the log's executor: a read-only log picks up what
    /// another process appended; true when new events appeared.
    @discardableResult
    public func refresh() async throws -> Bool {
        try await run { try $0.refresh() }
    }

    /// `Log.waitForAppends(after:timeout:)` for a task: true once the log
    /// holds events past `end` (default: `endPosition` now); false after
    /// `timeout`, when the log closes, or when the task is cancelled (which
    /// ends the wait at once). The task holds no thread while it waits.
    @discardableResult
    public func waitForAppends(after end: UInt64? = nil, timeout: Duration? = nil) async throws -> Bool {
        let log = self.log
        return try await log.waitForAppendsAsync(after: end, timeout: timeout)
    }

    /// `Log.compact(dryRun:scavenging:)` on the log's executor (the pass
    /// itself runs on the log's low-priority thread): applies retention and
    /// scavenges; returns what it removed (or would, with `dryRun`).
    @discardableResult
    public func compact(dryRun: Bool = false, scavenging: Bool = true) async throws -> CompactionResult {
        try await run { try $0.compact(dryRun: dryRun, scavenging: scavenging) }
    }
}

extension Log {
    /// The log's calls as `async` functions whose blocking work runs on the
    /// log's own threads, never on the cooperative pool (`AsyncLog`).
    public var async: AsyncLog { AsyncLog(log: self) }
}
