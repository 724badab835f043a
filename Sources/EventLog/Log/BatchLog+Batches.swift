extension BatchLog {
    /// `Log.readBatches(from:_:)` and, with `lendsEvents`, `Log.readBatches(from:_:events:)`.
    func readBatches(
        from position: UInt64, lendsEvents: Bool, _ body: (BatchInfo) throws -> Void, events: (EventView) throws -> Void
    ) throws {
        var reader = LogReader(snapshot: snapshot(), tally: readTally, cache: batchCache)
        try reader.readBatches(from: position, lendsEvents: lendsEvents, body, events: events)
    }
}

extension LogReader {
    /// Walks the batches of the snapshot that hold a position at or after
    /// `position` (from the log start when below it), segment by segment
    /// (`Segment.forEachBatch`), lending each one's `BatchInfo` to `body`;
    /// with `lendsEvents`, then its records at or after `position` to `events`.
    mutating func readBatches(
        from position: UInt64, lendsEvents: Bool, _ body: (BatchInfo) throws -> Void, events: (EventView) throws -> Void
    ) throws {
        let position = max(position, snapshot.startPosition)
        guard position < snapshot.endPosition, var segmentIndex = snapshot.segmentIndex(for: position) else { return }
        while segmentIndex < snapshot.count {
            let segment = snapshot[segmentIndex]
            try segment.forEachBatch(from: position) { header, offset in
                try body(BatchInfo(header, at: offset, in: segment))
                if lendsEvents { try lendRecords(of: header, at: offset, in: segment, from: position, to: events) }
            }
            segmentIndex += 1
        }
    }

    /// Lends the records of a verified batch at or after `position`.
    private mutating func lendRecords(
        of header: BatchHeader, at offset: Int, in segment: Segment, from position: UInt64, to body: (EventView) throws -> Void
    ) throws {
        let area = try records(of: header, at: offset, in: segment)
        let types = try segment.typeTable(of: header, in: area, batchOffset: offset, guarded: false)
        var at = types.length
        var p = header.basePosition
        while p < header.endPosition {
            do {
                if p < position {
                    try Record.skip(area, at: &at)
                } else {
                    let view = try Record.decode(
                        area, at: &at, position: p, firstTimestamp: header.firstTimestamp, verify: false, types: types)
                    countLent(view)
                    try body(view)
                }
            } catch let defect as RecordDefect {
                let at = header.isStoredAsIs ? offset + BatchHeader.size + defect.offset : offset
                throw EventLogError.corruption(file: segment.path, offset: Int64(at), reason: defect.reason)
            }
            p += 1
        }
    }
}
