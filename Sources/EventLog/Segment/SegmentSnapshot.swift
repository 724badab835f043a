/// What a reader needs of one segment: its mapping, its published extent and
/// its indexes. A value: the writer publishes a new one (under the snapshot
/// lock) after each batch; a reader's copy never changes under it.
struct SegmentSnapshot: Sendable {
    let basePosition: UInt64
    let path: String
    let mapping: MappedRegion
    /// The segment header's checksum: the chain seed of its first batch.
    let headerCRC: UInt32
    let offsetIndex: IndexBuffer<OffsetIndexEntry>
    let timeIndex: IndexBuffer<TimeIndexEntry>

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
    /// The stream index of the active segment (and of a sealed one until its
    /// `.streamindex` file is written): entries below `streamEntryCount`.
    var streamEntries: StreamEntries? = nil
    var streamEntryCount: Int = 0
    /// The stream index of a sealed segment, from its file.
    var streamIndex: StreamIndexView? = nil

    var isEmpty: Bool { endPosition == basePosition }

    /// The byte offset of a batch at or before the one holding `position`:
    /// where a scan for `position` starts.
    @inline(__always) func batchOffset(atOrBefore position: UInt64) -> Int {
        guard let entry = indexEntry(atOrBefore: position) else { return SegmentHeader.size }
        return offsetIndex[Int(entry.batchEntry)].byteOffset
    }

    /// The last offset-index entry at or before `position`.
    @inline(__always) func indexEntry(atOrBefore position: UInt64) -> OffsetIndexEntry? {
        let relative = position &- basePosition
        guard let i = offsetIndex.lastIndex(count: offsetIndexCount, where: { UInt64($0.relativePosition) <= relative })
        else { return nil }
        return offsetIndex[i]
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

/// The state readers see: the sealed segments, oldest first, then the active one.
struct LogSnapshot: Sendable {
    var sealed: [SegmentSnapshot]
    /// The segment being appended to (nil only for an empty read-only log).
    var active: SegmentSnapshot?
    /// The writer's sequence (bytes written) this snapshot shows: a snapshot
    /// replaces the published one only when it shows more (under `.always`
    /// sync leaders publish out of the writer lock, in any order).
    var sequence: UInt64 = 0

    var count: Int { sealed.count + (active == nil ? 0 : 1) }

    @inline(__always) subscript(i: Int) -> SegmentSnapshot {
        i < sealed.count ? sealed[i] : active!
    }

    var first: SegmentSnapshot? { sealed.first ?? active }
    var last: SegmentSnapshot? { active ?? sealed.last }

    var startPosition: UInt64 { first?.basePosition ?? 0 }
    var endPosition: UInt64 { last?.endPosition ?? 0 }

    /// The index of the segment holding `position` (the last whose base ≤ position).
    @inline(__always) func segmentIndex(for position: UInt64) -> Int? {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if self[mid].basePosition <= position { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }
}

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
        let batchEntry = UInt32(offsetIndex.writtenCount)
        offsetIndex.append(OffsetIndexEntry(relativePosition: relative, offset: UInt32(offset), batchEntry: batchEntry))
        guard entriesInside, let records else {
            bytesSinceOffsetEntry = length
            return
        }
        // Entries at record starts, every `interval` bytes into the batch.
        var since = BatchHeader.size
        var at = 0
        var position = relative
        let end = relative &+ header.recordCount
        while position < end && at < records.count {
            if since >= interval && position != relative {
                let recordOffset = UInt32(offset + BatchHeader.size + at) | OffsetIndexEntry.inBatchFlag
                offsetIndex.append(OffsetIndexEntry(relativePosition: position, offset: recordOffset, batchEntry: batchEntry))
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
}

extension BatchHeader {
    /// The uncompressed records area of this (valid) frame at `offset` of
    /// `bytes`, or nil when it is stored compressed.
    func plainRecords(in bytes: UnsafeRawBufferPointer, at offset: Int) -> UnsafeRawBufferPointer? {
        guard codecValue == 0 else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[(offset + BatchHeader.size)..<(offset + Int(length))])
    }
}
