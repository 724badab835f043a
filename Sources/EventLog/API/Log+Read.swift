extension Log {
    /// Reads events in position order starting at `position`, lending each
    /// to `body` as an `EventView` of the stored bytes (zero-copy; valid only
    /// during the call). Every batch's checksum is verified before any of its
    /// events is lent.
    ///
    /// Reads a consistent snapshot: events appended meanwhile are not seen.
    /// Never blocks the writer.
    ///
    /// A position below the log's start (events retention removed) reads
    /// from the start; one at or past the end lends nothing.
    ///
    /// - Returns: the position after the last event lent (where to continue).
    /// - Throws: `EventLogError.corruption` naming the file and offset of a
    ///   damaged batch; whatever `body` throws.
    @discardableResult
    public func read(
        from position: UInt64, maxCount: Int = .max, _ body: (EventView) throws -> Void
    ) throws -> UInt64 {
        try batches.read(from: position, maxCount: maxCount, body)
    }

    /// The events from `position` on, at most `maxCount`, as owned values:
    /// a finite array of what the log holds now (`liveEvents(from:)` is the
    /// endless sequence that follows the log). Throws as
    /// `read(from:maxCount:_:)`.
    public func events(from position: UInt64, maxCount: Int = .max) throws -> [Event] {
        var events: [Event] = []
        do {
            try batches.read(from: position, maxCount: maxCount) { view in events.append(try view.event()) }
        } catch {
            throw EventLogError.wrapping(error)
        }
        return events
    }

    /// Lends the event at `position` to `body`. Verifies that event's own
    /// checksum (not its whole batch), so a point read stays cheap. The
    /// `EventView` is valid only during the call. Never blocks the writer;
    /// may block on the disk (a page fault on the mapped segment).
    ///
    /// - Returns: what `body` returns.
    /// - Throws: `EventLogError.positionOutOfRange` for a position at or
    ///   past the end; `positionRemoved` for one retention or scavenging
    ///   removed; `corruption` naming the file and offset of a damaged
    ///   record; whatever `body` throws.
    public func withEvent<R>(at position: UInt64, _ body: (EventView) throws -> R) throws -> R {
        try batches.withEvent(at: position, body)
    }

    /// The event at `position`, owned (a copy of its bytes): as
    /// `withEvent(at:_:)`, and throws the same, or `corruption` for damaged
    /// metadata.
    public func event(at position: UInt64) throws -> Event {
        try batches.event(at: position)
    }

    /// The position of the first event whose timestamp is at or after
    /// `timestamp`, or `endPosition` when there is none.
    public func position(atOrAfter timestamp: Timestamp) throws -> UInt64 {
        try batches.position(atOrAfter: timestamp)
    }

    /// Reads the whole log from `position` like `read(from:maxCount:_:)`,
    /// lending only the events `filter` accepts; `maxCount` counts those.
    /// Skipped events still advance the returned position.
    @discardableResult
    public func read(
        from position: UInt64, maxCount: Int = .max, filter: EventFilter, _ body: (EventView) throws -> Void
    ) throws -> UInt64 {
        try streams.read(from: position, maxCount: maxCount, filter: filter, body)
    }

    /// The events from `position` on that `filter` accepts, at most
    /// `maxCount` of them, as owned values (see `read(from:maxCount:filter:_:)`).
    public func events(from position: UInt64, maxCount: Int = .max, filter: EventFilter) throws -> [Event] {
        var events: [Event] = []
        do {
            _ = try streams.read(from: position, maxCount: maxCount, filter: filter) { view in events.append(try view.event()) }
        } catch {
            throw EventLogError.wrapping(error)
        }
        return events
    }

    // MARK: Streams

    /// The state of `stream`, or nil when it never existed.
    public func streamInfo(_ stream: String) throws -> StreamInfo? {
        try streams.streamInfo(stream)
    }

    /// Every stream (or those whose name starts with `prefix`), sorted by
    /// name, as `streamInfo(_:)` describes each.
    public func streamInfos(prefix: String = "") throws -> [StreamInfo] {
        try streams.streamInfos(prefix: prefix)
    }

    /// Reads the events of `stream` from version `from` (ascending with
    /// `.forward`, descending with `.backward`), at most `maxCount`, lending
    /// each to `body`. Versions below the stream's truncate-before point are
    /// skipped; a soft-deleted stream reads as empty. Each event's own
    /// checksum is verified, and its stream name confirmed.
    ///
    /// - Returns: how many events were lent.
    /// - Throws: `streamDeleted` for a hard-deleted stream; `corruption`.
    @discardableResult
    public func readStream(
        _ stream: String, from version: UInt64? = nil, maxCount: Int = .max, direction: ReadDirection = .forward,
        _ body: (EventView) throws -> Void
    ) throws -> Int {
        try streams.readStream(stream, from: version, maxCount: maxCount, direction: direction, body)
    }

    /// The events of `stream` as owned values (see `readStream(_:from:maxCount:direction:_:)`).
    public func events(
        inStream stream: String, from version: UInt64? = nil, maxCount: Int = .max, direction: ReadDirection = .forward
    ) throws -> [Event] {
        var events: [Event] = []
        do {
            _ = try streams.readStream(stream, from: version, maxCount: maxCount, direction: direction) { events.append(try $0.event()) }
        } catch {
            throw EventLogError.wrapping(error)
        }
        return events
    }
}
