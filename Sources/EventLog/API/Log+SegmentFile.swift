extension Log {
    /// Lends the batches of one segment file, read on its own outside any
    /// log (a segment `repair` moved aside, or a copy), that hold a position
    /// at or after `position`, to `body`, with their events to `events`, as
    /// `readBatches(from:_:events:)` lends a log's. Read-only: it maps the
    /// file and changes nothing.
    ///
    /// Every frame is checked as recovery checks it (its CRC32C, the chain,
    /// the positions); the file's header as an open does, but for the log
    /// id (the file may come from any log).
    ///
    /// - Throws: `EventLogError.corruption` naming the file and the offset of
    ///   the first damaged batch, after lending every batch before it (or of
    ///   a damaged header, before lending anything); `foreignFile` for a file
    ///   that is not a segment; whatever the bodies throw.
    public static func readSegmentFile(
        at path: String, from position: UInt64 = 0, _ body: (BatchInfo) throws -> Void, events: (EventView) throws -> Void
    ) throws {
        try SegmentFileReader.read(at: path, from: position, lendsEvents: true, body, events: events)
    }

    /// Like `readSegmentFile(at:from:_:events:)`, lending the batches only.
    public static func readSegmentFile(at path: String, from position: UInt64 = 0, _ body: (BatchInfo) throws -> Void) throws {
        try SegmentFileReader.read(at: path, from: position, lendsEvents: false, body, events: { _ in })
    }
}
