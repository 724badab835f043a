/// `Log.readSegmentFile`: the batches and events of one segment file read on
/// its own, outside any log (a segment `Log.repair` moved aside, or a copy).
/// Read-only; it opens the file and maps it, nothing else.
enum SegmentFileReader {
    /// Checks the file's header (magic, version, checksum; the log id is not
    /// checked, and the base position against the file's name only when the
    /// name is a segment's), walks its batches as recovery does
    /// (`SegmentScanner`: every frame's checksum, the chain and positions),
    /// then lends the batches holding a position at or after `position`, and
    /// with `lendsEvents` their events, as `Log.readBatches` lends them.
    ///
    /// - Throws: `corruption` (or `foreignFile`, `unsupportedFormatVersion`)
    ///   for a damaged header; after lending everything before it,
    ///   `corruption` naming the file and the offset where the walk stopped
    ///   at an invalid batch; `io` for a failed read; whatever the bodies throw.
    static func read(
        at path: String, from position: UInt64, lendsEvents: Bool, _ body: (BatchInfo) throws -> Void,
        events: (EventView) throws -> Void
    ) throws {
        let file = try FileHandle.open(path, readOnly: true, faults: nil)
        let length = Int(try file.length())
        let mapping = try MappedRegion.map(file, length: length)
        let bytes = mapping.bytes(at: 0, count: length) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let header = try SegmentHeader.decode(bytes, file: path, logID: nil, expectedBase: FileNames.segmentBase(name))
        // Nothing past the checked data is read where the file has a hole (Format.md §10, "Holes").
        let outcome = SegmentScanner.scan(
            bytes, from: SegmentHeader.size, end: length, previousCRC: header.checksum, expectedBase: header.basePosition,
            declaredEnd: header.declaredEnd, readable: ReadableRegions(file: file, length: length))
        var segment = Segment(
            id: .next(), basePosition: header.basePosition, path: path, mapping: mapping, headerCRC: header.checksum,
            offsetIndex: IndexBuffer(capacity: 1), timeIndex: IndexBuffer(capacity: 1), endPosition: header.basePosition,
            dataEnd: SegmentHeader.size, offsetIndexCount: 0, timeIndexCount: 0, maxTimestamp: .min, firstTimestamp: nil,
            lastBatchOffset: 0, lastBatchCRC: header.checksum, isSealed: true, declaredEnd: header.declaredEnd)
        segment.extend(with: outcome)
        if let declaredEnd = header.declaredEnd, outcome.stop == .endOfData { segment.endPosition = declaredEnd }
        var reader = LogReader(snapshot: LogSnapshot(sealed: [], active: segment))
        try reader.readBatches(from: position, lendsEvents: lendsEvents, body, events: events)
        switch outcome.stop {
        case .endOfData:
            return
        case .invalid(let offset, let reason):
            throw EventLogError.corruption(file: path, offset: Int64(offset), reason: reason)
        case .unreadable(let offset):
            throw EventLogError.corruption(file: path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
        }
    }
}
