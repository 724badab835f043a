/// The segment the writer appends to, with everything only the writer
/// touches: the file handle and the index policy. Readers see it through
/// the `Segment` the writer publishes after each batch.
struct ActiveSegment: Sendable {
    var snapshot: Segment
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
    /// length set to `capacity` (a hole: no blocks until written), both
    /// synced before the directory is (so a segment whose name survives a
    /// crash has its header: Format.md §10), then mapped.
    ///
    /// When any step fails the file is removed again, so a later roll can
    /// create it. A file left at that name by an earlier failed attempt that
    /// could not be removed is replaced, after checking that it holds no batch
    /// (only the writer, under its lock, creates segments).
    static func create(
        base: UInt64, capacity: Int, indexInterval: Int, logID: [UInt8], directory: DirectoryOperations
    ) throws(EventLogError) -> ActiveSegment {
        let name = FileNames.segment(base)
        let path = directory.file(name)
        let file: FileHandle
        do throws(IOError) {
            do {
                file = try FileHandle.open(path, create: directory.modes, exclusive: true, faults: directory.faults)
            } catch where error.errno == EEXIST {
                try removeLeftover(name, directory: directory)
                file = try FileHandle.open(path, create: directory.modes, exclusive: true, faults: directory.faults)
            }
        } catch {
            throw .io(error)
        }
        do throws(IOError) {
            let now = currentTimestamp()
            let header = SegmentHeader(logID: logID, basePosition: base, createdAt: now)
            try file.write(header.encode(), at: 0)
            try file.setLength(Int64(capacity))
            try file.datasync()
            try directory.sync()
            let mapping = try MappedRegion.map(file, length: capacity)
            let entries = IndexPolicy.capacity(segmentBytes: capacity, interval: indexInterval)
            let snapshot = Segment(
                id: .next(), basePosition: base, path: path, mapping: mapping, headerCRC: header.checksum,
                offsetIndex: IndexBuffer(capacity: entries), timeIndex: IndexBuffer(capacity: entries),
                endPosition: base, dataEnd: SegmentHeader.size, offsetIndexCount: 0, timeIndexCount: 0,
                maxTimestamp: .min, firstTimestamp: nil, lastBatchOffset: 0, lastBatchCRC: header.checksum,
                isSealed: false)
            return ActiveSegment(
                snapshot: snapshot, file: file, capacity: capacity, indexPolicy: IndexPolicy(interval: indexInterval),
                createdAt: now, writebackStart: SegmentHeader.size)
        } catch {
            // Best effort: if the file cannot be removed now, the next attempt replaces it.
            try? directory.remove(name)
            throw .io(error)
        }
    }

    /// Removes a segment file that an earlier failed creation left behind,
    /// after checking that no batch was ever written to it (every byte past
    /// its header is zero).
    private static func removeLeftover(_ name: String, directory: DirectoryOperations) throws(IOError) {
        let path = directory.file(name)
        let file = try FileHandle.open(path, readOnly: true, faults: directory.faults)
        let length = try file.length()
        var probe = [UInt8](repeating: 0, count: 4096)
        var at = Int64(SegmentHeader.size)
        while let region = file.dataRegion(atOrAfter: at, fileLength: length) {
            var offset = region.lowerBound
            while offset < region.upperBound {
                let count = Int(min(Int64(probe.count), region.upperBound - offset))
                var result: Result<Int, IOError> = .success(0)
                probe.withUnsafeMutableBytes { raw in
                    do throws(IOError) { result = .success(try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<count]), at: offset)) }
                    catch { result = .failure(error) }
                }
                let read = try result.get()
                if read == 0 { break }
                guard probe[0..<read].allSatisfy({ $0 == 0 }) else {
                    throw IOError(operation: "open", path: path, errno: EEXIST)
                }
                offset += Int64(read)
            }
            at = region.upperBound
        }
        try directory.remove(name)
    }

    /// Room left for frames.
    var remaining: Int { capacity - snapshot.dataEnd }

    /// Writes the offset and time index files describing the segment as it is
    /// now: both written to temporary names, then renamed, then one directory sync.
    func writeIndexFiles(directory: DirectoryOperations) throws(IOError) {
        try Self.writeIndexFiles(snapshot, directory: directory)
    }

    static func writeIndexFiles(_ s: Segment, directory: DirectoryOperations) throws(IOError) {
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
