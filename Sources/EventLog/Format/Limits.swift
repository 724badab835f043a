/// The named limits of format version 1 (Format.md, "Limits"). An append that
/// breaks one fails with `EventLogError.limitExceeded` naming it, and writes nothing.
public enum Limits {
    /// Largest stream name, in UTF-8 bytes (stored behind a one-byte length).
    public static let maxStreamNameBytes = 255
    /// Largest event type, in UTF-8 bytes (stored behind a one-byte length).
    public static let maxTypeBytes = 255
    /// An event's explicit key (`NewEvent.key`): 1 to 255 UTF-8 bytes.
    public static let maxKeyBytes = 255
    /// Largest encoded record (stream, type, metadata, data and framing).
    public static let maxRecordBytes = 4 << 20
    /// Largest batch frame, header included, before and after compression.
    public static let maxBatchBytes = 32 << 20
    /// Most events in one batch.
    public static let maxBatchRecords = 1 << 20
    /// Largest encoded metadata section of one record.
    public static let maxMetadataBytes = 64 << 10
    /// Most free string headers in one event's metadata.
    public static let maxHeaders = 64
    /// Largest cursor (or consumer group cursor) name, in UTF-8 bytes (Format.md §15).
    public static let maxCursorNameBytes = 255
    /// Most events in one segment (positions within a segment are u32): the
    /// writer starts a new segment first; a segment holding more is damage.
    public static let maxSegmentEvents = Int(UInt32.max)
    /// Most positions a merged segment may cover, its gaps included
    /// (declared end − base position, Format.md §4.2): offset, time and
    /// stream index entries store a position relative to the segment's
    /// base as a u32, so merging stops before a span would not fit.
    public static let maxMergedSegmentSpan = UInt64(UInt32.max)
    /// Most segments one merge combines (and a compaction manifest lists).
    public static let maxMergedSegments = 4096
    /// Most cursors a log's settings may name as holding retention back (Format.md §3.2).
    public static let maxRetentionCursors = 256
    /// The smallest segment size an option may ask for (4 KiB).
    public static let minSegmentBytes = 4096
    /// The largest segment size an option may ask for (2 GiB).
    public static let maxSegmentBytes = 1 << 31
}
