import CSystemCalls

extension BatchLog {
    /// `Log.read(from:maxCount:_:)`.
    @discardableResult
    func read(from position: UInt64, maxCount: Int = .max, _ body: (EventView) throws -> Void) throws -> UInt64 {
        var reader = LogReader(snapshot: snapshot(), tally: readTally)
        return try reader.read(from: position, maxCount: maxCount, body)
    }

    /// `Log.withEvent(at:_:)`.
    func withEvent<R>(at position: UInt64, _ body: (EventView) throws -> R) throws -> R {
        var reader = LogReader(snapshot: snapshot(), tally: readTally)
        return try reader.withEvent(at: position, body)
    }

    /// `Log.event(at:)`.
    func event(at position: UInt64) throws(EventLogError) -> Event {
        do {
            return try withEvent(at: position) { view throws(EventLogError) in try view.ownedEvent() }
        } catch {
            throw .wrapping(error)
        }
    }

    /// `Log.position(atOrAfter:)`.
    func position(atOrAfter timestamp: Timestamp) throws(EventLogError) -> UInt64 {
        var reader = LogReader(snapshot: snapshot())
        return try reader.position(atOrAfter: timestamp)
    }
}

/// One read over one snapshot, with the scratch space for decompression.
///
/// Made with a `ReadTally`, it counts the events it lends to a caller (and
/// their data bytes) in fields of its own, and adds them to the tally once,
/// when it ends: a read call costs the shared counters two relaxed adds,
/// however many events it lends.
struct LogReader: ~Copyable {
    let snapshot: LogSnapshot
    /// Decompressed records of the current batch (grown on the first LZ4 batch).
    private var scratch = ByteBuffer(capacity: 0)
    /// Where the lent events are counted (nil: a read of the library's own).
    /// Not retained: a point read would pay two reference-count updates
    /// for it. The log owns its tally, and every reader made with one is
    /// made and ended inside a call on that log (`BatchLog`, `Streams`,
    /// `Subscription`, `EventSequence` hold the log), so it outlives them.
    private unowned(unsafe) let tally: ReadTally?
    /// Events lent to a caller so far, and their data bytes.
    private var lentEvents = 0
    private var lentBytes = 0

    init(snapshot: LogSnapshot, tally: ReadTally? = nil) {
        self.snapshot = snapshot
        self.tally = tally
    }

    deinit {
        if lentEvents > 0, let tally { tally.add(events: lentEvents, bytes: lentBytes) }
    }

    /// Counts `view` as lent to a caller (`ReadTally`).
    @inline(__always)
    mutating func countLent(_ view: EventView) {
        lentEvents &+= 1
        lentBytes &+= view.data.count
    }


    /// The records area of a verified batch frame at `offset`: the mapped
    /// bytes, or a decompressed copy in `scratch`.
    mutating func records(
        of header: BatchHeader, at offset: Int, in segment: Segment
    ) throws(EventLogError) -> UnsafeRawBufferPointer {
        guard let stored = segment.mapping.bytes(at: offset + BatchHeader.size, count: header.storedLength) else {
            throw .corruption(file: segment.path, offset: Int64(offset), reason: "batch runs past the end of the file")
        }
        if header.codecValue == 0 { return stored }
        let length = Int(header.recordsLength)
        scratch.count = 0
        scratch.reserve(length)
        guard LZ4Codec.decompress(stored, into: scratch.base, capacity: length) == length else {
            throw .corruption(file: segment.path, offset: Int64(offset), reason: "LZ4 records area does not decompress to its stated length")
        }
        scratch.count = length
        return UnsafeRawBufferPointer(start: scratch.base, count: length)
    }

    mutating func read(from position: UInt64, maxCount: Int, _ body: (EventView) throws -> Void) throws -> UInt64 {
        let start = snapshot.startPosition
        let end = snapshot.endPosition
        // Below the start: retention removed those events; reading goes on
        // from the first one still in the log.
        let position = max(position, start)
        guard position < end, maxCount > 0, var segmentIndex = snapshot.segmentIndex(for: position) else { return max(position, min(position, end)) }
        var next = position
        var remaining = maxCount
        // What this call lends, in locals (added to the reader's count once).
        var dataBytes = 0
        defer {
            lentEvents &+= maxCount - remaining
            lentBytes &+= dataBytes
        }
        while segmentIndex < snapshot.count && remaining > 0 {
            let segment = snapshot[segmentIndex]
            guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd) else {
                throw EventLogError.corruption(file: segment.path, offset: 0, reason: "segment is shorter than its published data")
            }
            var offset = next > segment.basePosition ? segment.batchOffset(atOrBefore: next) : SegmentHeader.size
            while offset < segment.dataEnd && remaining > 0 {
                // A batch wholly before `next` is skipped on its header alone:
                // damage inside it must not make later batches unreadable.
                // (The header is read under the SIGBUS guard, as is the whole
                // frame by the guarded check below.)
                if offset + BatchHeader.size <= segment.dataEnd {
                    guard MappedBytes.touch(bytes, offset..<(offset + BatchHeader.size)) else {
                        throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
                    }
                    let skipped = BatchHeader.load(bytes.baseAddress! + offset)
                    if skipped.endPosition <= next, skipped.basePosition < skipped.endPosition,
                       Int(skipped.length) >= BatchHeader.size, Int(skipped.length) <= segment.dataEnd - offset {
                        offset += Int(skipped.length)
                        continue
                    }
                }
                let header = try BatchHeader.check(
                    bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil, guarded: true
                ).publishedBatch(file: segment.path, offset: offset)
                defer { offset += Int(header.length) }
                if header.endPosition <= next { continue }
                let area = try records(of: header, at: offset, in: segment)
                var at = 0
                var position = header.basePosition
                while position < header.endPosition && remaining > 0 {
                    if position < next {
                        do { try Record.skip(area, at: &at) } catch {
                            throw corruption(error, header: header, batchOffset: offset, segment: segment)
                        }
                    } else {
                        let view: EventView
                        do {
                            view = try Record.decode(area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: false)
                        } catch {
                            throw corruption(error, header: header, batchOffset: offset, segment: segment)
                        }
                        dataBytes &+= view.data.count
                        remaining -= 1
                        try body(view)
                        next = position + 1
                    }
                    position += 1
                }
            }
            // Stopped inside this segment by `maxCount`: `next` is where to go on.
            if remaining == 0 && next < segment.endPosition { break }
            segmentIndex += 1
            if segmentIndex < snapshot.count { next = max(next, snapshot[segmentIndex].basePosition) }
        }
        return next
    }

    /// Lends the event at `position` to `body`, after checking its own
    /// checksum. `counted`: the event reaches a caller (`ReadTally`); a
    /// stream read that finds its record here counts it itself.
    mutating func withEvent<R>(at position: UInt64, counted: Bool = true, _ body: (EventView) throws -> R) throws -> R {
        let start = snapshot.startPosition
        let end = snapshot.endPosition
        if position < start { throw EventLogError.positionRemoved(position: position, start: start) }
        guard position < end, let segmentIndex = snapshot.segmentIndex(for: position) else {
            throw EventLogError.positionOutOfRange(position: position, start: start, end: end)
        }
        let segment = snapshot[segmentIndex]
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd) else {
            throw EventLogError.corruption(file: segment.path, offset: 0, reason: "segment is shorter than its published data")
        }
        let entry = segment.indexEntry(atOrBefore: position)
        let searchFrom = entry.map { segment.offsetIndex[Int($0.batchEntry)].byteOffset } ?? SegmentHeader.size
        guard let (header, offset) = try batchHeader(holding: position, from: searchFrom, in: segment, bytes: bytes) else {
            throw EventLogError.positionRemoved(position: position, start: start)
        }
        if header.codecValue != 0 {
            // Compressed: the frame checksum is verified (under the SIGBUS
            // guard) before decompressing.
            switch BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil, guarded: true) {
            case .valid: break
            case .unreadable:
                throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
            default:
                throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: "batch checksum mismatch")
            }
        }
        let area = try records(of: header, at: offset, in: segment)
        var at = 0
        var p = header.basePosition
        // Start from an in-batch index entry when one points into this batch.
        if let entry, entry.isInBatch, header.codecValue == 0 {
            let entryPosition = segment.basePosition &+ UInt64(entry.relativePosition)
            let entryAt = entry.byteOffset - offset - BatchHeader.size
            if entryPosition > p, entryPosition <= position, entryAt > 0, entryAt < area.count {
                at = entryAt
                p = entryPosition
            }
        }
        // The records to skip are read one after another, each length
        // deciding the next address: fetch the span ahead of the walk.
        let distance = Int(position - p)
        var estimate = Record.maxHeadBytes
        if distance > 0 {
            estimate = min(area.count - at, (distance + 1) * max(1, area.count / Int(header.recordCount)) + 256)
            eventlog_prefetch(area.baseAddress! + at, estimate)
        }
        // The walk reads each record's length in the mapping: a page at a
        // time is first read under the SIGBUS guard (the target's checksum
        // then runs under it too). A decompressed area is ours: no guard.
        // (First the span the walk is expected to cover: no page beyond it.)
        let mapped = header.codecValue == 0
        var guardedTo = mapped ? try guardArea(area, from: at, count: estimate, batchOffset: offset, segment: segment) : area.count
        do {
            while p < position {
                if at + Record.maxHeadBytes > guardedTo {
                    guardedTo = try guardArea(area, from: at, count: 4096, batchOffset: offset, segment: segment)
                }
                try Record.skip(area, at: &at)
                p += 1
            }
            if at + Record.maxHeadBytes > guardedTo {
                _ = try guardArea(area, from: at, count: Record.maxHeadBytes, batchOffset: offset, segment: segment)
            }
            let view = try Record.decode(area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: true)
            if counted { countLent(view) }
            return try body(view)
        } catch let defect as RecordDefect {
            throw corruption(defect, header: header, batchOffset: offset, segment: segment)
        }
    }

    /// Reads the pages of `count` bytes of a mapped records area from `at`
    /// under the SIGBUS guard; returns where the guarded span ends.
    private func guardArea(
        _ area: UnsafeRawBufferPointer, from at: Int, count: Int, batchOffset: Int, segment: Segment
    ) throws(EventLogError) -> Int {
        let end = min(area.count, at + count)
        guard at < end else { return end }
        guard MappedBytes.touch(area, at..<end) else {
            throw .corruption(file: segment.path, offset: Int64(batchOffset + BatchHeader.size + at), reason: MappedBytes.unreadableReason)
        }
        return end
    }

    /// The header and offset of the batch holding `position`, walking batch
    /// headers from `offset`; nil when `position` lies in a gap of a
    /// rewritten segment (scavenging removed it). Headers are not verified
    /// here: the record's own checksum, seeded with its position and its
    /// batch's first timestamp, catches a wrong turn.
    func batchHeader(
        holding position: UInt64, from offset: Int, in segment: Segment, bytes: UnsafeRawBufferPointer
    ) throws(EventLogError) -> (BatchHeader, Int)? {
        var offset = offset
        while true {
            guard offset + BatchHeader.size <= segment.dataEnd, let base = bytes.baseAddress else {
                if segment.declaredEnd != nil { return nil }
                throw .corruption(file: segment.path, offset: Int64(offset), reason: "no batch holds position \(position)")
            }
            // Under the SIGBUS guard: point and stream reads reach the
            // mapping here first.
            guard MappedBytes.touch(bytes, offset..<(offset + BatchHeader.size)) else {
                throw .corruption(file: segment.path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
            }
            let header = BatchHeader.load(base + offset)
            if segment.declaredEnd != nil && header.basePosition > position {
                // Past `position` already: a gap, if this header is sound (checked
                // whole, so that damage never reads as a removed position).
                guard case .valid = BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil) else {
                    throw .corruption(file: segment.path, offset: Int64(offset), reason: "batch header is damaged")
                }
                return nil
            }
            guard Int(header.length) >= BatchHeader.size, Int(header.length) <= segment.dataEnd - offset,
                  header.basePosition <= position
            else { throw .corruption(file: segment.path, offset: Int64(offset), reason: "batch header is damaged") }
            if header.endPosition > position { return (header, offset) }
            offset += Int(header.length)
        }
    }

    mutating func position(atOrAfter timestamp: Timestamp) throws(EventLogError) -> UInt64 {
        var i = 0
        while i < snapshot.count && snapshot[i].maxTimestamp < timestamp { i += 1 }
        guard i < snapshot.count else { return snapshot.endPosition }
        let segment = snapshot[i]
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd) else {
            throw .corruption(file: segment.path, offset: 0, reason: "segment is shorter than its published data")
        }
        var offset = segment.batchOffset(forTimestamp: timestamp)
        while offset < segment.dataEnd {
            guard case .valid(let header) = BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil) else {
                throw .corruption(file: segment.path, offset: Int64(offset), reason: "damaged batch")
            }
            if header.maxTimestamp >= timestamp {
                let area = try records(of: header, at: offset, in: segment)
                var at = 0
                var p = header.basePosition
                while p < header.endPosition {
                    do {
                        let view = try Record.decode(area, at: &at, position: p, firstTimestamp: header.firstTimestamp, verify: false)
                        if view.timestamp >= timestamp { return p }
                    } catch {
                        throw corruption(error, header: header, batchOffset: offset, segment: segment)
                    }
                    p += 1
                }
            }
            offset += Int(header.length)
        }
        return segment.endPosition
    }

    private func corruption(_ defect: RecordDefect, header: BatchHeader, batchOffset: Int, segment: Segment) -> EventLogError {
        let offset = header.codecValue == 0 ? batchOffset + BatchHeader.size + defect.offset : batchOffset
        return .corruption(file: segment.path, offset: Int64(offset), reason: defect.reason)
    }
}
