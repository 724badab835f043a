import Synchronization

extension Log {
    /// For a log opened read-only beside a writer in another process: picks
    /// up what that writer appended since this log was opened (or last
    /// refreshed): new batches of the last segment, new segments, and their
    /// streams. Returns true when new events appeared (and wakes this log's
    /// subscribers). A batch still being written is left for the next call.
    ///
    /// Also reads the cursor commits other processes made.
    ///
    /// Read-only logs only (a writable log sees its own appends at once).
    /// Safe to call from any thread; calls are serialised. Blocks on the disk.
    @discardableResult
    public func refresh() throws(EventLogError) -> Bool {
        guard options.readOnly else { return false }
        try consumers.refreshFromDisk()
        return try refreshLock.withLock { (_) throws(EventLogError) -> Bool in
            do {
                return try refreshLocked()
            } catch {
                throw .wrapping(error)
            }
        }
    }

    private func refreshLocked() throws -> Bool {
        var snapshot = self.snapshot()
        let before = snapshot.endPosition
        var opener = Opener(path: path, options: options)
        let interval = Int(metadata.indexInterval)

        // 0. The last segment grew since it was mapped (an empty segment grown
        //    for a large batch, or one seen before its length was set): map it
        //    again, or its new bytes would never be looked at.
        if let last = snapshot.active, let length = currentLength(of: last.path), length != last.mapping.length {
            guard let reopened = try openIfReady(base: last.basePosition, opener: &opener) else { return false }
            var opened = reopened
            let entries = StreamEntries()
            opened.streamEntries = entries
            try StreamIndexBuilder.replay(
                segments: [opened], from: opened.basePosition, tableFrom: before, entriesFrom: opened.basePosition, table: streams)
            opened.streamEntryCount = entries.writtenCount
            snapshot.active = opened
        }

        // 1. New batches at the end of the last segment.
        if var last = snapshot.active, let bytes = last.mapping.bytes(at: 0, count: last.mapping.length) {
            var policy = opener.policy(resuming: last, interval: interval)
            let from = last.dataEnd
            let known = last.endPosition
            let outcome = SegmentScanner.scan(
                bytes, from: from, end: bytes.count, previousCRC: last.lastBatchCRC, expectedBase: last.endPosition,
                lastBatchOffset: last.lastBatchOffset
            ) { batch, offset in
                policy.add(
                    batch: batch, at: offset, records: batch.plainRecords(in: bytes, at: offset), segmentBase: last.basePosition,
                    offsetIndex: last.offsetIndex, timeIndex: last.timeIndex)
            }
            if outcome.batches > 0 {
                last.extend(with: outcome)
                try StreamIndexBuilder.replay(
                    segments: [last], from: known, tableFrom: known, entriesFrom: known, table: streams)
                last.streamEntryCount = last.streamEntries?.writtenCount ?? 0
                snapshot.active = last
            }
        }

        // 2. Segments created since.
        let names = try directory.list()
        let lastBase = snapshot.active?.basePosition
        let newBases = names.compactMap(FileNames.segmentBase).filter { base in lastBase.map { base > $0 } ?? true }.sorted()
        for base in newBases {
            guard base == snapshot.endPosition else { break }  // not yet complete, or a gap: next time
            // A segment whose header the writer has not written yet: next time.
            guard let segment = try openIfReady(base: base, opener: &opener) else { break }
            var opened = segment
            let entries = StreamEntries()
            opened.streamEntries = entries
            let start = segment.basePosition
            try StreamIndexBuilder.replay(segments: [opened], from: start, tableFrom: start, entriesFrom: start, table: streams)
            opened.streamEntryCount = entries.writtenCount
            if var previous = snapshot.active {
                previous.isSealed = true
                // The writer writes a sealed segment's stream index file soon
                // after sealing it; until then the in-memory entries serve.
                if let view = StreamIndexView.open(
                    path: directory.file(FileNames.streamIndex(previous.basePosition)), faults: options.storageFaults),
                   view.describes(previous) {
                    previous.streamIndex = view
                    previous.streamEntries = nil
                    previous.streamEntryCount = 0
                }
                snapshot.sealed.append(previous)
            }
            snapshot.active = opened
        }

        let current = self.snapshot()
        guard snapshot.endPosition > before || snapshot.count != current.count
            || snapshot.active?.mapping.length != current.active?.mapping.length
        else { return false }
        let published = snapshot
        self.published.withLock { $0 = published }
        notifier.notify()
        return snapshot.endPosition > before
    }

    /// The length of the file at `path` now, nil when it cannot be read.
    private func currentLength(of path: String) -> Int? {
        guard let file = try? FileHandle.open(path, readOnly: true, faults: options.storageFaults) else { return nil }
        return (try? file.length()).map { Int($0) }
    }

    /// Opens segment `base` as the last one, or returns nil when its writer
    /// is still creating it (shorter than a header, or the header still
    /// zeros): such a file is looked at again by the next refresh, instead of
    /// reading as damage.
    private func openIfReady(base: UInt64, opener: inout Opener) throws -> SegmentSnapshot? {
        let path = directory.file(FileNames.segment(base))
        var header = [UInt8](repeating: 0, count: SegmentHeader.size)
        let file = try FileHandle.open(path, readOnly: true, faults: options.storageFaults)
        var read: Result<Int, IOError> = .success(0)
        header.withUnsafeMutableBytes { raw in
            do throws(IOError) { read = .success(try file.read(into: raw, at: 0)) } catch { read = .failure(error) }
        }
        if try read.get() < SegmentHeader.size || header.allSatisfy({ $0 == 0 }) { return nil }
        return try opener.openSegment(
            base: base, isLast: true, nextBase: nil, metadata: metadata, marker: nil, tableCovered: nil).segment
    }
}
