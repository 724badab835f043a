import CSystemCalls
import struct Foundation.UUID

/// A filter for reads of the whole log: events whose stream starts with
/// `streamPrefix` and whose type is one of `types` (nil: any).
public struct EventFilter: Sendable {
    /// Only streams whose name starts with this (nil: every stream).
    public var streamPrefix: String?
    /// Only events of these types (nil: every type).
    public var types: Set<String>?
    /// Include stream markers (deletions, truncations); off by default.
    public var includeMarkers: Bool

    /// A filter; the default passes every event but markers.
    public init(streamPrefix: String? = nil, types: Set<String>? = nil, includeMarkers: Bool = false) {
        self.streamPrefix = streamPrefix
        self.types = types
        self.includeMarkers = includeMarkers
    }

    func matches(_ view: EventView) -> Bool {
        if view.isMarker && !includeMarkers { return false }
        if let prefix = streamPrefix, !prefix.utf8.elementsEqual(view.streamBytes.prefix(prefix.utf8.count)) { return false }
        if let types {
            guard types.contains(where: { $0.utf8.elementsEqual(view.typeBytes) }) else { return false }
        }
        return true
    }
}

extension Streams {
    /// `Log.streamInfo(_:)`.
    func streamInfo(_ stream: String) throws(EventLogError) -> StreamInfo? {
        let snapshot = log.snapshot()
        guard let state = try table.state(named: stream) else { return nil }
        return try info(of: state, snapshot: snapshot)
    }

    /// A stream's info; a truncated or limited stream's first readable
    /// position comes from the stream index, and with a max age its count
    /// too (the stream is read: the age hides events by their timestamps).
    private func info(of state: StreamState, snapshot: LogSnapshot) throws(EventLogError) -> StreamInfo {
        var info = state.info()
        let aged = state.maxAgeMicroseconds > 0
        if info.count > 0 && (state.readableFrom > 0 || aged) {
            var reader = LogReader(snapshot: snapshot)
            var first: UInt64?
            var count: UInt64 = 0
            do {
                _ = try reader.readStream(
                    state, index: index, from: state.readableFrom, maxCount: aged ? .max : 1, direction: .forward
                ) { view in
                    if first == nil { first = view.position }
                    count += 1
                }
            } catch {
                throw .wrapping(error)
            }
            info.firstPosition = first
            if aged { info.count = count }
        }
        return info
    }

    /// `Log.streamInfos(prefix:)`: reads every level of the stream table
    /// (every run on disk), so it costs time in the number of streams.
    func streamInfos(prefix: String) throws(EventLogError) -> [StreamInfo] {
        let snapshot = log.snapshot()
        let states = try table.states { $0.hasPrefix(prefix) }
        var infos: [StreamInfo] = []
        infos.reserveCapacity(states.count)
        for state in states { infos.append(try info(of: state, snapshot: snapshot)) }
        return infos.sorted { $0.name < $1.name }
    }

    /// `Log.readStream(_:from:maxCount:direction:_:)`.
    func readStream(
        _ stream: String, from version: UInt64?, maxCount: Int, direction: ReadDirection,
        _ body: (EventView) throws -> Void
    ) throws -> Int {
        let snapshot = log.snapshot()
        guard let state = try table.state(named: stream) else { return 0 }
        if state.deletion == .hard { throw EventLogError.streamDeleted(stream: stream) }
        var reader = LogReader(snapshot: snapshot, tally: log.readTally, cache: log.batchCache)
        let start = version ?? (direction == .forward ? 0 : .max)
        return try reader.readStream(state, index: index, from: start, maxCount: maxCount, direction: direction, body)
    }

    /// `Log.read(from:maxCount:filter:_:)`.
    func read(
        from position: UInt64, maxCount: Int, filter: EventFilter, _ body: (EventView) throws -> Void
    ) throws -> UInt64 {
        var remaining = maxCount
        var next = position
        // It may scan every event to its end, whatever `maxCount` (which
        // counts matching events): once two chunks did not end it, it reads
        // ahead as a whole scan does.
        var reader = LogReader(
            snapshot: log.snapshot(), tally: log.readTally, cache: log.batchCache,
            readsAheadFor: log.options.scanReadAhead ? .max : nil, afterCalls: 2)
        // Read in chunks so `maxCount` counts matching events only.
        while remaining > 0 {
            var lent = 0
            // The first matching event past `maxCount`: where the next read must start (not the chunk's end).
            var stop: UInt64?
            let end = try reader.read(from: next, maxCount: 4096) { view in
                guard stop == nil, filter.matches(view) else { return }
                guard lent < remaining else {
                    stop = view.position
                    return
                }
                try body(view)
                lent += 1
            }
            if let stop { return stop }
            remaining -= lent
            if end == next { break }
            next = end
        }
        return next
    }
}

extension LogReader {
    /// The bytes a stream read asks for ahead of an LZ4 batch's unit table:
    /// the count and the entries of 32 units (a batch of 100 events of ~220
    /// bytes in 1 KiB units has 21 or so). More lines than that for each of
    /// a window's entries fill the CPU's miss buffers, and the prefetches
    /// then stall the read.
    static let typicalUnitTableBytes = LZ4Units.dictionaryFieldSize + 4 + 32 * LZ4Units.entrySize
    /// How many entries ahead a stream read asks for an LZ4 batch's header and table.
    static let headDistance = 16
    /// How many entries ahead it asks for an LZ4 batch's unit (its table
    /// was asked for `headDistance - unitDistance` entries before).
    static let unitDistance = 8

    /// Lends the events of one stream (its state as the table had it after
    /// this reader's snapshot was taken). Only the segments between the
    /// stream's first and last positions are searched.
    mutating func readStream(
        _ state: StreamState, index: StreamIndex, from version: UInt64, maxCount: Int, direction: ReadDirection,
        _ body: (EventView) throws -> Void
    ) throws -> Int {
        if state.deletion != .none && state.deletion != .soft { return 0 }
        // Versions below the truncate-before or the max count, and events
        // older than the max age, are hidden (Format.md §13.1).
        let lowest = state.readableFrom
        let ageFloor = state.ageFloor(now: currentTimestamp())
        if state.deletion == .soft && state.nextVersion <= lowest { return 0 }
        guard let firstPosition = state.firstPosition, let lastPosition = state.lastPosition else { return 0 }
        var lent = 0
        let name = state.name
        let segmentIndexes: [Int] = direction == .forward ? Array(0..<snapshot.count) : Array((0..<snapshot.count).reversed())
        for i in segmentIndexes where lent < maxCount {
            let segment = snapshot[i]
            if segment.endPosition <= firstPosition || segment.basePosition > lastPosition { continue }
            var segmentIndex = index.index(of: segment)
            if segmentIndex == nil && segment.isSealed {
                // Replaced by scavenging after this snapshot was taken.
                segmentIndex = try index.indexByScanning(segment)
            }
            // The versions this read can lend: from `version` on (forward) or
            // up to it (backward), none below the readable floor.
            let versions: ClosedRange<UInt64>
            if direction == .forward {
                versions = max(version, lowest)...UInt64.max
            } else {
                guard version >= lowest else { break }
                versions = lowest...version
            }
            var entries = try streamEntries(of: state, in: segment, index: segmentIndex, versions: versions)
            if direction == .backward { entries.reverse() }
            // Take the entries this read wants, a window at a time, find
            // each one's batch and, for a plain batch, ask for its header and
            // record; then read them in order. An LZ4 batch needs its table
            // before its unit can be found: its header and table are asked
            // for `headDistance` entries ahead, its unit `unitDistance`
            // ahead, while the current entry is read (asked for all at once,
            // the prefetches of a window's ~15 lines an entry stalled). The
            // loads overlap instead of waiting on memory one after another.
            // Another window follows when a hash collision's entries took
            // places in this one.
            var next = 0
            while lent < maxCount && next < entries.count {
                var wanted: [(position: UInt64, offset: UInt32, version: UInt64, batch: Int)] = []
                wanted.reserveCapacity(min(entries.count - next, maxCount - lent))
                while next < entries.count && wanted.count < maxCount - lent {
                    let (position, offset, entryVersion) = entries[next]
                    next += 1
                    if entryVersion < lowest || (direction == .forward ? entryVersion < version : entryVersion > version) { continue }
                    // A compressed entry's offset is its batch's; a record's
                    // batch is found in the offset index.
                    let compressed = offset & StreamEntry.compressedFlag != 0
                    let batch = compressed ? Int(offset & ~StreamEntry.compressedFlag) : segment.batchOffset(atOrBefore: position)
                    if !compressed, let base = segment.mapping.base {
                        // The header and the type table after it (Format.md §5.3), and the record.
                        eventlog_prefetch(base + batch, BatchHeader.size + TypeTable.typicalBytes)
                        eventlog_prefetch(base + Int(offset), 256)
                    }
                    wanted.append((position, offset, entryVersion, batch))
                }
                func prefetchEntryHead(_ k: Int) {
                    guard k < wanted.count, wanted[k].offset & StreamEntry.compressedFlag != 0, let base = segment.mapping.base else { return }
                    // The header and the unit table after it (Format.md §5.2).
                    eventlog_prefetch(base + wanted[k].batch, BatchHeader.size + Self.typicalUnitTableBytes)
                }
                func prefetchEntryUnit(_ k: Int) {
                    guard k < wanted.count, wanted[k].offset & StreamEntry.compressedFlag != 0 else { return }
                    prefetchUnit(holding: wanted[k].position, batchOffset: wanted[k].batch, in: segment)
                }
                for k in 0..<Self.headDistance { prefetchEntryHead(k) }
                for k in 0..<Self.unitDistance { prefetchEntryUnit(k) }
                for (i, entry) in wanted.enumerated() {
                    prefetchEntryHead(i + Self.headDistance)
                    prefetchEntryUnit(i + Self.unitDistance)
                    let view = try recordView(at: entry.position, offset: entry.offset, in: segment, batchHint: entry.batch)
                    guard name.utf8Equals(view.streamBytes) else { continue }  // a hash collision
                    guard view.version == entry.version, !view.isMarker else {
                        throw EventLogError.corruption(
                            file: segment.path, offset: Int64(entry.offset & ~StreamEntry.compressedFlag),
                            reason: "stream index entry for version \(entry.version) points at version \(view.version)")
                    }
                    if view.timestamp < ageFloor { continue }
                    countLent(view)
                    try body(view)
                    lent += 1
                }
            }
        }
        return lent
    }

    /// The entries of the stream's hash in one segment, in position order, those of an index file
    /// (a sealed segment's, or the active one's checkpoint) only where their versions are in `versions`:
    /// (position, offset, version). Entries of other streams with the same
    /// hash are among them; the caller confirms the name on each record.
    private mutating func streamEntries(
        of state: StreamState, in segment: Segment, index: SegmentStreamIndex?, versions: ClosedRange<UInt64>
    ) throws -> [(UInt64, UInt32, UInt64)] {
        var result: [(UInt64, UInt32, UInt64)] = []
        // Entries of batches this reader's snapshot does not show yet are
        // left out, whichever form the index has now: the snapshot may hold
        // the segment as it was while it was active, and the writer may have
        // sealed it since and written its index file over all of its batches.
        let end = segment.endPosition &- segment.basePosition
        switch index {
        case .file(let view)?:
            for e in try view.entries(withHash: state.hash, versions: versions) where UInt64(e.relativePosition) < end {
                result.append((segment.basePosition &+ UInt64(e.relativePosition), e.offset, e.version))
            }
        case .entries(let entries, let count)?:
            let chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)]
            if versions.lowerBound > 0 {
                // Newest first, the walk ends at this stream's first event below the
                // versions wanted: every older one of it is lower still. Its name is
                // read to tell it from another stream with the same hash.
                let name = state.name
                chain = try entries.chain(of: state.hash, count: count, versions: versions) { relativePosition, offset, version throws(EventLogError) in
                    guard version < versions.lowerBound, UInt64(relativePosition) < end else { return false }
                    do {
                        let view = try recordView(at: segment.basePosition &+ UInt64(relativePosition), offset: offset, in: segment)
                        return name.utf8Equals(view.streamBytes)
                    } catch {
                        throw .wrapping(error)
                    }
                }
            } else {
                chain = try entries.chain(of: state.hash, count: count, versions: versions)
            }
            for e in chain where UInt64(e.relativePosition) < end {
                result.append((segment.basePosition &+ UInt64(e.relativePosition), e.offset, e.version))
            }
        case nil:
            break
        }
        return result
    }

    /// The record at `position`, stored at `offset` (a record offset, or a compressed batch's offset with the flag).
    mutating func recordView(at position: UInt64, offset: UInt32, in segment: Segment, batchHint: Int? = nil) throws -> EventView {
        guard offset & StreamEntry.compressedFlag == 0 else {
            // Inside the LZ4 batch at that offset: through the cache of
            // decompressed batches, else the point-read path decompresses it.
            let batchOffset = Int(offset & ~StreamEntry.compressedFlag)
            if let view = try compressedEvent(at: position, batchOffset: batchOffset, in: segment) { return view }
            return try withEvent(at: position, counted: false) { $0 }
        }
        let bytes = try segment.publishedBytes()
        // The batch header (for its first timestamp): the offset index finds the batch.
        guard let (header, batchOffset) = try segment.batchHeader(
            holding: position, from: batchHint ?? segment.batchOffset(atOrBefore: position), bytes: bytes)
        else {
            throw EventLogError.corruption(
                file: segment.path, offset: Int64(offset), reason: "a stream index entry names position \(position), which the segment does not hold")
        }
        let areaStart = batchOffset + BatchHeader.size
        let recordAt = Int(offset) - areaStart
        guard recordAt >= 0, recordAt < Int(header.length) - BatchHeader.size else {
            throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: "stream index entry points outside its batch")
        }
        let area = UnsafeRawBufferPointer(rebasing: bytes[areaStart..<(batchOffset + Int(header.length))])
        // The batch's type table (Format.md §5.3): the record's checksum covers the type it names.
        let types = try segment.typeTable(of: header, in: area, batchOffset: batchOffset, guarded: true)
        guard recordAt >= types.length else {
            throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: "stream index entry points inside its batch's type table")
        }
        var at = recordAt
        // The record's length and checksum fields under the SIGBUS guard
        // (its checksum then runs under it too).
        guard MappedBytes.touch(area, recordAt..<min(area.count, recordAt + Record.maxHeadBytes)) else {
            throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: MappedBytes.unreadableReason)
        }
        do {
            return try Record.decode(area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: true, types: types)
        } catch {
            throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: error.reason)
        }
    }

    /// The batch holding `position`: its positions (markers included) and
    /// each of its events' stream, event id and position (retry detection).
    /// Nil when no segment of the snapshot holds the position.
    mutating func batchEvents(
        containing position: UInt64
    ) throws -> (positions: Range<UInt64>, events: [(stream: String, eventID: UUID?, position: UInt64)])? {
        guard let index = snapshot.segmentIndex(for: position) else { return nil }
        let segment = snapshot[index]
        guard position < segment.endPosition, let bytes = segment.mapping.bytes(at: 0, count: segment.dataEnd) else { return nil }
        var offset = segment.batchOffset(atOrBefore: position)
        while offset < segment.dataEnd {
            guard case .valid(let header) = BatchHeader.check(bytes, at: offset, end: segment.dataEnd, previousCRC: nil, expectedBase: nil) else {
                throw EventLogError.corruption(file: segment.path, offset: Int64(offset), reason: "damaged batch")
            }
            if header.endPosition <= position {
                offset += Int(header.length)
                continue
            }
            var result: [(String, UUID?, UInt64)] = []
            let area = try records(of: header, at: offset, in: segment)
            let types = try segment.typeTable(of: header, in: area, batchOffset: offset, guarded: false)
            var at = types.length
            for p in header.basePosition..<header.endPosition {
                let view = try Record.decode(
                    area, at: &at, position: p, firstTimestamp: header.firstTimestamp, verify: false, types: types)
                if view.isMarker { continue }
                result.append((view.stream, try view.metadata().eventID, p))
            }
            return (header.basePosition..<header.endPosition, result)
        }
        return nil
    }
}
