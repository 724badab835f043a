extension Log {
    /// Appends `events` as one atomic batch and returns their positions.
    /// Each event gets the next version of its stream; no expectation is checked.
    ///
    /// All of them become visible and durable together, or none does. Under
    /// `.always` this returns once the batch is on disk (sharing the sync with
    /// concurrent appenders); under `.interval` and `.none`, once it is
    /// written to the page cache. Blocks on the disk.
    ///
    /// - Throws: `EventLogError.limitExceeded` or `invalidArgument` for an
    ///   event the log refuses (a name, type, key or batch over its limit,
    ///   text that is not UTF-8); `streamDeleted` for a hard-deleted stream;
    ///   `readOnly`, `closed`; `writerStopped` after a failed sync; `io`
    ///   (`EventLogIOError.isDiskFull` for a full disk). Nothing is written
    ///   then.
    @discardableResult
    public func append(_ events: [NewEvent]) throws -> Range<UInt64> {
        try streams.append(events)
    }

    /// Appends one event; returns its position. As `append(_:)` of an
    /// array, and throws the same.
    @discardableResult
    public func append(_ event: NewEvent) throws -> UInt64 {
        try streams.append(event)
    }

    /// Appends the events that `build` adds to the batch, as one atomic batch,
    /// encoding each straight into the log's buffer (no allocation per event).
    /// `build` runs under the writer lock: keep it short and do not call the
    /// log from it. An empty batch writes nothing. When `build` throws,
    /// nothing of the batch is written and its error is rethrown.
    ///
    ///     try log.appendBatch { batch in
    ///         for order in orders {
    ///             try batch.append(NewEvent(stream: "order-\(order.id)", type: "OrderPlaced", data: order.bytes))
    ///         }
    ///     }
    ///
    /// - Returns: the positions of the events appended.
    /// - Throws: what `build` throws (then nothing is written); otherwise as
    ///   `append(_:)`: what a `BatchBuilder` call threw is an `EventLogError`.
    @discardableResult
    public func appendBatch(_ build: (inout BatchBuilder) throws -> Void) throws -> Range<UInt64> {
        try streams.appendBatch(build)
    }

    /// Appends `events` (to any number of streams) as one atomic batch,
    /// after checking each stream's expected version in `expecting`. Every
    /// event gets the next version of its stream.
    ///
    /// - All or nothing: if any expectation fails, nothing is written and
    ///   `wrongExpectedVersion` names the stream and its actual version.
    /// - Idempotent retries: when the events repeat, by event id, the last
    ///   append to their streams (the same events, the same expectations),
    ///   nothing is written and the original positions and versions are
    ///   returned (`wasRetry`). Only the last append to each stream is
    ///   recognised, and only when every event has an event id. Repeating
    ///   some of its events but not all is `idempotencyConflict`.
    /// - A hard-deleted stream fails with `streamDeleted`; appending to a
    ///   soft-deleted one recreates it, continuing its versions.
    ///
    /// Blocks on the disk (under `.always`, until the batch is synced).
    @discardableResult
    public func append(_ events: [NewEvent], expecting: [String: ExpectedVersion]) throws -> AppendResult {
        try streams.append(events, expecting: expecting)
    }

    /// Appends `events` to `stream` (their own `stream` is replaced), expecting `expectedVersion`:
    /// `append(_:expecting:)` for one stream, the usual call of event sourcing.
    ///
    ///     try log.append(to: "order-42", expectedVersion: .exact(3), [shipped])
    ///
    /// - Throws: `EventLogError.wrongExpectedVersion` when the stream is
    ///   not at `expectedVersion` (nothing is written); otherwise as
    ///   `append(_:expecting:)`.
    @discardableResult
    public func append(
        to stream: String, expectedVersion: ExpectedVersion = .any, _ events: [NewEvent]
    ) throws -> AppendResult {
        try streams.append(events.map { var e = $0; e.stream = stream; return e }, expecting: [stream: expectedVersion])
    }

    /// Deletes a stream by appending a marker to the log. Soft: the stream
    /// reads as empty, and the next append recreates it with the next
    /// version numbers. Hard: it can never be read or written again. The
    /// events stay in the log until compaction frees them.
    @discardableResult
    public func deleteStream(_ stream: String, hard: Bool = false, expectedVersion: ExpectedVersion = .any) throws -> UInt64 {
        try streams.deleteStream(stream, hard: hard, expectedVersion: expectedVersion)
    }

    /// Hides the versions of `stream` below `version` from stream reads (a
    /// marker in the log; compaction frees the space later).
    @discardableResult
    public func truncateStream(_ stream: String, before version: UInt64) throws -> UInt64 {
        try streams.truncateStream(stream, before: version)
    }

    /// Sets how much of `stream` to keep (`StreamLimits`), replacing its
    /// earlier limits (`StreamLimits()` removes them): a marker in the log.
    /// Events beyond the limits are hidden from stream reads at once;
    /// compaction frees their space later, except the stream's last event.
    /// A stream that does not exist yet gets the limits for its events to come.
    ///
    /// - Returns: the marker's position.
    /// - Throws: `invalidArgument` for a max age below one microsecond or a
    ///   max count of 0; `streamDeleted` for a hard-deleted stream.
    @discardableResult
    public func setStreamLimits(_ stream: String, _ limits: StreamLimits) throws -> UInt64 {
        try streams.setLimits(stream, limits)
    }
}
