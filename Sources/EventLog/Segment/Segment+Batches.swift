extension Segment {
    /// Walks the published batches of this segment that hold a position at
    /// or after `position`, in order, and lends each verified header with
    /// its byte offset in the file to `body`.
    ///
    /// Every lent frame was checked as a read checks it (length bounds, its
    /// CRC32C and its header fields; not the chain to the batch before), with
    /// the header and the checksum read under the SIGBUS guard. A batch
    /// wholly before `position` is passed on its header alone, as a read
    /// passes it: damage inside it does not hide the batches after it.
    ///
    /// - Throws: `EventLogError.corruption` naming this segment's file and
    ///   the offset of the damaged or unreadable frame; whatever `body` throws.
    func forEachBatch(from position: UInt64, _ body: (BatchHeader, Int) throws -> Void) throws {
        guard position < endPosition, dataEnd > SegmentHeader.size else { return }
        guard let bytes = mapping.bytes(at: 0, count: dataEnd), let base = bytes.baseAddress else {
            throw EventLogError.corruption(file: path, offset: 0, reason: "segment is shorter than its published data")
        }
        var offset = position > basePosition ? batchOffset(atOrBefore: position) : SegmentHeader.size
        while offset < dataEnd {
            if offset + BatchHeader.size <= dataEnd {
                guard MappedBytes.touch(bytes, offset..<(offset + BatchHeader.size)) else {
                    throw EventLogError.corruption(file: path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
                }
                let passed = BatchHeader.load(base + offset)
                if passed.endPosition <= position, passed.basePosition < passed.endPosition,
                   Int(passed.length) >= BatchHeader.size, Int(passed.length) <= dataEnd - offset {
                    offset += Int(passed.length)
                    continue
                }
            }
            let header = try BatchHeader.check(bytes, at: offset, end: dataEnd, previousCRC: nil, expectedBase: nil, guarded: true)
                .publishedBatch(file: path, offset: offset)
            try body(header, offset)
            offset += Int(header.length)
        }
    }
}
