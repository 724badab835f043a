import struct Foundation.Data
import CSystemCalls

extension BatchLog {
    /// `Log.read(from:maxCount:_:)`.
    @discardableResult
    func read(from position: UInt64, maxCount: Int = .max, _ body: (EventView) throws -> Void) throws -> UInt64 {
        var reader = LogReader(
            snapshot: snapshot(), tally: readTally, cache: batchCache, readsAheadFor: options.scanReadAhead ? maxCount : nil)
        return try reader.read(from: position, maxCount: maxCount, body)  // the reader's end joins its read-ahead thread
    }

    /// `Log.withEvent(at:_:)`.
    func withEvent<R>(at position: UInt64, _ body: (EventView) throws -> R) throws -> R {
        // A record of a plain batch is read from its segment alone: no
        // snapshot copied, no reader (whose scratch space serves compressed
        // and sealed batches).
        let segment = try segments.segment(holding: position)
        guard let batch = try segment.pointReadBatch(holding: position) else {
            throw EventLogError.positionRemoved(position: position, start: snapshot().startPosition)
        }
        if batch.header.isStoredAsIs {
            let view = try segment.record(at: position, of: batch, in: try segment.storedArea(of: batch.header, at: batch.offset))
            readTally.add(events: 1, bytes: view.data.count)
            return try body(view)
        }
        var reader = LogReader(snapshot: snapshot(), tally: readTally, cache: batchCache)
        return try reader.withEvent(at: position, in: segment, batch: batch, counted: true, body)
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
/// Made with a `BatchCache`, its point reads (and so stream reads) of LZ4
/// batches go through the cache: it holds (pins) the entry of the batch it
/// read last, so the view it lent stays valid until its next read or its
/// end, as one lent from its own buffer does.
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
    /// The log's cache of decompressed batches (nil: none). Not retained,
    /// as `tally`: the log owns it and outlives every reader made with it.
    private unowned(unsafe) let cache: BatchCache?
    /// The cache entry this reader read last, pinned until its next one.
    private var lease: BatchCache.Lease?
    /// The LZ4 unit a point read decompressed last (Format.md §5.2), and
    /// which one it is: the next read of a record in the same unit (a
    /// stream's events appended together) finds it here.
    private var unit = ByteBuffer(capacity: 0)
    private var unitKey: PartKey?
    /// How much of that unit `unit` holds: a prefix (a read stopped once it
    /// had its record), or all of it.
    private var unitDecoded = 0
    /// Where that unit is: in `unit`, or (codec 3) in `stage`, after a copy
    /// of its segment's dictionary (Format.md §5.4).
    private var unitBytes: UnsafeMutableRawPointer?
    /// The copy of the last segment dictionary read against, with room
    /// after it (`LZ4DictionaryStage`).
    private var stage = LZ4DictionaryStage()
    /// The staged copy of a segment's dictionary that segment lent this
    /// reader (`SegmentDictionary.lendCopy`) for its point reads of codec 3
    /// units: given back when the reader moves to another segment's units,
    /// or ends.
    private var lent: (lender: SegmentDictionary, copy: StagedDictionaryCopy)?

    /// The seal group a point read opened last (`sealedRecord`), which one,
    /// and its plaintext (nil: its key was forgotten): the next read of a
    /// record of the same group opens nothing.
    private var sealGroupKey: PartKey?
    private var sealGroupPlaintext: Data?
    /// Each sealed record of the batch a point read walked: its seal group
    /// field's offset and its payload's end (two numbers a record; reused).
    private var sealedFields: [Int] = []
    /// The record a sealed point read returns, copied and opened.
    private var sealedRecordCopy = ByteBuffer(capacity: 0)

    /// Which part of which batch a memo holds: the batch as the cache
    /// names it (`BatchCache.Key`: the segment as mapped, the frame's offset
    /// and checksum, the forgettings so far), and the unit's stored offset
    /// (`unit`) or the seal group's index (`sealGroupPlaintext`).
    private struct PartKey: Equatable {
        let batch: BatchCache.Key
        let part: Int
    }

    /// How many events this reader's scan may lend, all its
    /// `read(from:maxCount:_:)` calls together, when it may start a thread
    /// that reads ahead of them (`ScanReadAhead`, `LogOptions.scanReadAhead`);
    /// nil: it reads alone.
    private let scanLength: Int?
    /// That thread, once started (by the first call), until this reader ends,
    /// and the index in `snapshot` of the first segment it reads.
    private var readAhead: ScanReadAhead?
    private var readAheadFirstSegment = 0
    /// Calls to go before the thread is considered (once).
    private var callsBeforeReadAhead: Int

    /// `afterCalls`: the thread is considered at the call after that many
    /// (a read in steps that may end at its first step need not pay for a
    /// thread).
    init(
        snapshot: LogSnapshot, tally: ReadTally? = nil, cache: BatchCache? = nil, readsAheadFor scanLength: Int? = nil,
        afterCalls: Int = 0
    ) {
        self.snapshot = snapshot
        self.tally = tally
        self.cache = cache?.isEnabled == true ? cache : nil
        self.scanLength = scanLength
        self.callsBeforeReadAhead = afterCalls
    }

    deinit {
        if let lent { lent.lender.takeBack(lent.copy) }
        readAhead?.finish()
        if lentEvents > 0, let tally { tally.add(events: lentEvents, bytes: lentBytes) }
        if let lease, let cache { cache.release(lease) }
    }

    /// Counts `view` as lent to a caller (`ReadTally`).
    @inline(__always)
    mutating func countLent(_ view: EventView) {
        lentEvents &+= 1
        lentBytes &+= view.data.count
    }


    /// The records area of a verified batch frame at `offset`: the mapped
    /// bytes, or a copy in `scratch`, decompressed and, for a sealed batch,
    /// opened (`SealedBatch.open`) unless `opening` is false (a reader of
    /// the records' readable fields only: names, versions, timestamps).
    mutating func records(
        of header: BatchHeader, at offset: Int, in segment: Segment, opening: Bool = true
    ) throws(EventLogError) -> UnsafeRawBufferPointer {
        let stored = try segment.storedArea(of: header, at: offset)
        if header.isStoredAsIs || (header.codecValue == 0 && !opening) { return stored }
        let length = Int(header.recordsLength)
        scratch.count = 0
        scratch.reserve(length)
        if header.usesSegmentDictionary { unitKey = nil }  // the stage is reused: a staged unit is gone
        try Self.unpack(stored, into: scratch.base, length: length, header: header, at: offset, in: segment, stage: &stage)
        scratch.count = length
        if header.isSealed && opening {
            try open(UnsafeMutableRawBufferPointer(start: scratch.base, count: length), header: header, at: offset, in: segment)
        }
        return UnsafeRawBufferPointer(start: scratch.base, count: length)
    }

    /// Copies the stored records area into `destination`, decompressing it when compressed.
    private static func unpack(
        _ stored: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer, length: Int, header: BatchHeader, at offset: Int,
        in segment: Segment, stage: inout LZ4DictionaryStage
    ) throws(EventLogError) {
        if header.codecValue == 0 {
            guard stored.count == length, let source = stored.baseAddress else {
                throw .corruption(file: segment.path, offset: Int64(offset), reason: "records length differs from the frame")
            }
            destination.copyMemory(from: source, byteCount: length)
            return
        }
        let dictionary = header.usesSegmentDictionary ? try segment.lz4Dictionary(forBatchAt: offset) : nil
        do { try LZ4Units.decompress(stored, of: header, into: destination, dictionary: dictionary, stage: &stage) } catch {
            throw .corruption(file: segment.path, offset: Int64(offset), reason: error.reason)
        }
    }

    /// Opens a sealed batch's records area copy with the log's keys.
    private func open(
        _ area: UnsafeMutableRawBufferPointer, header: BatchHeader, at offset: Int, in segment: Segment
    ) throws(EventLogError) {
        try SealedBatch.open(area, header: header, keys: sealKeys(forBatchAt: offset, in: segment), file: segment.path, batchOffset: offset)
    }

    /// The log's keys, to open the sealed batch at `offset`; a log opened
    /// without them cannot read it.
    private func sealKeys(forBatchAt offset: Int, in segment: Segment) throws(EventLogError) -> any SealKeys {
        guard let keys = snapshot.keys else {
            throw .encryptionMismatch(
                path: segment.path,
                reason: "the batch at byte \(offset) is sealed (encrypted): open the log with its master key (if its key store, eventlog.keys, was lost, its sealed events cannot be read)")
        }
        return keys
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
        if let scanLength, callsBeforeReadAhead >= 0 {
            // Once: the thread then serves this call and those after it.
            if callsBeforeReadAhead == 0 {
                readAhead = startReadAhead(from: segmentIndex, at: next, maxCount: scanLength)
                readAheadFirstSegment = segmentIndex
            }
            callsBeforeReadAhead -= 1
        }
        while segmentIndex < snapshot.count && remaining > 0 {
            let segment = snapshot[segmentIndex]
            let bytes = try segment.publishedBytes()
            var offset = segment.walkStart(for: next)
            while offset < segment.dataEnd && remaining > 0 {
                if let readAhead, segmentIndex >= readAheadFirstSegment {
                    readAhead.scanReached(region: segmentIndex - readAheadFirstSegment, offset: offset)
                }
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
                let types = try segment.typeTable(of: header, in: area, batchOffset: offset, guarded: false)
                var at = types.length
                var position = header.basePosition
                while position < header.endPosition && remaining > 0 {
                    if position < next {
                        do { try Record.skip(area, at: &at) } catch {
                            throw segment.corruption(error, header: header, batchOffset: offset)
                        }
                    } else {
                        let view: EventView
                        do {
                            view = try Record.decode(
                                area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: false, types: types)
                        } catch {
                            throw segment.corruption(error, header: header, batchOffset: offset)
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

    /// A thread reading ahead of a scan from `position` in segment
    /// `segmentIndex` to the snapshot's end, if the scan is long enough for
    /// one (`ScanReadAhead.start`).
    private func startReadAhead(from segmentIndex: Int, at position: UInt64, maxCount: Int) -> ScanReadAhead? {
        guard maxCount >= ScanReadAhead.minimumEvents else { return nil }
        var regions: [ScanReadAhead.Region] = []
        for index in segmentIndex..<snapshot.count {
            let segment = snapshot[index]
            let start = segment.walkStart(for: position)  // where the scan starts in it (a later one: its first batch)
            regions.append(.init(mapping: segment.mapping, start: start, end: max(start, min(segment.dataEnd, segment.mapping.length))))
        }
        return ScanReadAhead.start(regions: regions, maxCount: maxCount)
    }

    /// Lends the event at `position` to `body`, after checking its own
    /// checksum. `counted`: the event reaches a caller (`ReadTally`); a
    /// stream read that finds its record here counts it itself.
    mutating func withEvent<R>(at position: UInt64, counted: Bool = true, _ body: (EventView) throws -> R) throws -> R {
        let segment = try snapshot.segment(holding: position).get()
        guard let batch = try segment.pointReadBatch(holding: position) else {
            throw EventLogError.positionRemoved(position: position, start: snapshot.startPosition)
        }
        return try withEvent(at: position, in: segment, batch: batch, counted: counted, body)
    }

    /// `withEvent(at:counted:_:)` once the batch holding `position` was found in `segment`.
    mutating func withEvent<R>(
        at position: UInt64, in segment: Segment, batch: Segment.PointReadBatch, counted: Bool, _ body: (EventView) throws -> R
    ) throws -> R {
        let header = batch.header
        let offset = batch.offset
        if header.holdsLZ4Units || header.holdsSealGroups {
            let view = header.holdsLZ4Units
                ? try unitRecord(at: position, header: header, batchOffset: offset, segment: segment, bytes: batch.bytes)
                : try sealedRecord(at: position, header: header, batchOffset: offset, segment: segment, bytes: batch.bytes)
            if counted { countLent(view) }
            return try body(view)
        }
        if !header.isStoredAsIs {
            // Compressed or sealed: through the cache when it holds, or takes, the
            // batch: its record offsets lead straight to the record.
            if let (area, lease) = try cachedRecords(of: header, at: offset, in: segment, bytes: batch.bytes) {
                let view = try cachedRecord(at: position, in: area, lease: lease, header: header, batchOffset: offset, segment: segment)
                if counted { countLent(view) }
                return try body(view)
            }
            // The frame checksum is verified (under the SIGBUS guard)
            // before decompressing.
            try verifyFrame(at: offset, in: segment, bytes: batch.bytes)
        }
        let view = try segment.record(at: position, of: batch, in: try records(of: header, at: offset, in: segment))
        if counted { countLent(view) }
        return try body(view)
    }

    /// The record at `position` in the compressed or sealed batch at
    /// `batchOffset` (as a stream index entry names it): from its LZ4 unit
    /// (`unitRecord`) or through the cache; nil when neither serves it (no
    /// cache, no room, another reader filling it, or a header there that
    /// does not hold `position`: the point-read path then finds the batch,
    /// or says what is wrong).
    mutating func compressedEvent(at position: UInt64, batchOffset: Int, in segment: Segment) throws(EventLogError) -> EventView? {
        guard batchOffset >= SegmentHeader.size, batchOffset + BatchHeader.size <= segment.dataEnd,
              let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd), let base = bytes.baseAddress
        else { return nil }
        guard MappedBytes.touch(bytes, batchOffset..<(batchOffset + BatchHeader.size)) else {
            throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: MappedBytes.unreadableReason)
        }
        let header = BatchHeader.load(base + batchOffset)
        guard !header.isStoredAsIs, header.basePosition <= position, position < header.endPosition,
              Int(header.length) >= BatchHeader.size, Int(header.length) <= segment.dataEnd - batchOffset
        else { return nil }
        if header.holdsLZ4Units {
            return try unitRecord(at: position, header: header, batchOffset: batchOffset, segment: segment, bytes: bytes)
        }
        if header.holdsSealGroups {
            return try sealedRecord(at: position, header: header, batchOffset: batchOffset, segment: segment, bytes: bytes)
        }
        guard cache != nil, let (area, lease) = try cachedRecords(of: header, at: batchOffset, in: segment, bytes: bytes)
        else { return nil }
        return try cachedRecord(at: position, in: area, lease: lease, header: header, batchOffset: batchOffset, segment: segment)
    }

    /// The record at `position` of the uncompressed sealed batch at
    /// `batchOffset` (Format.md §5.1; `header` read there, its length within
    /// the data): only the seal group holding the record is opened (or
    /// found opened, when this reader's last read was in the same group).
    /// The record's own checksum is verified on the stored bytes and the
    /// group's tag authenticates its payload, so the frame checksum is read
    /// only when the tag fails: a frame that fails it is damage, one that
    /// holds is `sealBroken`.
    private mutating func sealedRecord(
        at position: UInt64, header: BatchHeader, batchOffset: Int, segment: Segment, bytes: UnsafeRawBufferPointer
    ) throws(EventLogError) -> EventView {
        let keys = try sealKeys(forBatchAt: batchOffset, in: segment)
        let storedStart = batchOffset + BatchHeader.size
        // The walk below reads every record's head, one length deciding the
        // next address: ask for the whole area at once, so the misses overlap.
        if let base = bytes.baseAddress { eventlog_prefetch(base + storedStart, header.storedLength) }
        guard let base = bytes.baseAddress, MappedBytes.touch(bytes, storedStart..<(storedStart + header.storedLength)) else {
            throw .corruption(file: segment.path, offset: Int64(storedStart), reason: MappedBytes.unreadableReason)
        }
        let area = UnsafeRawBufferPointer(start: base + storedStart, count: header.storedLength)
        guard let table = SealTable(area: area) else {
            throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: "sealed batch has no seal table")
        }
        let records = UnsafeRawBufferPointer(rebasing: area[0..<table.recordsEnd])
        let index = Int(position &- header.basePosition)
        // Every record: where the target is, and each sealed one's group field and payload end.
        sealedFields.removeAll(keepingCapacity: true)
        var at = 0
        var targetStart = 0
        var targetEnd = 0
        var targetField = -1
        do throws(RecordDefect) {
            for i in 0..<Int(header.recordCount) {
                let start = at
                let found = try Record.sealedPayload(records, at: &at)
                if i == index { (targetStart, targetEnd, targetField) = (start, at, found?.groupOffset ?? -1) }
                if let found {
                    sealedFields.append(found.groupOffset)
                    sealedFields.append(found.payloadEnd)
                }
            }
        } catch {
            throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: "sealed batch: \(error.reason)")
        }
        // The stored record, its own checksum verified (a stream marker is not sealed: it is the event).
        var check = targetStart
        do {
            // (A sealed batch has no type table.)
            let stored = try Record.decode(
                records, at: &check, position: position, firstTimestamp: header.firstTimestamp, verify: true, types: .none)
            if targetField < 0 { return stored }
        } catch {
            throw segment.corruption(error, header: header, batchOffset: batchOffset)
        }
        let group = Int(records.loadLE(at: targetField, as: UInt32.self))
        guard group < table.count else {
            throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: "sealed batch: a record names a seal group the seal table does not have")
        }
        // The group's members: the target's payload starts after the payloads before it.
        var payloadFrom = 0
        var groupBytes = 0
        for k in stride(from: 0, to: sealedFields.count, by: 2) where Int(records.loadLE(at: sealedFields[k], as: UInt32.self)) == group {
            if sealedFields[k] == targetField { payloadFrom = groupBytes }
            groupBytes += sealedFields[k + 1] - sealedFields[k] - 4
        }
        let key = PartKey(
            batch: BatchCache.Key(segment: segment.id, offset: batchOffset, frameCRC: header.crc, keyEpoch: keys.forgetEpoch), part: group)
        if sealGroupKey != key {
            sealGroupKey = nil
            sealedRecordCopy.count = 0
            sealedRecordCopy.reserve(groupBytes)
            for k in stride(from: 0, to: sealedFields.count, by: 2) where Int(records.loadLE(at: sealedFields[k], as: UInt32.self)) == group {
                sealedRecordCopy.append(UnsafeRawBufferPointer(rebasing: records[(sealedFields[k] + 4)..<sealedFields[k + 1]]))
            }
            do {
                sealGroupPlaintext = try SealedBatch.openGroup(
                    group, ciphertext: sealedRecordCopy.bytes, table: table, header: header, keys: keys, file: segment.path,
                    batchOffset: batchOffset)
            } catch let error {
                if case .sealBroken = error { try verifyFrame(at: batchOffset, in: segment, bytes: bytes) }
                throw error
            }
            sealGroupKey = key
        }
        // The record copied, its payload replaced by its plaintext (or marked forgotten).
        sealedRecordCopy.count = 0
        sealedRecordCopy.append(UnsafeRawBufferPointer(rebasing: records[targetStart..<targetEnd]))
        let field = targetField - targetStart
        if let plaintext = sealGroupPlaintext {
            let count = targetEnd - targetField - 4
            let from = plaintext.startIndex + payloadFrom
            plaintext[from..<(from + count)].withUnsafeBytes { source in
                if let source = source.baseAddress { (sealedRecordCopy.base + field + 4).copyMemory(from: source, byteCount: count) }
            }
            sealedRecordCopy.base.storeBytes(of: Record.openedGroup.littleEndian, toByteOffset: field, as: UInt32.self)
        } else {
            sealedRecordCopy.base.storeBytes(of: Record.forgottenGroup.littleEndian, toByteOffset: field, as: UInt32.self)
        }
        var copyAt = 0
        do {
            return try Record.decode(
                sealedRecordCopy.bytes, at: &copyAt, position: position, firstTimestamp: header.firstTimestamp, verify: false,
                types: .none)
        } catch {
            throw segment.corruption(error, header: header, batchOffset: batchOffset)
        }
    }

    /// Starts loading the stored block of the LZ4 unit that holds `position`
    /// in the batch at `batchOffset`, for a read soon after (a stream read
    /// asks for the next events' units before it decompresses the first, so
    /// their misses overlap). A hint: it reads the batch's header and unit
    /// table under the SIGBUS guard, checks only what keeps its own reads
    /// inside the batch, and changes nothing; whatever is wrong with the
    /// batch is left for the read to report.
    func prefetchUnit(holding position: UInt64, batchOffset: Int, in segment: Segment) {
        guard batchOffset >= SegmentHeader.size, batchOffset + BatchHeader.size <= segment.dataEnd,
              let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd), let base = bytes.baseAddress,
              MappedBytes.touch(bytes, batchOffset..<(batchOffset + BatchHeader.size))
        else { return }
        let header = BatchHeader.load(base + batchOffset)
        guard header.holdsLZ4Units, header.basePosition <= position, position < header.endPosition,
              Int(header.length) >= BatchHeader.size, Int(header.length) <= segment.dataEnd - batchOffset
        else { return }
        let storedStart = batchOffset + BatchHeader.size
        let storedLength = Int(header.length) - BatchHeader.size
        let tableStart = header.usesSegmentDictionary ? LZ4Units.dictionaryFieldSize : 0
        guard tableStart + 4 <= storedLength, MappedBytes.touch(bytes, storedStart..<(storedStart + tableStart + 4)) else { return }
        let count = Int(base.loadLE(at: storedStart + tableStart, as: UInt32.self))
        guard count >= 1, count <= (storedLength - tableStart - 4) / LZ4Units.entrySize,
              MappedBytes.touch(bytes, storedStart..<(storedStart + tableStart + 4 + count * LZ4Units.entrySize))
        else { return }
        let unit = LZ4Units.unit(holding: Int(position &- header.basePosition), stored: base + storedStart, tableStart: tableStart, count: count)
        if unit.storedOffset <= storedLength, unit.storedLength <= storedLength - unit.storedOffset {
            eventlog_prefetch(base + storedStart + unit.storedOffset, unit.storedLength)
        }
    }

    /// The record at `position` of the LZ4-units batch at `batchOffset`
    /// (Format.md §5.2; `header` read there, its length within the data):
    /// the one unit holding it is decompressed (or found in `unit`, when
    /// this reader's last read was in the same unit), and the record found
    /// by walking that unit. As for a plain batch, the record's own checksum
    /// is verified, not the frame's: it covers every byte returned. The
    /// stored bytes read (the unit table, the unit) are read under the
    /// SIGBUS guard first.
    private mutating func unitRecord(
        at position: UInt64, header: BatchHeader, batchOffset: Int, segment: Segment, bytes: UnsafeRawBufferPointer
    ) throws(EventLogError) -> EventView {
        let storedStart = batchOffset + BatchHeader.size
        let storedEnd = batchOffset + Int(header.length)
        // Codec 3 (Format.md §5.4): the dictionary's checksum comes first.
        let tableStart = header.usesSegmentDictionary ? LZ4Units.dictionaryFieldSize : 0
        guard storedEnd - storedStart >= tableStart + 4, let base = bytes.baseAddress else {
            throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: "LZ4 units area is too short for its table")
        }
        // The count and table, right after the header (Format.md §5.2).
        guard MappedBytes.touch(bytes, storedStart..<(storedStart + tableStart + 4)) else {
            throw .corruption(file: segment.path, offset: Int64(storedStart), reason: MappedBytes.unreadableReason)
        }
        let unitCount = Int(base.loadLE(at: storedStart + tableStart, as: UInt32.self))
        let tableBytes = min(storedEnd - storedStart, tableStart + 4 &+ min(unitCount, Limits.maxBatchRecords) &* LZ4Units.entrySize)
        guard MappedBytes.touch(bytes, storedStart..<(storedStart + tableBytes)) else {
            throw .corruption(file: segment.path, offset: Int64(storedStart), reason: MappedBytes.unreadableReason)
        }
        let stored = UnsafeRawBufferPointer(start: base + storedStart, count: storedEnd - storedStart)
        let index = Int(position &- header.basePosition)
        let dictionary = header.usesSegmentDictionary ? try segment.lz4Dictionary(forBatchAt: batchOffset) : nil
        var table: LZ4Units.Table
        do {
            table = try LZ4Units.Table(stored, of: header, dictionary: dictionary)
        } catch {
            throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: error.reason)
        }
        let found = table.unit(holding: index)
        let key = PartKey(batch: BatchCache.Key(segment: segment.id, offset: batchOffset, frameCRC: header.crc), part: found.storedOffset)
        if unitKey != key || unitBytes == nil {
            unitKey = nil
            let blockStart = storedStart + found.storedOffset
            // All of its lines at once (the touch reads one byte a page):
            // decompression then waits on memory about once, not line after line.
            eventlog_prefetch(base + blockStart, found.storedLength)
            guard MappedBytes.touch(bytes, blockStart..<(blockStart + found.storedLength)) else {
                throw .corruption(file: segment.path, offset: Int64(blockStart), reason: MappedBytes.unreadableReason)
            }
            if let dictionary {
                let (copy, output) = staged(dictionary, of: segment, room: found.length)
                table = table.staged(against: copy)
                unitBytes = output
            } else {
                unit.count = 0
                unit.reserve(found.length)
                unitBytes = unit.base
            }
            unitDecoded = 0
            unitKey = key
        } else if let dictionary {
            // The same unit, after the same staged copy (`staged` makes none).
            table = table.staged(against: staged(dictionary, of: segment, room: found.length).dictionary)
        }
        guard let output = unitBytes else { throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: "no room for a unit") }
        // Decompression stops at the unit's prefix guess; a walk that runs
        // out of bytes (or a record cut short) guesses again from the record
        // it stopped at and decompresses that much, the whole unit after
        // `prefixGuesses` guesses, and walks again, so only a defect of the
        // whole unit is reported.
        var estimate = found.prefixGuess(forRecord: index)
        var guesses = 1
        while true {
            if unitDecoded < estimate {
                do { unitDecoded = try table.decompress(found, prefix: estimate, into: output) } catch {
                    unitKey = nil
                    throw .corruption(file: segment.path, offset: Int64(batchOffset), reason: error.reason)
                }
            }
            let area = UnsafeRawBufferPointer(start: output, count: unitDecoded)
            var at = 0
            var walked = found.firstRecord
            var recordStart = 0
            do {
                while walked < index {
                    recordStart = at
                    try Record.skip(area, at: &at)
                    walked += 1
                }
                recordStart = at
                return try Record.decode(
                    area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: true, types: .none)
            } catch {
                guard unitDecoded < found.length else {
                    throw segment.corruption(error, header: header, batchOffset: batchOffset)
                }
                guesses += 1
                estimate = guesses <= LZ4Units.prefixGuesses
                    ? found.prefixGuess(forRecord: index, stoppedAt: walked, offset: recordStart, in: area) : found.length
            }
        }
    }

    /// A copy of `segment`'s `dictionary` with room for a unit of `room`
    /// bytes right after it (its output): the copy this reader holds, lent
    /// by the segment (giving back the one of another segment first); for a
    /// larger unit, or when none can be lent, the reader's own `stage`.
    /// Asked again for the same segment and room, the same copy, unchanged.
    private mutating func staged(
        _ dictionary: LZ4Dictionary, of segment: Segment, room: Int
    ) -> (dictionary: LZ4Dictionary, output: UnsafeMutableRawPointer) {
        if room <= StagedDictionaryCopy.room {
            let lender = segment.dictionaryLender
            if let lent, lent.lender === lender { return (lent.copy.dictionary, lent.copy.output) }
            if let lent { lent.lender.takeBack(lent.copy) }
            lent = lender.lendCopy().map { (lender, $0) }
            if let lent { return (lent.copy.dictionary, lent.copy.output) }
        }
        return stage.prepare(dictionary, room: room)
    }

    /// The record at `position` of a cached batch's records `area`, found
    /// through its lease's record offsets, its own checksum verified.
    private func cachedRecord(
        at position: UInt64, in area: UnsafeRawBufferPointer, lease: BatchCache.Lease, header: BatchHeader, batchOffset: Int,
        segment: Segment
    ) throws(EventLogError) -> EventView {
        var at = lease.offset(ofRecord: Int(position &- header.basePosition))
        do {
            return try Record.decode(
                area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: !header.isSealed, types: .none)
        } catch {
            throw segment.corruption(error, header: header, batchOffset: batchOffset)
        }
    }

    /// Checks the checksum of the whole frame at `offset` (under the SIGBUS guard).
    private func verifyFrame(at offset: Int, in segment: Segment, bytes: UnsafeRawBufferPointer) throws(EventLogError) {
        switch BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil, guarded: true) {
        case .valid: break
        case .unreadable:
            throw .corruption(file: segment.path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
        default:
            throw .corruption(file: segment.path, offset: Int64(offset), reason: "batch checksum mismatch")
        }
    }

    /// The decompressed records area of the LZ4 batch at `offset` from the
    /// cache, with the lease that pins it (held by this reader until its
    /// next batch): the one this reader holds, a hit, or a miss filled now
    /// (frame checksum verified, decompressed, record offsets taken).
    /// Nil when the batch is read without the cache (no cache, too large,
    /// no room, or another reader is filling it).
    private mutating func cachedRecords(
        of header: BatchHeader, at offset: Int, in segment: Segment, bytes: UnsafeRawBufferPointer
    ) throws(EventLogError) -> (UnsafeRawBufferPointer, BatchCache.Lease)? {
        guard let cache else { return nil }
        let key = BatchCache.Key(
            segment: segment.id, offset: offset, frameCRC: header.crc, keyEpoch: header.isSealed ? snapshot.keys?.forgetEpoch ?? 0 : 0)
        if let lease, lease.key == key { return (lease.records, lease) }
        let old = lease
        lease = nil
        switch cache.acquire(key, recordsLength: Int(header.recordsLength), recordCount: Int(header.recordCount), releasing: old) {
        case .bypass:
            return nil
        case .hit(let hit):
            lease = hit
            return (hit.records, hit)
        case .miss(let room):
            do {
                try fill(room, header: header, at: offset, in: segment, bytes: bytes)
            } catch {
                cache.abandon(room)
                throw error
            }
            let filled = cache.publish(room)
            lease = filled
            return (filled.records, filled)
        }
    }

    /// Verifies the frame at `offset`, decompresses its records area into
    /// `room` and writes the offset of each record after it.
    private mutating func fill(
        _ room: BatchCache.Reservation, header: BatchHeader, at offset: Int, in segment: Segment, bytes: UnsafeRawBufferPointer
    ) throws(EventLogError) {
        try verifyFrame(at: offset, in: segment, bytes: bytes)
        let stored = try segment.storedArea(of: header, at: offset)
        let length = room.recordsLength
        if header.usesSegmentDictionary { unitKey = nil }  // the stage is reused: a staged unit is gone
        try Self.unpack(stored, into: room.destination, length: length, header: header, at: offset, in: segment, stage: &stage)
        if header.isSealed {
            try open(UnsafeMutableRawBufferPointer(start: room.destination, count: length), header: header, at: offset, in: segment)
        }
        let area = UnsafeRawBufferPointer(start: room.destination, count: length)
        let table = room.destination + room.tableStart
        var at = 0
        for i in 0..<room.recordCount {
            (table + i &* 4).storeBytes(of: UInt32(truncatingIfNeeded: at), as: UInt32.self)
            do { try Record.skip(area, at: &at) } catch {
                throw segment.corruption(error, header: header, batchOffset: offset)
            }
        }
    }

    mutating func position(atOrAfter timestamp: Timestamp) throws(EventLogError) -> UInt64 {
        var i = 0
        while i < snapshot.count && snapshot[i].maxTimestamp < timestamp { i += 1 }
        guard i < snapshot.count else { return snapshot.endPosition }
        let segment = snapshot[i]
        let bytes = try segment.publishedBytes()
        var offset = segment.batchOffset(forTimestamp: timestamp)
        while offset < segment.dataEnd {
            guard case .valid(let header) = BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil) else {
                throw .corruption(file: segment.path, offset: Int64(offset), reason: "damaged batch")
            }
            if header.maxTimestamp >= timestamp {
                let area = try records(of: header, at: offset, in: segment, opening: false)
                let types = try segment.typeTable(of: header, in: area, batchOffset: offset, guarded: false)
                var at = types.length
                var p = header.basePosition
                while p < header.endPosition {
                    do {
                        let view = try Record.decode(
                            area, at: &at, position: p, firstTimestamp: header.firstTimestamp, verify: false, types: types)
                        if view.timestamp >= timestamp { return p }
                    } catch {
                        throw segment.corruption(error, header: header, batchOffset: offset)
                    }
                    p += 1
                }
            }
            offset += Int(header.length)
        }
        return segment.endPosition
    }
}
