extension Log {
    /// Lends each stored batch that holds a position at or after `position`
    /// (from the log start when `position` is below it) to `body`, in
    /// position order: its segment file, byte offset, length, checksum,
    /// codec, base position, record count and timestamps. For tools that
    /// describe the log's storage (`eventlog dump --batches`, `eventlog stats`).
    ///
    /// Every lent batch's checksum is verified, as by `read(from:maxCount:_:)`.
    /// Reads a consistent snapshot: batches appended meanwhile are not seen.
    /// Never blocks the writer; blocks on the disk (page faults on the mapped
    /// segments).
    ///
    /// - Throws: `EventLogError.corruption` naming the file and offset of a
    ///   damaged batch; whatever `body` throws (to stop early).
    public func readBatches(from position: UInt64 = 0, _ body: (BatchInfo) throws -> Void) throws {
        try batches.readBatches(from: position, lendsEvents: false, body, events: { _ in })
    }

    /// Like `readBatches(from:_:)`, and after each batch's `BatchInfo` lends
    /// its events (and stream markers) at or after `position` to `events`, as
    /// `read(from:maxCount:_:)` lends them (zero-copy; each `EventView` is
    /// valid only during the call): one pass over the log for both.
    public func readBatches(
        from position: UInt64 = 0, _ body: (BatchInfo) throws -> Void, events: (EventView) throws -> Void
    ) throws {
        try batches.readBatches(from: position, lendsEvents: true, body, events: events)
    }
}
