/// The rule that decides the index entries (Format.md §7): an offset entry
/// whenever at least `interval` bytes lie between it and the previous one,
/// at a batch start or, inside an uncompressed batch, at a record start
/// (such a batch always gets an entry at its start too); a time entry at a
/// batch start whenever 8 × `interval` bytes passed.
struct IndexPolicy: Sendable {
    let interval: Int
    var bytesSinceOffsetEntry = Int.max
    var bytesSinceTimeEntry = Int.max
    var runningMaxTimestamp: Timestamp = .min

    init(interval: Int) { self.interval = interval }

    /// The policy's state at the end of `segment`, whose entries are loaded
    /// (to go on adding entries after it).
    init(resuming segment: Segment, interval: Int) {
        self.init(interval: interval)
        if segment.offsetIndexCount > 0 || segment.offsetIndex.writtenCount > 0 {
            let count = max(segment.offsetIndexCount, segment.offsetIndex.writtenCount)
            bytesSinceOffsetEntry = segment.dataEnd - segment.offsetIndex[count - 1].byteOffset
        }
        let timeCount = max(segment.timeIndexCount, segment.timeIndex.writtenCount)
        if timeCount > 0 {
            bytesSinceTimeEntry = segment.dataEnd - Int(segment.timeIndex[timeCount - 1].offset)
        }
        runningMaxTimestamp = segment.maxTimestamp
    }

    /// Records the batch at `offset` in the indexes as the rule says.
    /// `records` is its uncompressed records area (nil when it is stored
    /// compressed: compressed batches get batch entries only).
    mutating func add(
        batch header: BatchHeader, at offset: Int, records: UnsafeRawBufferPointer?, segmentBase: UInt64,
        offsetIndex: IndexBuffer<OffsetIndexEntry>, timeIndex: IndexBuffer<TimeIndexEntry>
    ) {
        let relative = UInt32(truncatingIfNeeded: header.basePosition &- segmentBase)
        let length = Int(header.length)
        if bytesSinceTimeEntry >= interval &* 8 {
            timeIndex.append(TimeIndexEntry(maxTimestampBefore: runningMaxTimestamp, relativePosition: relative, offset: UInt32(offset)))
            bytesSinceTimeEntry = 0
        }
        bytesSinceTimeEntry &+= length
        runningMaxTimestamp = max(runningMaxTimestamp, header.maxTimestamp)

        let entriesInside = records != nil && length > interval
        guard bytesSinceOffsetEntry >= interval || entriesInside else {
            bytesSinceOffsetEntry &+= length
            return
        }
        let batchOffset = UInt32(offset)
        offsetIndex.append(OffsetIndexEntry(relativePosition: relative, offset: batchOffset, batchOffset: batchOffset))
        guard entriesInside, let records else {
            bytesSinceOffsetEntry = length
            return
        }
        // Entries at record starts, every `interval` bytes into the batch.
        // (After the batch's type table, when it has one: Format.md §5.3.)
        var at = (try? TypeTable.read(records, of: header, guarded: false))?.length ?? records.count
        var since = BatchHeader.size + at
        var position = relative
        let end = relative &+ header.recordCount
        while position < end && at < records.count {
            if since >= interval && position != relative {
                let recordOffset = UInt32(offset + BatchHeader.size + at) | OffsetIndexEntry.inBatchFlag
                offsetIndex.append(OffsetIndexEntry(relativePosition: position, offset: recordOffset, batchOffset: batchOffset))
                since = 0
            }
            let start = at
            do { try Record.skip(records, at: &at) } catch { break }
            since += at - start
            position &+= 1
        }
        bytesSinceOffsetEntry = since
    }

    /// Most entries a segment of `capacity` bytes can need.
    static func capacity(segmentBytes: Int, interval: Int) -> Int { 2 * (segmentBytes / interval) + 2 }

    /// The most bytes an offset or time index file can hold: `capacity`
    /// entries of at most 16 bytes for the largest segment
    /// (`Limits.maxSegmentBytes`; 16 MiB at the default interval). The bound
    /// its reads allocate within (`DirectoryOperations.readWhole`). Not the
    /// segment file's current length: an index describes the segment as it
    /// was written, which is evidence when the file was cut since.
    static func maxIndexFileBytes(interval: Int) -> Int {
        IndexFileHeader.size + capacity(segmentBytes: Limits.maxSegmentBytes, interval: max(1, interval)) * 16 + 4
    }
}

extension BatchHeader {
    /// The records area of this (valid) frame at `offset` of `bytes` when
    /// it is stored as is, nil when it is stored compressed or sealed.
    func plainRecords(in bytes: UnsafeRawBufferPointer, at offset: Int) -> UnsafeRawBufferPointer? {
        guard isStoredAsIs else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[(offset + BatchHeader.size)..<(offset + Int(length))])
    }
}
