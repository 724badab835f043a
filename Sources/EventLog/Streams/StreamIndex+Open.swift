/// Opening the stream layer: the stream table, the sealed segments' stream
/// index files, the active segment's entries, and the replay of whatever
/// the persisted files do not cover (Format.md, "Stream index: recovery").
extension StreamIndex {
    /// Opens the stream index of the segments an open found (a step of
    /// `Log.open`, before the open changes any file but rebuilt stream
    /// index files).
    static func open(_ opened: inout OpenedSegments, options: LogOptions, directory: DirectoryOperations) throws -> StreamIndex {
        let readOnly = options.readOnly
        let table = StreamTable(hashMask: options.streamHashMask)
        let segments = opened.segments
        let start = segments.first?.basePosition ?? 0
        let end = segments.last?.endPosition ?? 0
        var sealed: [SegmentID: SegmentStreamIndex] = [:]

        // 1. The table as of its covered position (or nothing: replay everything).
        var covered = start
        if let bytes = try opened.streamTableBytes ?? directory.readWhole(FileNames.streamTable),
           let (rows, position) = StreamTableFile.decode(bytes),
           position >= start, position <= end {
            table.mutate { $0.replaceAll(with: rows.map { StreamState(row: $0, hash: table.hash($0.name)) }) }
            covered = position
        } else if end > start {
            opened.report.rebuiltIndexes.append(FileNames.streamTable)
        }

        // 2. Sealed segments: their stream index files, rebuilt when in doubt.
        for segment in segments.dropLast() {
            let name = FileNames.streamIndex(segment.basePosition)
            if let view = StreamIndexView.open(path: directory.file(name), faults: directory.faults), view.describes(segment) {
                sealed[segment.id] = .file(view)
                continue
            }
            let bytes = try StreamIndexBuilder.scan(segment, table: table)
            opened.report.rebuiltIndexes.append(name)
            var view: StreamIndexView?
            if !readOnly {
                try directory.writeAtomically(name, bytes: bytes)
                view = StreamIndexView.open(path: directory.file(name), faults: directory.faults)
            }
            if let view = view ?? StreamIndexView.inMemory(bytes, path: directory.file(name)) { sealed[segment.id] = .file(view) }
        }

        // 3. The last segment: entries in memory, from its checkpoint file
        // (read whole, so checked whole: a damaged one is not used).
        guard let last = segments.last else {
            return StreamIndex(
                table: table, directory: directory, checkpointBytes: options.checkpointBytes,
                sealed: sealed, active: nil, indexedEnd: end)
        }
        let entries = StreamEntries()
        var checkpoint = last.basePosition
        if let view = StreamIndexView.open(path: directory.file(FileNames.streamIndex(last.basePosition)), faults: directory.faults),
           view.describesPrefix(of: last), let groups = try? view.allGroups() {
            try StreamIndexBuilder.load(
                groups, into: entries, segment: last, table: table, tableCovers: covered >= view.header.endPosition)
            checkpoint = view.header.endPosition
        }

        // 4. Replay what neither covers.
        let from = min(covered, checkpoint)
        if from < end {
            opened.report.replayedRecords = try StreamIndexBuilder.replay(
                segments: segments, from: from, tableFrom: covered, entriesFrom: checkpoint, entries: entries, table: table)
        }
        return StreamIndex(
            table: table, directory: directory, checkpointBytes: options.checkpointBytes,
            sealed: sealed, active: (last.id, last.basePosition, entries), indexedEnd: end)
    }
}

extension StreamIndexView {
    /// True when the file describes exactly this (sealed) segment.
    func describes(_ segment: Segment) -> Bool {
        header.basePosition == segment.basePosition && header.endPosition == segment.endPosition
            && Int(header.dataEnd) == segment.dataEnd && header.lastBatchCRC == segment.lastBatchCRC
    }

    /// True when the file describes a prefix of this segment that its data
    /// confirms: a checkpoint of the active segment.
    func describesPrefix(of segment: Segment) -> Bool {
        guard header.basePosition == segment.basePosition, header.endPosition <= segment.endPosition,
              Int(header.dataEnd) <= segment.dataEnd
        else { return false }
        if header.endPosition == segment.basePosition { return header.dataEnd == UInt32(SegmentHeader.size) }
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd),
              case .valid(let last) = BatchHeader.check(
                  bytes, at: Int(header.lastBatchOffset), end: Int(header.dataEnd), previousCRC: nil, expectedBase: nil)
        else { return false }
        return last.crc == header.lastBatchCRC && last.endPosition == header.endPosition
            && Int(header.lastBatchOffset) + Int(last.length) == Int(header.dataEnd)
    }
}

/// Building stream indexes: from a segment's records, from the in-memory
/// entries, and the replay of records into the table.
enum StreamIndexBuilder {
    /// The stream index file of a segment, built by reading every record.
    static func scan(_ segment: Segment, table: StreamTable) throws -> [UInt8] {
        var groups: [String: StreamIndexFile.Group] = [:]
        var order: [String] = []
        try forEachRecord(in: segment, from: segment.basePosition) { view, offset, _ in
            if view.isMarker { return }
            let name = view.stream
            if groups[name] == nil {
                groups[name] = StreamIndexFile.Group(hash: table.hash(view.streamBytes), firstVersion: view.version, entries: [])
                order.append(name)
            }
            groups[name]?.entries.append((UInt32(truncatingIfNeeded: view.position &- segment.basePosition), offset))
        }
        return StreamIndexFile.encode(segment.indexFileHeader, groups: order.compactMap { groups[$0] })
    }

    /// The stream index file of a segment from its in-memory entries: a
    /// counting sort by stream, written straight into the file's bytes (a
    /// few allocations in all, none per entry or per stream).
    static func encode(_ segment: Segment, entries: StreamEntries, count: Int, table: StreamTable) -> [UInt8] {
        var maxID: UInt32 = 0
        for i in 0..<count { maxID = max(maxID, entries[i].stream) }
        let slots = count == 0 ? 0 : Int(maxID) + 1
        // Per stream id: entry count, then (reused) the next entry slot.
        var perStream = [Int32](repeating: 0, count: slots)
        var firstEntry = [Int32](repeating: -1, count: slots)
        var ids: [UInt32] = []
        for i in 0..<count {
            let id = Int(entries[i].stream)
            if perStream[id] == 0 {
                firstEntry[id] = Int32(i)
                ids.append(UInt32(id))
            }
            perStream[id] += 1
        }
        let streamHashes = table.read { t in ids.map { t[$0].hash } }
        // Groups sorted by (hash, first relative position).
        var order = Array(ids.indices)
        order.sort { a, b in
            if streamHashes[a] != streamHashes[b] { return streamHashes[a] < streamHashes[b] }
            return firstEntry[Int(ids[a])] < firstEntry[Int(ids[b])]
        }
        var hashes: [UInt64] = []
        var firstVersions: [UInt64] = []
        var counts: [UInt32] = []
        hashes.reserveCapacity(ids.count)
        firstVersions.reserveCapacity(ids.count)
        counts.reserveCapacity(ids.count)
        var next: Int32 = 0
        for k in order {
            let id = Int(ids[k])
            hashes.append(streamHashes[k])
            firstVersions.append(entries[Int(firstEntry[id])].version)
            counts.append(UInt32(perStream[id]))
            let start = next
            next += perStream[id]
            perStream[id] = start  // from here: the next free entry of this stream
        }
        // Each stream's entries in its group's place, in the order they came.
        let packed = [UInt64](unsafeUninitializedCapacity: count) { slots, initialized in
            for i in 0..<count {
                let e = entries[i]
                let slot = Int(perStream[Int(e.stream)])
                perStream[Int(e.stream)] += 1
                slots[slot] = StreamIndexFile.packedEntry(relativePosition: e.relativePosition, offset: e.offset)
            }
            initialized = count
        }
        return StreamIndexFile.encode(
            segment.indexFileHeader, hashes: hashes, firstVersions: firstVersions, counts: counts, entries: packed)
    }

    /// Loads a checkpoint file's groups (`StreamIndexView.allGroups()`, so
    /// checked whole) into the active segment's entries, linking each
    /// stream's chain.
    static func load(
        _ groups: [StreamIndexFile.Group], into entries: StreamEntries, segment: Segment, table: StreamTable, tableCovers: Bool
    ) throws {
        var reader = LogReader(snapshot: LogSnapshot(sealed: [], active: segment))
        try table.mutate { t in
            for group in groups {
                let (hash, firstVersion) = (group.hash, group.firstVersion)
                guard let e0 = group.entries.first else { continue }
                // The group's stream: when the table (which covers this
                // checkpoint) has exactly one stream with the group's hash,
                // that is it; otherwise its first record's name decides.
                let id: UInt32
                if tableCovers, let only = t.table.onlyStream(withHash: hash) {
                    id = only
                } else {
                    let record = try reader.recordView(
                        at: segment.basePosition &+ UInt64(e0.relativePosition), offset: e0.offset, in: segment)
                    id = t.table.find(record.streamBytes, hash: t.table.hash(record.streamBytes))
                        ?? t.insert(StreamState(name: record.stream, hash: t.table.hash(record.streamBytes)))
                }
                var previous: UInt32 = t.table[id].activeSegment == segment.basePosition ? t.table[id].activeTail : 0
                for (k, e) in group.entries.enumerated() {
                    guard let index = entries.append(StreamEntry(
                        relativePosition: e.relativePosition, offset: e.offset, stream: id, previous: previous,
                        version: firstVersion + UInt64(k)))
                    else { throw tooManyEvents(segment) }
                    previous = UInt32(index + 1)
                }
                t.update(id) { state in
                    state.activeTail = previous
                    state.activeSegment = segment.basePosition
                }
            }
        }
    }

    /// Replays the records from `from` on: into the table for positions at or
    /// after `tableFrom`, into the last segment's `entries` at or after `entriesFrom`.
    @discardableResult
    static func replay(
        segments: [Segment], from: UInt64, tableFrom: UInt64, entriesFrom: UInt64, entries: StreamEntries?, table: StreamTable
    ) throws -> Int {
        guard let last = segments.last else { return 0 }
        var replayed = 0
        var batchBase: UInt64 = .max
        var inBatch: [UInt32: (firstVersion: UInt64, count: UInt32)] = [:]
        func closeBatch(_ t: inout StreamTable.Mutator) {
            for (id, append) in inBatch {
                t.update(id) { state in
                    state.lastAppendBatch = batchBase
                    state.lastAppendFirstVersion = append.firstVersion
                    state.lastAppendCount = append.count
                }
            }
            inBatch.removeAll(keepingCapacity: true)
        }
        try table.mutate { t in
            for segment in segments where segment.endPosition > from {
                let isLast = segment.basePosition == last.basePosition
                try forEachRecord(in: segment, from: max(from, segment.basePosition)) { view, offset, base in
                    let position = view.position
                    replayed += 1
                    let id = t.table.find(view.streamBytes, hash: t.table.hash(view.streamBytes))
                        ?? t.insert(StreamState(name: view.stream, hash: t.table.hash(view.streamBytes)))
                    if position >= tableFrom {
                        if base != batchBase {
                            closeBatch(&t)
                            batchBase = base
                        }
                        if view.isMarker, let marker = StreamMarker(type: view.typeBytes, data: view.data) {
                            t.update(id) { $0.apply(marker) }
                        } else if !view.isMarker {
                            t.update(id) { state in
                                if state.firstPosition == nil { state.firstPosition = position }
                                state.lastPosition = position
                                state.nextVersion = view.version + 1
                                if state.deletion == .soft { state.deletion = .none }
                            }
                            if let existing = inBatch[id] {
                                inBatch[id] = (existing.firstVersion, existing.count + 1)
                            } else {
                                inBatch[id] = (view.version, 1)
                            }
                        }
                    }
                    if isLast, let entries, position >= entriesFrom, !view.isMarker {
                        let previous = t.table[id].activeSegment == last.basePosition ? t.table[id].activeTail : 0
                        guard let index = entries.append(StreamEntry(
                            relativePosition: UInt32(truncatingIfNeeded: position &- last.basePosition), offset: offset,
                            stream: id, previous: previous, version: view.version))
                        else { throw tooManyEvents(last) }
                        t.update(id) { state in
                            state.activeTail = UInt32(index + 1)
                            state.activeSegment = last.basePosition
                        }
                    }
                }
            }
            closeBatch(&t)
        }
        return replayed
    }

    /// A segment with more events than its stream entries can hold: no
    /// writer writes one (Format.md §9), so it is damage.
    static func tooManyEvents(_ segment: Segment) -> EventLogError {
        .corruption(
            file: segment.path, offset: 0,
            reason: "the segment holds more than \(StreamEntries.capacity) events, the most a segment may hold")
    }

    /// Every record of `segment` from position `from`, with its stream-index
    /// offset and its batch's base position. Frames are verified.
    static func forEachRecord(
        in segment: Segment, from: UInt64, _ body: (EventView, UInt32, UInt64) throws -> Void
    ) throws {
        guard let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd) else { return }
        var reader = LogReader(snapshot: LogSnapshot(sealed: [], active: segment))
        var offset = from > segment.basePosition ? segment.batchOffset(atOrBefore: from) : SegmentHeader.size
        while offset < segment.dataEnd {
            guard case .valid(let header) = BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil) else {
                throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: "damaged batch")
            }
            defer { offset += Int(header.length) }
            if header.endPosition <= from { continue }
            let area = try reader.records(of: header, at: offset, in: segment)
            var at = 0
            for position in header.basePosition..<header.endPosition {
                let recordStart = at
                let view: EventView
                do {
                    view = try Record.decode(area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: false)
                } catch {
                    throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: error.reason)
                }
                if position < from { continue }
                let entryOffset = header.codecValue == 0
                    ? UInt32(offset + BatchHeader.size + recordStart)
                    : UInt32(offset) | StreamEntry.compressedFlag
                try body(view, entryOffset, header.basePosition)
            }
        }
    }
}

extension StreamIndexBuilder {
    /// Replays one segment's records (a read-only log catching up).
    @discardableResult
    static func replay(
        segment: Segment, from: UInt64, tableFrom: UInt64, entriesFrom: UInt64, entries: StreamEntries?, table: StreamTable
    ) throws -> Int {
        try replay(segments: [segment], from: from, tableFrom: tableFrom, entriesFrom: entriesFrom, entries: entries, table: table)
    }

    /// `Log.verify`'s part for streams: compares a sound segment's stream
    /// index file with one rebuilt from its records.
    static func verifyFile(of segment: Segment, directory: DirectoryOperations, report: inout VerificationReport) {
        let name = FileNames.streamIndex(segment.basePosition)
        let path = directory.file(name)
        guard let stored = try? directory.readWhole(name) else {
            report.problems.append(.init(file: path, offset: 0, reason: "stream index file is missing (the next open rebuilds it)"))
            return
        }
        report.indexFiles += 1
        guard let expected = try? StreamIndexBuilder.scan(segment, table: StreamTable()) else { return }
        if stored != expected {
            // Damage inside a block is found by the reads of that block, not
            // by an open (which checks the header and fence only): name it.
            let view = StreamIndexView.inMemory(stored, path: path)
            if let view, let damage = view.verify() {
                report.problems.append(.init(
                    file: path, offset: damage.offset,
                    reason: "\(damage.reason): stream reads through it fail (remove the file: the next open rebuilds it)"))
                return
            }
            let at = zip(stored, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(stored.count, expected.count)
            let rebuilt = view.map { !$0.describes(segment) } ?? true
            report.problems.append(.init(
                file: path, offset: Int64(at),
                reason: "stream index differs from the log" + (rebuilt ? " (the next open rebuilds it)" : " (remove the file: the next open rebuilds it)")))
        }
    }
}
