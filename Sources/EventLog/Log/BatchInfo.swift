/// One stored batch as `Log.readBatches(from:_:)` lends it: where its frame
/// lies in which segment file, and what its header says (Format.md §5).
/// A value: safe to keep and to share between threads.
public struct BatchInfo: Sendable, Hashable {
    /// The segment file's name in the log directory (`00000000000000000000.segment`).
    public var segment: String
    /// The byte offset of the batch frame in the segment file.
    public var offset: Int
    /// The frame's length in bytes, its 48-byte header included: what the batch takes in the file.
    public var length: Int
    /// The frame's CRC32C (verified before the batch was lent).
    public var crc: UInt32
    /// How the records area is stored.
    public var compression: Compression
    /// The position of the batch's first record.
    public var basePosition: UInt64
    /// The records the batch holds (events and stream markers).
    public var recordCount: Int
    /// The timestamp of the batch's first record.
    public var firstTimestamp: Timestamp
    /// The largest timestamp of any record in the batch.
    public var maxTimestamp: Timestamp
    /// The records area's length once decompressed (`length` − 48 when uncompressed; a type table, Format.md §5.3, included).
    public var recordsLength: Int

    /// The position after the batch's last record.
    public var endPosition: UInt64 { basePosition &+ UInt64(recordCount) }
    /// What the frame would take uncompressed: the header and the decompressed records area.
    public var uncompressedLength: Int { BatchHeader.size + recordsLength }

    init(_ header: BatchHeader, at offset: Int, in segment: Segment) {
        self.segment = FileNames.segment(segment.basePosition)
        self.offset = offset
        self.length = Int(header.length)
        self.crc = header.crc
        self.compression = header.codecValue == 0 ? .none : .lz4
        self.basePosition = header.basePosition
        self.recordCount = Int(header.recordCount)
        self.firstTimestamp = header.firstTimestamp
        self.maxTimestamp = header.maxTimestamp
        self.recordsLength = Int(header.recordsLength)
    }
}
