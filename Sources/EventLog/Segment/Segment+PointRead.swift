import CSystemCalls

/// Reading one record of a segment by its position: finding the batch that
/// holds it (`pointReadBatch(holding:)`), and the record in a records area
/// that lies in the mapping or was decompressed (`record(at:of:in:)`).
/// The point read of a plain batch needs nothing else (`BatchLog.withEvent`
/// reads it with no `LogReader`); `LogReader` adds what compressed and
/// sealed batches need. Nothing here changes the segment.
extension Segment {
    /// The batch a point read found: where it is, and the offset index
    /// entry the search started from.
    struct PointReadBatch {
        /// The segment's published data, mapped.
        let bytes: UnsafeRawBufferPointer
        /// The entry at or before the position (nil: none, the search began at the first batch).
        let entry: OffsetIndexEntry?
        let header: BatchHeader
        let offset: Int
    }

    /// The batch holding `position`, which lies in this segment's range: its
    /// header, read under the SIGBUS guard; nil when `position` lies in a gap
    /// of a rewritten segment (scavenging removed it).
    func pointReadBatch(holding position: UInt64) throws(EventLogError) -> PointReadBatch? {
        let bytes = try publishedBytes()
        let entry = indexEntry(atOrBefore: position)
        let searchFrom = entry?.batchByteOffset ?? SegmentHeader.size
        // An in-batch entry names the record the walk will start from, often
        // on another page than its batch's header: ask for both at once, so
        // their two misses (page table and memory) overlap instead of
        // following each other. A prefetch never faults.
        if let entry, entry.isInBatch, entry.byteOffset < dataEnd, let base = bytes.baseAddress {
            eventlog_prefetch(base + entry.byteOffset, 128)
            // The batch's header and type table (Format.md §5.3), read next.
            if searchFrom < dataEnd { eventlog_prefetch(base + searchFrom, BatchHeader.size + TypeTable.typicalBytes) }
        }
        guard let (header, offset) = try batchHeader(holding: position, from: searchFrom, bytes: bytes) else { return nil }
        return PointReadBatch(bytes: bytes, entry: entry, header: header, offset: offset)
    }

    /// The record at `position` in `area`, the records of `batch`: its
    /// stored bytes in the mapping for a batch stored as is (read a page at a
    /// time under the SIGBUS guard, the record's checksum then runs under it
    /// too), or a decompressed or opened copy (ours: no guard). The record's
    /// own checksum is verified, except in an opened sealed area, whose frame
    /// checksum (and each group's tag) vouched for it instead.
    func record(at position: UInt64, of batch: PointReadBatch, in area: UnsafeRawBufferPointer) throws -> EventView {
        let header = batch.header
        let offset = batch.offset
        let mapped = header.isStoredAsIs
        // A plain batch's type table, read under the guard (the record's
        // checksum covers the type it names); an opened sealed area has none.
        let types = try typeTable(of: header, in: area, batchOffset: offset, guarded: mapped)
        var at = types.length
        var p = header.basePosition
        // Start from an in-batch index entry when one points into this batch.
        if let entry = batch.entry, entry.isInBatch, mapped {
            let entryPosition = basePosition &+ UInt64(entry.relativePosition)
            let entryAt = entry.byteOffset - offset - BatchHeader.size
            if entryPosition > p, entryPosition <= position, entryAt >= at, entryAt < area.count {
                at = entryAt
                p = entryPosition
            }
        }
        // The records to skip are read one after another, each length
        // deciding the next address: fetch the span ahead of the walk.
        let distance = Int(position - p)
        var estimate = Record.maxHeadBytes
        if distance > 0, let base = area.baseAddress {
            estimate = min(area.count - at, (distance + 1) * max(1, area.count / Int(header.recordCount)) + 256)
            eventlog_prefetch(base + at, estimate)
        }
        // The walk reads each record's length in the mapping: a page at a
        // time is first read under the guard, first the span the walk is
        // expected to cover (no page beyond it).
        var guardedTo = mapped ? try guardArea(area, from: at, count: estimate, batchOffset: offset) : area.count
        do {
            while p < position {
                if at + Record.maxHeadBytes > guardedTo {
                    guardedTo = try guardArea(area, from: at, count: 4096, batchOffset: offset)
                }
                try Record.skip(area, at: &at)
                p += 1
            }
            if at + Record.maxHeadBytes > guardedTo {
                _ = try guardArea(area, from: at, count: Record.maxHeadBytes, batchOffset: offset)
            }
            return try Record.decode(
                area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: !header.isSealed, types: types)
        } catch let defect as RecordDefect {
            throw corruption(defect, header: header, batchOffset: offset)
        }
    }

    /// The stored bytes of the batch at `offset` (its records area as
    /// stored: the records themselves for a batch stored as is), mapped.
    func storedArea(of header: BatchHeader, at offset: Int) throws(EventLogError) -> UnsafeRawBufferPointer {
        guard let stored = mapping.bytes(at: offset + BatchHeader.size, count: header.storedLength) else {
            throw .corruption(file: path, offset: Int64(offset), reason: "batch runs past the end of the file")
        }
        return stored
    }

    /// The header and offset of the batch holding `position`, walking batch
    /// headers from `offset`; nil when `position` lies in a gap of a
    /// rewritten segment (scavenging removed it). Headers are not verified
    /// here: the record's own checksum, seeded with its position and its
    /// batch's first timestamp, catches a wrong turn.
    func batchHeader(
        holding position: UInt64, from offset: Int, bytes: UnsafeRawBufferPointer
    ) throws(EventLogError) -> (BatchHeader, Int)? {
        var offset = offset
        while true {
            guard offset + BatchHeader.size <= dataEnd, let base = bytes.baseAddress else {
                if declaredEnd != nil { return nil }
                throw .corruption(file: path, offset: Int64(offset), reason: "no batch holds position \(position)")
            }
            // Under the SIGBUS guard: point and stream reads reach the
            // mapping here first.
            guard MappedBytes.touch(bytes, offset..<(offset + BatchHeader.size)) else {
                throw .corruption(file: path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
            }
            let header = BatchHeader.load(base + offset)
            if declaredEnd != nil && header.basePosition > position {
                // Past `position` already: a gap, if this header is sound (checked
                // whole, so that damage never reads as a removed position).
                guard case .valid = BatchHeader.check(bytes, at: offset, end: dataEnd, previousCRC: nil, expectedBase: nil) else {
                    throw .corruption(file: path, offset: Int64(offset), reason: "batch header is damaged")
                }
                return nil
            }
            guard Int(header.length) >= BatchHeader.size, Int(header.length) <= dataEnd - offset,
                  header.basePosition <= position
            else { throw .corruption(file: path, offset: Int64(offset), reason: "batch header is damaged") }
            if header.endPosition > position { return (header, offset) }
            offset += Int(header.length)
        }
    }

    /// The type table of the batch at `batchOffset` (Format.md §5.3; `.none`
    /// when it has none), from its records `area`: read under the SIGBUS
    /// guard when `guarded` (a point or stream read, in the mapping; a scan
    /// verified the whole frame under it). A defect is corruption at the
    /// area's start.
    @inline(__always)
    func typeTable(
        of header: BatchHeader, in area: UnsafeRawBufferPointer, batchOffset: Int, guarded: Bool
    ) throws(EventLogError) -> TypeTable {
        do { return try TypeTable.read(area, of: header, guarded: guarded) } catch {
            throw corruption(error, header: header, batchOffset: batchOffset)
        }
    }

    /// A record defect found in the batch at `batchOffset`, as the error
    /// that names this segment's file and the defect's offset in it (the
    /// batch's, for a decompressed or opened area).
    func corruption(_ defect: RecordDefect, header: BatchHeader, batchOffset: Int) -> EventLogError {
        let offset = header.isStoredAsIs ? batchOffset + BatchHeader.size + defect.offset : batchOffset
        return .corruption(file: path, offset: Int64(offset), reason: defect.reason)
    }

    /// Reads the pages of `count` bytes of a mapped records area from `at`
    /// under the SIGBUS guard; returns where the guarded span ends.
    private func guardArea(
        _ area: UnsafeRawBufferPointer, from at: Int, count: Int, batchOffset: Int
    ) throws(EventLogError) -> Int {
        let end = min(area.count, at + count)
        guard at < end else { return end }
        guard MappedBytes.touch(area, at..<end) else {
            throw .corruption(file: path, offset: Int64(batchOffset + BatchHeader.size + at), reason: MappedBytes.unreadableReason)
        }
        return end
    }
}
