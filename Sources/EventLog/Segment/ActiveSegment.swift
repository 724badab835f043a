/// The segment the writer appends to, with everything only the writer
/// touches: the file handle and the index policy. Readers see it through
/// the `SegmentSnapshot` the writer publishes after each batch.
struct ActiveSegment: Sendable {
    var snapshot: SegmentSnapshot
    let file: FileHandle
    /// Bytes the file can hold (its length; never shrunk while mapped).
    let capacity: Int
    var indexPolicy: IndexPolicy
    let createdAt: Timestamp
    /// Offset up to which writeback was started (`sync_file_range`).
    var writebackStart: Int

    /// Offset after the last valid batch.
    var dataEnd: Int { snapshot.dataEnd }

    /// Creates a new, empty segment file with base `base`: header written,
    /// length set to `capacity` (a hole: no blocks until written), mapped,
    /// and the directory synced so the file survives a crash.
    static func create(
        base: UInt64, capacity: Int, indexInterval: Int, logID: [UInt8], directory: DirectoryOperations
    ) throws(EventLogError) -> ActiveSegment {
        let name = FileNames.segment(base)
        let path = directory.file(name)
        do throws(IOError) {
            let file = try FileHandle.open(path, create: true, exclusive: true, faults: directory.faults)
            let now = currentTimestamp()
            let header = SegmentHeader(logID: logID, basePosition: base, createdAt: now)
            try file.write(header.encode(), at: 0)
            try file.setLength(Int64(capacity))
            try directory.sync()
            let mapping = try MappedRegion.map(file, length: capacity)
            let entries = IndexPolicy.capacity(segmentBytes: capacity, interval: indexInterval)
            let snapshot = SegmentSnapshot(
                basePosition: base, path: path, mapping: mapping, headerCRC: header.checksum,
                offsetIndex: IndexBuffer(capacity: entries), timeIndex: IndexBuffer(capacity: entries),
                endPosition: base, dataEnd: SegmentHeader.size, offsetIndexCount: 0, timeIndexCount: 0,
                maxTimestamp: .min, firstTimestamp: nil, lastBatchOffset: 0, lastBatchCRC: header.checksum,
                isSealed: false, streamEntries: StreamEntries())
            return ActiveSegment(
                snapshot: snapshot, file: file, capacity: capacity, indexPolicy: IndexPolicy(interval: indexInterval),
                createdAt: now, writebackStart: SegmentHeader.size)
        } catch {
            throw .io(error)
        }
    }

    /// Room left for frames.
    var remaining: Int { capacity - snapshot.dataEnd }

    /// Writes the offset and time index files describing the segment as it is
    /// now: both written to temporary names, then renamed, then one directory sync.
    func writeIndexFiles(directory: DirectoryOperations) throws(IOError) {
        try Self.writeIndexFiles(snapshot, directory: directory)
    }

    static func writeIndexFiles(_ s: SegmentSnapshot, directory: DirectoryOperations) throws(IOError) {
        let header = s.indexFileHeader
        let offsetBytes = IndexFile.encodeOffsetIndex(header, entries: s.offsetIndex.prefix(s.offsetIndexCount))
        let timeBytes = IndexFile.encodeTimeIndex(header, entries: s.timeIndex.prefix(s.timeIndexCount))
        let offsetName = FileNames.offsetIndex(s.basePosition)
        let timeName = FileNames.timeIndex(s.basePosition)
        try directory.writeTemporary(offsetName, bytes: offsetBytes)
        try directory.writeTemporary(timeName, bytes: timeBytes)
        // One directory sync covers both renames.
        try directory.renameTemporaryUnsynced(offsetName)
        try directory.renameTemporaryUnsynced(timeName)
        try directory.sync()
    }
}

#if canImport(Glibc)
import Glibc
#endif
