/// Writes one segment file holding the batches of several consecutive
/// sealed segments: the file behind a segment merge (Format.md §4.2).
///
/// The new file is a rewritten segment (§4.1): its header has the first
/// segment's base position and creation time and declares the last one's
/// end position, so every position keeps its place and the gaps between
/// and inside the old segments stay gaps. Each batch frame is copied with
/// its records area byte for byte (compressed or not; each record keeps its
/// own checksum, seeded with its position and its batch's first timestamp,
/// which do not change); only two header fields change, the previous CRC
/// (the chain is re-linked from the new header) and the synced lag (0, no
/// claim: it was about the old file's offsets), and so the frame's CRC.
/// Every frame is verified whole, in its old chain, before it is copied.
///
/// Except a frame compressed against its segment's LZ4 dictionary (codec
/// 3, Format.md §5.4) from any segment but the first: the new file's
/// dictionary is the first segment's, so its units are decompressed and
/// compressed again against that one (or on their own, codec 2, when that
/// segment has none to give; as is when LZ4 saves too little).
///
/// The caller names the file and owns what follows (the swap, `SegmentSet`);
/// this type only writes and syncs it.
enum SegmentMerger {
    struct Outcome: Sendable, Equatable {
        /// The new file's header (its checksum is the manifest's proof of the new file).
        var header: SegmentHeader
        /// The new file's length: its header and frames.
        var bytes: Int
        var batches: Int
    }

    /// The bytes the merge of segments whose data ends (header included)
    /// are `dataEnds` would take: one header and every frame.
    static func mergedBytes(dataEnds: [Int]) -> Int {
        SegmentHeader.size + dataEnds.reduce(0) { $0 + max(0, $1 - SegmentHeader.size) }
    }

    /// Writes the merge of `segments` (sealed, consecutive, at least two,
    /// published up to their data ends) to `path`, created or replaced with
    /// exactly the length of its data, then fdatasyncs it. Throws
    /// `invalidArgument` for segments that do not follow each other,
    /// `corruption` for a damaged frame of one of them (naming it and the
    /// offset), and `io` for a failed write.
    static func merge(
        _ segments: [Segment], logID: [UInt8], to path: String, modes: CreateModes, faults: StorageFaults?,
        paces: @escaping () -> Bool
    ) throws -> Outcome {
        guard let first = segments.first, let last = segments.last, segments.count >= 2 else {
            throw EventLogError.invalidArgument("a merge needs at least two segments, got \(segments.count)")
        }
        for (previous, next) in zip(segments, segments.dropFirst()) where next.basePosition != previous.endPosition {
            throw EventLogError.invalidArgument(
                "segment \(next.basePosition) does not follow the one ending at \(previous.endPosition): only neighbours merge")
        }
        guard let head = first.mapping.bytes(at: 0, count: SegmentHeader.size) else {
            throw EventLogError.corruption(file: first.path, offset: 0, reason: "segment is shorter than its header")
        }
        let old = try SegmentHeader.decode(head, file: first.path, logID: logID, expectedBase: first.basePosition)
        let header = SegmentHeader(
            logID: logID, basePosition: first.basePosition, createdAt: old.createdAt, declaredEnd: last.endPosition)

        let file = try FileHandle.open(path, create: modes, faults: faults)
        try file.setLength(0)
        var output = PacedFileWriter(file: file, paces: paces)
        header.encode().withUnsafeBytes { output.buffer.append($0) }
        var chain = header.checksum
        var batches = 0
        // For frames compressed again: the first segment's dictionary, the
        // records, the new frame.
        var firstDictionary: LZ4DictionaryCompressor?? = nil
        var records = ByteBuffer(capacity: 0)
        var frame = ByteBuffer(capacity: 0)
        var stage = LZ4DictionaryStage()
        for segment in segments {
            guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd), bytes.count >= SegmentHeader.size else {
                throw EventLogError.corruption(file: segment.path, offset: 0, reason: "segment is shorter than its published data")
            }
            var offset = SegmentHeader.size
            var oldChain = segment.headerCRC
            var expected = segment.basePosition
            while offset < segment.dataEnd {
                let check = BatchHeader.check(
                    bytes, at: offset, end: segment.dataEnd, previousCRC: oldChain, expectedBase: expected,
                    declaredEnd: segment.declaredEnd, guarded: true)
                var batch = try check.publishedBatch(file: segment.path, offset: offset)
                oldChain = batch.crc
                expected = batch.endPosition
                let sourceLength = Int(batch.length)
                var length = sourceLength
                let at = output.buffer.count
                if batch.usesSegmentDictionary && segment.id != first.id {
                    if firstDictionary == nil {
                        let dictionary = try first.lz4Dictionary(forBatchAt: nil)
                        firstDictionary = .some(LZ4DictionaryCompressor(records: dictionary.bytes))
                    }
                    try recompress(
                        batch: &batch, at: offset, of: segment, bytes: bytes, against: firstDictionary ?? nil, records: &records,
                        into: &frame, stage: &stage)
                    length = frame.count
                    output.buffer.append(frame.bytes)
                } else {
                    output.buffer.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + sourceLength)]))
                }
                batch.previousCRC = chain
                batch.syncedLag = 0
                batch.store(output.buffer.base + at)
                batch.crc = BatchHeader.frameChecksum(output.buffer.base + at, count: length)
                batch.store(output.buffer.base + at)
                chain = batch.crc
                batches += 1
                offset += sourceLength
                try output.flushIfFull()
            }
        }
        try output.finish()
        return Outcome(header: header, bytes: output.count, batches: batches)
    }

    /// The frame of the codec 3 `batch` at `offset` of `segment`, its units
    /// compressed again against `dictionary` (codec 3), or on their own
    /// (codec 2) without one, or stored as is when LZ4 saves too little:
    /// in `frame`, with `batch`'s length and attributes set (its header is
    /// stored by the caller).
    private static func recompress(
        batch: inout BatchHeader, at offset: Int, of segment: Segment, bytes: UnsafeRawBufferPointer,
        against dictionary: LZ4DictionaryCompressor?, records: inout ByteBuffer, into frame: inout ByteBuffer,
        stage: inout LZ4DictionaryStage
    ) throws {
        let length = Int(batch.recordsLength)
        let stored = UnsafeRawBufferPointer(rebasing: bytes[(offset + BatchHeader.size)..<(offset + Int(batch.length))])
        let own = try segment.lz4Dictionary(forBatchAt: offset)
        records.count = 0
        records.reserve(length)
        do { try LZ4Units.decompress(stored, of: batch, into: records.base, dictionary: own, stage: &stage) } catch {
            throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: error.reason)
        }
        records.count = length
        frame.count = 0
        frame.reserve(BatchHeader.size + length)
        frame.count = BatchHeader.size
        if LZ4Units.compress(
            records.bytes, recordCount: Int(batch.recordCount), appendingTo: &frame,
            unitBytes: dictionary == nil ? LZ4Units.targetBytes : LZ4Units.dictionaryTargetBytes, dictionary: dictionary) {
            batch.attributes = dictionary == nil ? LZ4Units.codec : LZ4Units.dictionaryCodec
        } else {
            frame.append(records.bytes)
            batch.attributes = 0
        }
        batch.length = UInt32(frame.count)
    }
}
