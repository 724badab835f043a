import Synchronization

/// One segment of the log, sealed or active, as readers see it: its file's
/// mapping, its published extent and its offset and time indexes. A value:
/// the writer publishes a new one (through the segment set) after each
/// batch; a reader's copy never changes under it.
///
/// What other layers keep per segment (the stream index) they keep by the
/// segment's `id`, not inside it.
struct Segment: Sendable {
    /// What never changes for this segment as opened (identity, file,
    /// mapping, index storage), in one object: a copy of a `Segment` (a
    /// snapshot taken, a point read's segment) costs one reference-count
    /// update for all of it, not one per reference.
    final class Fixed: Sendable {
        /// This segment as this process opened or created it (see `SegmentID`).
        let id: SegmentID
        let basePosition: UInt64
        let path: String
        let mapping: MappedRegion
        /// The segment header's checksum: the chain seed of its first batch.
        let headerCRC: UInt32
        let offsetIndex: IndexBuffer<OffsetIndexEntry>
        let timeIndex: IndexBuffer<TimeIndexEntry>
        /// The LZ4 dictionary of its first batch, once a reader needed it (Format.md §5.4).
        let dictionary: SegmentDictionary

        init(
            id: SegmentID, basePosition: UInt64, path: String, mapping: MappedRegion, headerCRC: UInt32,
            offsetIndex: IndexBuffer<OffsetIndexEntry>, timeIndex: IndexBuffer<TimeIndexEntry>,
            dictionary: SegmentDictionary = SegmentDictionary()
        ) {
            self.id = id
            self.basePosition = basePosition
            self.path = path
            self.mapping = mapping
            self.headerCRC = headerCRC
            self.offsetIndex = offsetIndex
            self.timeIndex = timeIndex
            self.dictionary = dictionary
        }
    }

    private(set) var fixed: Fixed

    /// This segment as this process opened or created it (see `SegmentID`).
    @inline(__always) var id: SegmentID { fixed.id }
    @inline(__always) var basePosition: UInt64 { fixed.basePosition }
    @inline(__always) var path: String { fixed.path }
    @inline(__always) var mapping: MappedRegion { fixed.mapping }
    /// The segment header's checksum: the chain seed of its first batch.
    @inline(__always) var headerCRC: UInt32 { fixed.headerCRC }
    /// The offset and time indexes: room for every entry the segment's
    /// file can need while it is active (`IndexPolicy.capacity`), exactly
    /// its entries once it is sealed (`sealed()`).
    @inline(__always) var offsetIndex: IndexBuffer<OffsetIndexEntry> { fixed.offsetIndex }
    @inline(__always) var timeIndex: IndexBuffer<TimeIndexEntry> { fixed.timeIndex }

    /// The position after the last published batch.
    var endPosition: UInt64
    /// The byte offset after the last published batch.
    var dataEnd: Int
    var offsetIndexCount: Int
    var timeIndexCount: Int
    /// The largest timestamp of any event in the segment (Int64.min when empty).
    var maxTimestamp: Timestamp
    /// The first timestamp of the segment's first batch (nil when empty).
    var firstTimestamp: Timestamp?
    /// The last published batch (offset and frame checksum), for index files and recovery.
    var lastBatchOffset: Int
    var lastBatchCRC: UInt32
    var isSealed: Bool
    /// A rewritten segment's declared end (Format.md §4): `endPosition` is
    /// this, and its batches may leave gaps. Nil for a segment written by appends.
    var declaredEnd: UInt64? = nil
    /// The mapped file's device and inode: a read-only process compares it
    /// with the file now at `path` to find segments scavenging replaced.
    var fileIdentity: FileIdentity? = nil

    init(
        id: SegmentID, basePosition: UInt64, path: String, mapping: MappedRegion, headerCRC: UInt32,
        offsetIndex: IndexBuffer<OffsetIndexEntry>, timeIndex: IndexBuffer<TimeIndexEntry>,
        endPosition: UInt64, dataEnd: Int, offsetIndexCount: Int, timeIndexCount: Int, maxTimestamp: Timestamp,
        firstTimestamp: Timestamp?, lastBatchOffset: Int, lastBatchCRC: UInt32, isSealed: Bool,
        declaredEnd: UInt64? = nil, fileIdentity: FileIdentity? = nil
    ) {
        self.fixed = Fixed(
            id: id, basePosition: basePosition, path: path, mapping: mapping, headerCRC: headerCRC,
            offsetIndex: offsetIndex, timeIndex: timeIndex)
        self.endPosition = endPosition
        self.dataEnd = dataEnd
        self.offsetIndexCount = offsetIndexCount
        self.timeIndexCount = timeIndexCount
        self.maxTimestamp = maxTimestamp
        self.firstTimestamp = firstTimestamp
        self.lastBatchOffset = lastBatchOffset
        self.lastBatchCRC = lastBatchCRC
        self.isSealed = isSealed
        self.declaredEnd = declaredEnd
        self.fileIdentity = fileIdentity
    }

    var isEmpty: Bool { endPosition == basePosition }

    /// This segment sealed: nothing is appended to it again, so an index
    /// with more than an eighth of its room unused is copied into a buffer
    /// of exactly its published entries. An active segment's indexes have
    /// room for the most its file can need (1.8 MB at the default 128 MiB
    /// and 4 KiB interval), of which a sealed segment of ~220-byte events
    /// uses a quarter. Readers holding the active value keep its buffers
    /// until they let it go.
    func sealed() -> Segment {
        var segment = self
        segment.isSealed = true
        let offsetsWasteful = offsetIndex.capacity - offsetIndexCount > offsetIndexCount / 8 + 64
        let timesWasteful = timeIndex.capacity - timeIndexCount > timeIndexCount / 8 + 64
        guard offsetsWasteful || timesWasteful else { return segment }
        // The same segment (its id too), with other index storage.
        segment.fixed = Fixed(
            id: id, basePosition: basePosition, path: path, mapping: mapping, headerCRC: headerCRC,
            offsetIndex: offsetsWasteful ? IndexBuffer(exactly: offsetIndexCount, of: offsetIndex) : offsetIndex,
            timeIndex: timesWasteful ? IndexBuffer(exactly: timeIndexCount, of: timeIndex) : timeIndex,
            dictionary: fixed.dictionary)
        return segment
    }

    /// The LZ4 dictionary the batch at `offset` (codec 3) was compressed
    /// against: the one of this segment's first batch (Format.md §5.4).
    /// Valid while this segment is. (Nil `offset`: the dictionary any batch
    /// after the first would use, for a writer.)
    @inline(__always) func lz4Dictionary(forBatchAt offset: Int?) throws(EventLogError) -> LZ4Dictionary {
        try fixed.dictionary.dictionary(in: publishedBytes(), path: path, forBatchAt: offset)
    }

    /// The segment's published data (from byte 0 to `dataEnd`), mapped;
    /// corruption at byte 0 when the mapping is shorter.
    @inline(__always) func publishedBytes() throws(EventLogError) -> UnsafeRawBufferPointer {
        guard let bytes = mapping.bytes(at: 0, count: dataEnd) else {
            throw .corruption(file: path, offset: 0, reason: "segment is shorter than its published data")
        }
        return bytes
    }

    /// Who lends staged copies of this segment's dictionary to point reads
    /// (`SegmentDictionary.lendCopy`); shared by every copy of this value.
    var dictionaryLender: SegmentDictionary { fixed.dictionary }

    /// The byte offset of a batch at or before the one holding `position`:
    /// where a scan for `position` starts.
    @inline(__always) func batchOffset(atOrBefore position: UInt64) -> Int {
        guard let entry = indexEntry(atOrBefore: position) else { return SegmentHeader.size }
        return entry.batchByteOffset
    }

    /// Where a walk of this segment's batches for `position` and after
    /// starts: `batchOffset(atOrBefore:)`, or the first batch when
    /// `position` is at or below the segment's base (no search).
    @inline(__always) func walkStart(for position: UInt64) -> Int {
        position > basePosition ? batchOffset(atOrBefore: position) : SegmentHeader.size
    }

    /// The last offset-index entry at or before `position`. The search starts
    /// where the entry would be if the segment's events were all one size
    /// (entries are spaced by bytes): for most logs that guess is off by an
    /// entry or two, so a point read touches one or two cache lines of the
    /// index instead of a dozen scattered ones (`IndexBuffer.lastIndex(count:near:where:)`).
    @inline(__always) func indexEntry(atOrBefore position: UInt64) -> OffsetIndexEntry? {
        let relative = position &- basePosition
        let count = offsetIndexCount
        let span = endPosition &- basePosition
        // relative < span ≤ 2^32 and count < 2^32 here: the product fits.
        let hint = span > relative && span <= UInt64(UInt32.max) ? Int(relative &* UInt64(count) / span) : count - 1
        guard let i = offsetIndex.lastIndex(count: count, near: hint, where: { UInt64($0.relativePosition) <= relative })
        else { return nil }
        return offsetIndex[i]
    }

    /// The events the segment holds at or after `position`: arithmetic for
    /// a segment written by appends; for a rewritten one (its batches may
    /// leave gaps, Format.md §4.1), the batch headers from the offset index
    /// entry before `position` on are read (their lengths and positions
    /// checked against the published data, not their checksums).
    func eventCount(from position: UInt64) throws(EventLogError) -> UInt64 {
        guard position < endPosition else { return 0 }
        guard declaredEnd != nil else { return endPosition - max(basePosition, position) }
        guard let bytes = mapping.bytes(at: 0, count: dataEnd), let base = bytes.baseAddress else {
            throw .corruption(file: path, offset: 0, reason: "segment is shorter than its published data")
        }
        var count: UInt64 = 0
        var offset = position > basePosition ? batchOffset(atOrBefore: position) : SegmentHeader.size
        while offset < dataEnd {
            guard dataEnd - offset >= BatchHeader.size, MappedBytes.touch(bytes, offset..<(offset + BatchHeader.size)) else {
                throw .corruption(file: path, offset: Int64(offset), reason: "batch header is damaged")
            }
            let header = BatchHeader.load(base + offset)
            guard Int(header.length) >= BatchHeader.size, Int(header.length) <= dataEnd - offset,
                  header.basePosition < header.endPosition, header.endPosition <= endPosition
            else { throw .corruption(file: path, offset: Int64(offset), reason: "batch header is damaged") }
            if header.endPosition > position { count += header.endPosition - max(header.basePosition, position) }
            offset += Int(header.length)
        }
        return count
    }

    /// The byte offset of a batch at or before the first event with a timestamp ≥ `timestamp`.
    func batchOffset(forTimestamp timestamp: Timestamp) -> Int {
        guard let i = timeIndex.lastIndex(count: timeIndexCount, where: { $0.maxTimestampBefore < timestamp })
        else { return SegmentHeader.size }
        return Int(timeIndex[i].offset)
    }

    /// The description an index file carries of this segment.
    var indexFileHeader: IndexFileHeader {
        IndexFileHeader(
            basePosition: basePosition, endPosition: endPosition, dataEnd: UInt32(dataEnd),
            lastBatchOffset: UInt32(lastBatchOffset), lastBatchCRC: lastBatchCRC,
            firstTimestamp: firstTimestamp ?? .min, maxTimestamp: maxTimestamp)
    }
}

/// The identity of a segment as this process opened, created or remapped it.
/// Two segments with the same base position (a file replaced by a rewritten
/// one, or an empty segment grown and mapped again) have different ids, so
/// work queued for one (its index files, another layer's entries) can never
/// be applied to the other. Never stored on disk.
struct SegmentID: Hashable, Sendable, CustomStringConvertible {
    let value: UInt64

    private static let counter = Atomic<UInt64>(0)

    /// A new id, never handed out before in this process.
    static func next() -> SegmentID {
        SegmentID(value: counter.add(1, ordering: .relaxed).newValue)
    }

    var description: String { "segment#\(value)" }
}
