/// A segment's offset and time index files, trusted only as far as the
/// segment's data confirms them (Format.md §7, "When an index is trusted"):
/// both files intact, agreeing, naming the segment's base, every entry inside
/// the data they describe and in order, and the batch they name as the last
/// one really there (a valid frame with that CRC, ending at their data end).
///
/// The open resumes each segment from one, and `inspect` reads a segment's
/// extent from one instead of walking its batches. Index files are derived
/// data: whoever gets a failure rebuilds the indexes or scans the segment.
struct IndexCheckpoint {
    var header: IndexFileHeader
    var offsets: [OffsetIndexEntry]
    var times: [TimeIndexEntry]

    /// Loads the index files of the segment `base` from `directory` and checks them against the segment's
    /// `bytes` (the mapped file, `length` bytes long, its header checksum `headerCRC`, its declared end
    /// `declaredEnd` when rewritten). Reads only the index files (at most what an index of the log's
    /// index `interval` can hold, `IndexPolicy.maxIndexFileBytes`) and the last batch they name; nothing
    /// in a hole of the segment (`readable`).
    ///
    /// - Returns: the checkpoint, or why it cannot be used ("index missing", a damaged file, or a
    ///   description the segment does not confirm).
    static func load(
        base: UInt64, declaredEnd: UInt64?, bytes: UnsafeRawBufferPointer, length: Int, headerCRC: UInt32,
        readable: ReadableRegions, directory: DirectoryOperations, interval: Int
    ) -> Result<IndexCheckpoint, IndexFile.Unusable> {
        do throws(IndexFile.Unusable) {
            let offsetBytes: [UInt8]?
            let timeBytes: [UInt8]?
            do {
                let limit = IndexPolicy.maxIndexFileBytes(interval: interval)
                offsetBytes = try directory.readWhole(FileNames.offsetIndex(base), atMost: limit)
                timeBytes = try directory.readWhole(FileNames.timeIndex(base), atMost: limit)
            } catch {
                throw IndexFile.Unusable(reason: "index unreadable: \(error)")
            }
            guard let offsetBytes, let timeBytes else { throw IndexFile.Unusable(reason: "index missing") }
            let (header, offsets) = try decoded(IndexFile.decodeOffsetIndex, offsetBytes, FileNames.offsetIndex(base))
            let (timeHeader, times) = try decoded(IndexFile.decodeTimeIndex, timeBytes, FileNames.timeIndex(base))
            guard header == timeHeader else { throw IndexFile.Unusable(reason: "the offset and time index disagree") }
            guard header.basePosition == base else {
                throw IndexFile.Unusable(reason: "index names base position \(header.basePosition)")
            }
            guard Int(header.dataEnd) <= length, Int(header.dataEnd) >= SegmentHeader.size else {
                throw IndexFile.Unusable(reason: "index names data end \(header.dataEnd), outside the segment")
            }
            try checkLastBatch(header, declaredEnd: declaredEnd, offsetsEmpty: offsets.isEmpty, bytes: bytes, headerCRC: headerCRC, readable: readable)
            // Entries must point inside the described data, in order.
            var previous: OffsetIndexEntry?
            for e in offsets {
                guard e.byteOffset < Int(header.dataEnd), e.byteOffset >= SegmentHeader.size,
                      previous.map({ $0.byteOffset < e.byteOffset && $0.relativePosition < e.relativePosition }) ?? true
                else { throw IndexFile.Unusable(reason: "an offset index entry points outside the data or out of order") }
                previous = e
            }
            if times.contains(where: { Int($0.offset) >= Int(header.dataEnd) }) {
                throw IndexFile.Unusable(reason: "a time index entry points past the data")
            }
            return .success(IndexCheckpoint(header: header, offsets: offsets, times: times))
        } catch {
            return .failure(error)
        }
    }

    /// The description is confirmed by the segment: an empty one by the header checksum, any other by
    /// a valid frame at the last batch offset with the named CRC, ending at the data end (Format.md §7).
    private static func checkLastBatch(
        _ header: IndexFileHeader, declaredEnd: UInt64?, offsetsEmpty: Bool, bytes: UnsafeRawBufferPointer,
        headerCRC: UInt32, readable: ReadableRegions
    ) throws(IndexFile.Unusable) {
        // A rewritten segment's files carry its declared end (§7).
        if let declaredEnd, header.endPosition != declaredEnd {
            throw IndexFile.Unusable(reason: "index names end position \(header.endPosition), the segment declares \(declaredEnd)")
        }
        if header.dataEnd == UInt32(SegmentHeader.size) && (declaredEnd != nil || header.endPosition == header.basePosition) {
            guard header.lastBatchCRC == headerCRC, offsetsEmpty else {
                throw IndexFile.Unusable(reason: "index of an empty segment names a batch")
            }
            return
        }
        guard header.endPosition != header.basePosition else {
            throw IndexFile.Unusable(reason: "index names data but no events")
        }
        let at = Int(header.lastBatchOffset)
        // What the checkpoint claims must be data before it is read.
        guard at < Int(header.dataEnd), readable.contains(at..<Int(header.dataEnd)),
              case .valid(let last) = BatchHeader.check(bytes, at: at, end: Int(header.dataEnd), previousCRC: nil, expectedBase: nil),
              last.crc == header.lastBatchCRC, at + Int(last.length) == Int(header.dataEnd),
              declaredEnd == nil ? last.endPosition == header.endPosition : last.endPosition <= header.endPosition
        else {
            throw IndexFile.Unusable(reason: "the last batch the index names (at byte \(at)) is not in the segment")
        }
    }

    /// `decode(bytes)`, its failure naming the file.
    private static func decoded<T>(
        _ decode: ([UInt8]) throws(IndexFile.Unusable) -> T, _ bytes: [UInt8], _ name: String
    ) throws(IndexFile.Unusable) -> T {
        do throws(IndexFile.Unusable) { return try decode(bytes) } catch {
            throw IndexFile.Unusable(reason: "\(name) unusable: \(error.reason)")
        }
    }
}
