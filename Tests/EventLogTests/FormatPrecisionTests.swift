import Foundation
import Testing
@_spi(EventLogTool) @testable import EventLog

/// Format.md, read to the letter: reserved fields, empty names, what follows
/// the last record, the checks of a batch frame in their order, unknown
/// stream markers, the placement of index entries, the settings in
/// `eventlog.meta`, and the read and write versions. Each test works on real
/// log files, changed by hand the way a foreign writer or damage would.
@Suite struct FormatPrecisionTests {
    /// A record over `Limits.maxRecordBytes` (Format.md §9) is refused by
    /// the append path, naming the limit, and nothing is written; and the
    /// bound itself (`Record.checkedBound`, which an import's writer uses too).
    @Test func aRecordOverTheRecordLimitIsRefusedEverywhere() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        let big = [UInt8](repeating: 1, count: Limits.maxRecordBytes + 1)
        #expect(throws: EventLogError.limitExceeded(limit: "record bytes", value: Limits.maxRecordBytes + 1 + 49, maximum: Limits.maxRecordBytes)) {
            try log.append([NewEvent(stream: "s", type: "T", data: big)])
        }
        #expect(log.endPosition == 0)
        try log.append([NewEvent(stream: "s", type: "T", data: [UInt8](repeating: 1, count: Limits.maxRecordBytes - 100))])
        #expect(log.endPosition == 1)
        try log.close()

        var bound: Int?
        do { bound = try Record.checkedBound(streamBytes: 1, typeBytes: 1, metadataLength: 0, dataBytes: Limits.maxRecordBytes + 1, keyBytes: nil) } catch {
            guard case .limitExceeded(let limit, _, let maximum) = error else { throw error }
            #expect(limit == "record bytes" && maximum == Limits.maxRecordBytes)
        }
        #expect(bound == nil)
        #expect(try Record.checkedBound(streamBytes: 1, typeBytes: 1, metadataLength: 0, dataBytes: 10, keyBytes: 3) == 49 + 10 + 4)
    }

    // MARK: Helpers

    /// Little-endian stores into a byte array.
    static func store<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, byte) in raw.enumerated() { bytes[offset + i] = byte }
        }
    }

    static func load<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as: T.Type) -> T {
        bytes.withUnsafeBytes { $0.loadLE(at: offset, as: T.self) }
    }

    /// Changes a file whose last 4 bytes are the CRC32C of everything before
    /// them (eventlog.meta, eventlog.start, clean-shutdown, index files, the
    /// stream index, the stream table) and writes the checksum again, so
    /// only the change itself can be refused.
    static func editSealed(_ path: String, _ edit: (inout [UInt8]) -> Void) {
        var bytes = Damage.read(path)
        edit(&bytes)
        store(CRC32C.checksum(Array(bytes[0..<(bytes.count - 4)])), into: &bytes, at: bytes.count - 4)
        Damage.write(path, bytes)
    }

    /// Changes a segment file, then writes its header checksum and every
    /// batch's chain and checksum again: the segment is as a writer would
    /// have written it, change included.
    static func editSegment(_ path: String, _ edit: (inout [UInt8]) -> Void) {
        var bytes = Damage.read(path)
        edit(&bytes)
        store(CRC32C.checksum(Array(bytes[0..<(SegmentHeader.size - 4)])), into: &bytes, at: SegmentHeader.size - 4)
        var previous: UInt32 = load(bytes, at: SegmentHeader.size - 4, as: UInt32.self)
        var offset = SegmentHeader.size
        while offset + BatchHeader.size <= bytes.count {
            let length = Int(load(bytes, at: offset, as: UInt32.self))
            guard length >= BatchHeader.size, offset + length <= bytes.count else { break }
            store(previous, into: &bytes, at: offset + 36)
            let crc = bytes.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress! + offset, count: length) }
            store(crc, into: &bytes, at: offset + 4)
            previous = crc
            offset += length
        }
        Damage.write(path, bytes)
    }

    struct RawRecord {
        var stream: String
        var type: String
        var data: [UInt8]
        var isMarker = false
        var version: UInt64 = 0
    }

    /// A batch frame as a writer would build it (codec 0), with `trailing`
    /// bytes after its last record, counted in the records length.
    static func frame(
        records: [RawRecord], base: UInt64, previousCRC: UInt32, firstTimestamp: Timestamp = 5_000_000,
        trailing: [UInt8] = [], attributes: UInt16 = 0
    ) -> [UInt8] {
        var buffer = ByteBuffer(capacity: 256)
        for (i, record) in records.enumerated() {
            let stream = Array(record.stream.utf8)
            let type = Array(record.type.utf8)
            stream.withUnsafeBytes { s in
                type.withUnsafeBytes { t in
                    record.data.withUnsafeBytes { d in
                        Record.encode(
                            into: &buffer, position: base + UInt64(i), firstTimestamp: firstTimestamp,
                            timestamp: firstTimestamp, version: record.version, isMarker: record.isMarker, stream: s, type: t,
                            metadata: nil, metadataLength: 0, data: d)
                    }
                }
            }
        }
        var area = Array(buffer.bytes)
        area += trailing
        var bytes = [UInt8](repeating: 0, count: BatchHeader.size) + area
        let header = BatchHeader(
            length: UInt32(bytes.count), crc: 0, basePosition: base, firstTimestamp: firstTimestamp,
            maxTimestamp: firstTimestamp, recordCount: UInt32(records.count), previousCRC: previousCRC,
            recordsLength: UInt32(area.count), attributes: attributes)
        bytes.withUnsafeMutableBytes { header.store($0.baseAddress!) }
        let crc = bytes.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress!, count: bytes.count) }
        store(crc, into: &bytes, at: 4)
        return bytes
    }

    /// Writes a frame of `records` after the last batch of `segment`, chained
    /// to it: a batch a writer could have appended. Returns its offset.
    @discardableResult
    static func appendFrame(
        to segment: String, records: [RawRecord], trailing: [UInt8] = []
    ) throws -> (offset: Int, base: UInt64) {
        let bytes = Damage.read(segment)
        let batches = Fixtures.batches(in: segment)
        let last = try #require(batches.last)
        let offset = last.offset + last.length
        let previous: UInt32 = load(bytes, at: last.offset + 4, as: UInt32.self)
        let base = last.base + UInt64(last.count)
        Damage.overwrite(segment, at: offset, with: frame(records: records, base: base, previousCRC: previous, trailing: trailing))
        return (offset, base)
    }

    /// A crashed log (no close) of `events` events in batches of 10, in one segment of 1 MiB.
    static func crashedLog(_ dir: TemporaryDirectory, events: Int = 100) throws -> String {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 1 << 20
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<events, batch: 10)
        _ = consume log
        return try #require(Fixtures.segments(dir).first)
    }

    /// A closed log of several 8 KiB segments, with a cursor.
    static func closedLog(_ dir: TemporaryDirectory, events: Int = 300) throws {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 8 << 10
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<events, batch: 10, size: 60)
        try log.createCursor("reader", at: .position(7))
        try log.close()
    }

    static var options: LogOptions { LogOptions(durability: .none) }

    /// The error `body` throws, as an `EventLogError` (nil, and an issue, when it throws none).
    static func thrown(
        _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
    ) -> EventLogError? {
        do {
            try body()
            Issue.record("expected an error", sourceLocation: sourceLocation)
            return nil
        } catch {
            guard let e = error as? EventLogError else {
                Issue.record("not an EventLogError: \(error)", sourceLocation: sourceLocation)
                return nil
            }
            return e
        }
    }

    /// Expects `body` to throw `corruption` naming `file` at `offset` with a reason containing `reason`.
    static func expectCorruption(
        file: String, offset: Int64, reason: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Void
    ) {
        let e = thrown(body, sourceLocation: sourceLocation)
        guard case .corruption(let f, let o, let r)? = e else {
            Issue.record("expected corruption, got \(String(describing: e))", sourceLocation: sourceLocation)
            return
        }
        #expect(f == file, sourceLocation: sourceLocation)
        #expect(o == offset, sourceLocation: sourceLocation)
        #expect(r.contains(reason), "\(r)", sourceLocation: sourceLocation)
    }

    static func expectUnsupported(
        found: Int, supported: Int, file: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) {
        let e = thrown(body, sourceLocation: sourceLocation)
        guard case .unsupportedFormatVersion(let f, let fo, let s)? = e else {
            Issue.record("expected unsupportedFormatVersion, got \(String(describing: e))", sourceLocation: sourceLocation)
            return
        }
        #expect(f == file && fo == found && s == supported, sourceLocation: sourceLocation)
    }

    static func expectInvalidArgument(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        let e = thrown(body, sourceLocation: sourceLocation)
        guard case .invalidArgument? = e else {
            Issue.record("expected invalidArgument, got \(String(describing: e))", sourceLocation: sourceLocation)
            return
        }
    }

    // MARK: 8. Read and write versions (§3, §12)

    @Test func aLogWrittenTodayStoresWriteVersionZeroAndOpens() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 20)
        let meta = Damage.read(dir.sub(FileNames.metadata))
        #expect(meta.count == LogMetadata.size)
        #expect(Self.load(meta, at: 8, as: UInt16.self) == FormatVersion.current)
        #expect(meta[10..<16].allSatisfy { $0 == 0 })
        // An explicit write version equal to the read version means the same as 0.
        Self.editSealed(dir.sub(FileNames.metadata)) { Self.store(FormatVersion.current, into: &$0, at: 10) }
        let log = try Log.open(at: dir.path, options: Self.options)
        #expect(log.endPosition == 20)
        try log.append(Fixtures.event(20))
        try log.close()
    }

    @Test func aHigherWriteVersionOpensReadOnlyOnly() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 40)
        let meta = dir.sub(FileNames.metadata)
        Self.editSealed(meta) { Self.store(FormatVersion.current + 1, into: &$0, at: 10) }
        // A leftover of an interrupted atomic write: a writer would remove it,
        // a refused open must not.
        #expect(FileManager.default.createFile(atPath: dir.sub("streams.table.tmp"), contents: Data([1, 2, 3])))
        let before = dir.files()

        // A writable open is refused, naming the write version, and writes nothing.
        Self.expectUnsupported(found: Int(FormatVersion.current) + 1, supported: Int(FormatVersion.current), file: meta) { _ = try Log.open(at: dir.path, options: Self.options) }
        var commits = LogOptions(durability: .none, readOnly: true)
        commits.allowsCursorCommits = true
        Self.expectUnsupported(found: Int(FormatVersion.current) + 1, supported: Int(FormatVersion.current), file: meta) { _ = try Log.open(at: dir.path, options: commits) }
        #expect(dir.files() == before)
        #expect(dir.files().contains(FileNames.cleanShutdown))
        #expect(dir.files().contains("streams.table.tmp"))

        // A read-only open reads it.
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
        #expect(try Fixtures.expectContent(log, count: 40))
        #expect(try log.cursorPosition("reader") == 7)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
        #expect(try Log.inspect(at: dir.path).endPosition == 40)
    }

    @Test func aHigherReadVersionIsRefusedEvenReadOnly() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 10)
        let meta = dir.sub(FileNames.metadata)
        Self.editSealed(meta) { Self.store(FormatVersion.current + 1, into: &$0, at: 8) }
        Self.expectUnsupported(found: Int(FormatVersion.current) + 1, supported: Int(FormatVersion.current), file: meta) {
            _ = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
        }
        Self.expectUnsupported(found: Int(FormatVersion.current) + 1, supported: Int(FormatVersion.current), file: meta) { _ = try Log.open(at: dir.path, options: Self.options) }
        #expect(try !Log.verify(at: dir.path).isSound)
    }

    @Test func metadataDecodingOfVersions() throws {
        var metadata = LogMetadata(logID: Array(repeating: 7, count: 16), createdAt: 1, segmentBytes: 4096, indexInterval: 4096, compression: .none)
        #expect(metadata.writeVersion == FormatVersion.current)
        let today = metadata.encode()
        #expect(today[10..<16].allSatisfy { $0 == 0 })
        #expect(try LogMetadata.decode(today, file: "m", writing: true) == metadata)
        metadata.storedWriteVersion = FormatVersion.current + 1
        let later = metadata.encode()
        #expect(try LogMetadata.decode(later, file: "m").writeVersion == FormatVersion.current + 1)
        Self.expectUnsupported(found: Int(FormatVersion.current) + 1, supported: Int(FormatVersion.current), file: "m") { _ = try LogMetadata.decode(later, file: "m", writing: true) }
    }

    // MARK: 7. The settings in eventlog.meta (§3)

    @Test func theIndexIntervalBindsTheOtherSettingsAreInformational() throws {
        let dir = TemporaryDirectory()
        var create = LogOptions(durability: .none, compression: .none)
        create.segmentBytes = 64 << 10
        create.indexInterval = 4096
        let first = try Log.open(at: dir.path, options: create)
        try Fixtures.append(first, 0..<50, batch: 10)
        try first.close()
        let meta = Damage.read(dir.sub(FileNames.metadata))

        // Reopened with other settings: new segments take the options' size,
        // new batches its compression; the index interval stays the log's.
        var reopen = LogOptions(durability: .none, compression: .lz4)
        reopen.segmentBytes = 16 << 10
        reopen.indexInterval = 64
        let log = try Log.open(at: dir.path, options: reopen)
        // Half random, half repeated: LZ4 saves enough to store it compressed, not so much that nothing rolls.
        var random = SplitMix64(seed: 7)
        for i in 0..<120 {
            try log.append((0..<4).map { _ in
                NewEvent(
                    stream: "s\(i % 3)", type: "T",
                    data: (0..<300).map { _ in UInt8(truncatingIfNeeded: random.next()) } + [UInt8](repeating: 0x41, count: 300))
            })
        }
        try log.close()

        #expect(Damage.read(dir.sub(FileNames.metadata)) == meta)
        let segments = Fixtures.segments(dir)
        #expect(segments.count >= 3)
        // The first segment kept its size; the ones rolled after the reopen have the options' size.
        #expect(Damage.read(segments[0]).count == 64 << 10)
        for segment in segments.dropFirst() { #expect(Damage.read(segment).count == 16 << 10) }
        // LZ4 batches although the log was created without compression.
        let codecs = segments.dropFirst().flatMap { path in
            let bytes = Damage.read(path)
            return Fixtures.batches(in: path).map { Self.load(bytes, at: $0.offset + 44, as: UInt16.self) & BatchHeader.codecMask }
        }
        #expect(codecs.contains(LZ4Units.codec))
        // verify rebuilds the indexes with the log's interval (4096) and finds them equal.
        let report = try Log.verify(at: dir.path)
        #expect(report.isSound, "\(report.problems)")
        // With an interval of 64 there would be an entry for nearly every batch.
        let full = segments[1]
        let (_, entries) = try IndexFile.decodeOffsetIndex(Damage.read(full.replacingOccurrences(of: ".segment", with: ".index")))
        #expect(entries.count < Fixtures.batches(in: full).count)
    }

    @Test func anImpossibleIndexIntervalIsCorruptionNotACrash() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 10)
        let meta = dir.sub(FileNames.metadata)
        Self.editSealed(meta) { Self.store(UInt32(0), into: &$0, at: 44) }
        Self.expectCorruption(file: meta, offset: 44, reason: "index interval") { _ = try Log.open(at: dir.path, options: Self.options) }
        #expect(try !Log.verify(at: dir.path).isSound)
    }

    // MARK: 1. Reserved fields (§12)

    @Test func reservedBytesOfTheMetadataAndStartFiles() throws {
        for offset in [12, 15, 49, 55] {
            let dir = TemporaryDirectory()
            try Self.closedLog(dir, events: 10)
            let meta = dir.sub(FileNames.metadata)
            Self.editSealed(meta) { $0[offset] = 0x20 }
            Self.expectCorruption(file: meta, offset: Int64(offset), reason: "reserved") {
                _ = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            }
            // A reader reads on with the segment headers' identity and reports the file (§10.2).
            let reader = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
            #expect(reader.recovery.damagedFiles.map(\.offset) == [Int64(offset)])
            #expect(reader.recovery.damagedFiles.first?.reason.contains("reserved") == true)
            try reader.close()
        }
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 10)
        let start = dir.sub(FileNames.logStart)
        Self.editSealed(start) { $0[11] = 1 }  // bytes 12–15 count segment rewrites (version 4)
        Self.expectCorruption(file: start, offset: 11, reason: "reserved") { _ = try Log.open(at: dir.path, options: Self.options) }
        #expect(try Log.verify(at: dir.path).problems.contains { $0.file == start && $0.offset == 11 })
    }

    @Test func reservedBytesOfASegmentHeader() throws {
        for (offset, value, reason) in [(12, UInt8(1), "reserved"), (56, 1, "reserved"), (59, 0x80, "reserved"), (10, 65, "header length")] {
            let dir = TemporaryDirectory()
            try Self.closedLog(dir)
            let segment = try #require(Fixtures.segments(dir).first)
            Self.editSegment(segment) { $0[offset] = value }
            Self.expectCorruption(file: segment, offset: Int64(offset), reason: reason) {
                _ = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
            }
            let problems = try Log.verify(at: dir.path).problems
            #expect(problems.contains { $0.file == segment && $0.offset == Int64(offset) }, "\(problems)")
        }
    }

    @Test func reservedBytesOfTheCursorJournalHeader() throws {
        for offset in [10, 40] {
            let dir = TemporaryDirectory()
            try Self.closedLog(dir, events: 20)
            let journal = dir.sub(FileNames.cursorJournal)
            var bytes = Damage.read(journal)
            bytes[offset] = 9
            Self.store(CRC32C.checksum(Array(bytes[0..<44])), into: &bytes, at: 44)
            Damage.write(journal, bytes)
            Self.expectCorruption(file: journal, offset: Int64(offset), reason: "reserved") {
                _ = try Log.open(at: dir.path, options: Self.options)
            }
        }
    }

    @Test func reservedFieldOfIndexFilesMakesThemUnusable() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir)
        let base: UInt64 = 0
        let offsetIndex = dir.sub(FileNames.offsetIndex(base))
        let timeIndex = dir.sub(FileNames.timeIndex(base))
        #expect(throws: Never.self) { try IndexFile.decodeOffsetIndex(Damage.read(offsetIndex)) }
        Self.editSealed(offsetIndex) { $0[45] = 1 }
        Self.editSealed(timeIndex) { $0[47] = 1 }
        do {
            _ = try IndexFile.decodeOffsetIndex(Damage.read(offsetIndex))
            Issue.record("an offset index with a reserved byte set was used")
        } catch {
            #expect(error.reason.contains("reserved"))
        }
        do {
            _ = try IndexFile.decodeTimeIndex(Damage.read(timeIndex))
            Issue.record("a time index with a reserved byte set was used")
        } catch {
            #expect(error.reason.contains("reserved"))
        }
        let problems = try Log.verify(at: dir.path).problems
        #expect(problems.contains { $0.file == offsetIndex && $0.reason.contains("reserved") }, "\(problems)")
        #expect(problems.contains { $0.file == timeIndex && $0.reason.contains("reserved") }, "\(problems)")
        // The open rebuilds them, like damaged ones.
        let log = try Log.open(at: dir.path, options: Self.options)
        #expect(log.recovery.rebuiltIndexes.contains(FileNames.offsetIndex(base)))
        #expect(try Fixtures.expectContent(log, count: 300))
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func reservedBytesOfTheCleanShutdownMarker() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 30)
        let marker = dir.sub(FileNames.cleanShutdown)
        #expect(CleanShutdownMarker.decode(Damage.read(marker)) != nil)
        Self.editSealed(marker) { $0[14] = 1 }
        #expect(CleanShutdownMarker.decode(Damage.read(marker)) == nil)
        let log = try Log.open(at: dir.path, options: Self.options)
        #expect(log.recovery.previousShutdown == .unclean)
        #expect(try Fixtures.expectContent(log, count: 30))
        try log.close()
    }

    @Test func reservedFieldsOfTheStreamIndexAndTable() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir)
        let base: UInt64 = 0
        let streamIndex = dir.sub(FileNames.streamIndex(base))
        let runs = dir.files().filter { FileNames.streamTableRunRange($0) != nil }
        try #require(runs.count == 1)
        let table = dir.sub(runs[0])
        #expect(StreamIndexView.inMemory(Damage.read(streamIndex), path: streamIndex) != nil)
        #expect(StreamTableRunView.inMemory(Damage.read(table), path: table) != nil)
        let intact = Damage.read(streamIndex)
        for offset in [10, 11, 56, 59] {
            // The stream index's header has its own checksum (bytes 60–63), written again.
            var bytes = intact
            bytes[offset] = 1
            Self.store(CRC32C.checksum(Array(bytes[0..<60])), into: &bytes, at: 60)
            Damage.write(streamIndex, bytes)
            #expect(StreamIndexView.inMemory(Damage.read(streamIndex), path: streamIndex) == nil, "reserved byte \(offset)")
        }
        for offset in [10, 11] {
            // A run's header has its own checksum (bytes 60–63), written again.
            var bytes = Damage.read(table)
            bytes[offset] = 2
            Self.store(CRC32C.checksum(Array(bytes[0..<60])), into: &bytes, at: 60)
            #expect(StreamTableRunView.inMemory(bytes, path: table) == nil, "reserved byte \(offset)")
        }
        Self.editSealed(table) { $0[24] = 2 }
        // Both are rebuilt: the streams read as before.
        let log = try Log.open(at: dir.path, options: Self.options)
        let events = try log.events(inStream: "stream-3")
        #expect(events.map(\.position) == Array(stride(from: UInt64(3), to: 300, by: 7)))
        #expect(try log.streamInfo("stream-3")?.currentVersion == UInt64(events.count - 1))
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func aReservedAttributeBitInTheMiddleIsCorruption() throws {
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir)
        let batches = Fixtures.batches(in: segment)
        let target = batches[5]
        Self.editSegment(segment) { $0[target.offset + 44] |= 0x20 }
        // The frame is whole and chained: only the reserved bit is wrong.
        let verdict = Damage.read(segment).withUnsafeBytes {
            BatchHeader.check($0, at: target.offset, end: $0.count, previousCRC: nil, expectedBase: nil)
        }
        guard case .invalid(let reason, _) = verdict else {
            Issue.record("a frame with a reserved attribute bit is \(verdict)")
            return
        }
        #expect(reason.contains("reserved"))
        // Valid frames follow without a zero sector between: corruption (§10 rule 2), nothing cut.
        Self.expectCorruption(file: segment, offset: Int64(target.offset), reason: "reserved") {
            _ = try Log.open(at: dir.path, options: Self.options)
        }
        #expect(Fixtures.batches(in: segment).count == 10)
        let problems = try Log.verify(at: dir.path).problems
        #expect(problems.contains { $0.file == segment && $0.offset == Int64(target.offset) && $0.reason.contains("reserved") }, "\(problems)")
    }

    @Test func aReservedAttributeBitOnTheLastBatchIsATornTail() throws {
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir)
        let last = try #require(Fixtures.batches(in: segment).last)
        Self.editSegment(segment) { $0[last.offset + 45] |= 0x80 }
        let log = try Log.open(at: dir.path, options: Self.options)
        #expect(log.recovery.tailCut?.offset == Int64(last.offset))
        #expect(log.recovery.tailCut?.reason.contains("reserved") == true)
        #expect(log.endPosition == last.base)
        try log.close()
    }

    @Test func syncedLagBytesAreNotReserved() throws {
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir)
        let batches = Fixtures.batches(in: segment)
        // A lag of 65,535 claims nothing this close to the start of the file.
        Self.editSegment(segment) { Self.store(UInt16.max, into: &$0, at: batches[4].offset + 46) }
        let log = try Log.open(at: dir.path, options: Self.options)
        #expect(log.endPosition == 100)
        #expect(try Fixtures.expectContent(log, count: 100))
        try log.close()
    }

    // MARK: 2. Empty stream and cursor names (§6, §9, §15)

    @Test func aRecordWithAnEmptyStreamNameIsCorruption() throws {
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir)
        let (offset, _) = try Self.appendFrame(to: segment, records: [RawRecord(stream: "", type: "T", data: [1, 2, 3])])
        // Decoding the record refuses it.
        let bytes = Damage.read(segment)
        let area = Array(bytes[(offset + BatchHeader.size)...].prefix(Int(Self.load(bytes, at: offset + 40, as: UInt32.self))))
        area.withUnsafeBytes { raw in
            var at = 0
            do throws(RecordDefect) {
                _ = try Record.decode(raw, at: &at, position: 100, firstTimestamp: 5_000_000, verify: true, types: .none)
                Issue.record("a record with an empty stream name decoded")
            } catch {
                #expect(error.reason == "empty stream name")
                #expect(error.offset == 0)
            }
        }
        // The open's stream replay reads it: corruption naming the file and the batch.
        Self.expectCorruption(file: segment, offset: Int64(offset), reason: "empty stream name") {
            _ = try Log.open(at: dir.path, options: Self.options)
        }
        let problems = try Log.verify(at: dir.path).problems
        #expect(problems.contains { $0.file == segment && $0.offset == Int64(offset + BatchHeader.size) && $0.reason.contains("empty stream name") }, "\(problems)")
    }

    @Test func writersRefuseEmptyNames() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options)
        Self.expectInvalidArgument { _ = try log.append(NewEvent(stream: "", type: "T", data: [1])) }
        Self.expectInvalidArgument { _ = try log.append([NewEvent(stream: "", type: "T", data: [1])], expecting: [:]) }
        Self.expectInvalidArgument { _ = try log.deleteStream("") }
        Self.expectInvalidArgument { _ = try log.truncateStream("", before: 1) }
        Self.expectInvalidArgument { _ = try log.createCursor("") }
        Self.expectInvalidArgument { try log.commitCursor("", position: 0) }
        Self.expectInvalidArgument { _ = try log.resetCursor("", to: .start) }
        #expect(log.endPosition == 0)
        try log.close()
        #expect(Fixtures.segments(dir).allSatisfy { Fixtures.batches(in: $0).isEmpty })
        #expect(Damage.read(dir.sub(FileNames.cursorJournal)).count <= CursorJournalHeader.size)
    }

    @Test func aCursorJournalRecordWithAnEmptyNameIsCorruption() throws {
        let dir = TemporaryDirectory()
        try Self.closedLog(dir, events: 20)
        let journal = dir.sub(FileNames.cursorJournal)
        let offset = Damage.read(journal).count
        var w = ByteWriter()
        CursorRecord(kind: .set, name: "", position: 3, timestamp: 1).encode(into: &w, layout: .v2)
        #expect(w.bytes[17] == 0)
        #expect(w.bytes.withUnsafeBytes { CursorRecord.checkedLength($0, at: 0, layout: .v2) } == CursorJournalLayout.v2.fixedBytes)
        Damage.overwrite(journal, at: offset, with: w.bytes)
        Self.expectCorruption(file: journal, offset: Int64(offset), reason: "empty name") {
            _ = try Log.open(at: dir.path, options: Self.options)
        }
        Self.expectCorruption(file: journal, offset: Int64(offset), reason: "empty name") {
            _ = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
        }
        // Nothing was cut: the record is still there.
        #expect(Damage.read(journal).count == offset + CursorJournalLayout.v2.fixedBytes)
    }

    // MARK: 3. What follows the last record (§6, "Records area")

    @Test func bytesAfterTheLastRecordAreReportedByVerify() throws {
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir)
        let (offset, base) = try Self.appendFrame(
            to: segment, records: [RawRecord(stream: "extra", type: "T", data: [9, 9])], trailing: [1, 2, 3, 4, 5])
        let problems = try Log.verify(at: dir.path).problems
        #expect(problems.contains {
            $0.file == segment && $0.offset == Int64(offset) && $0.reason.contains("5 bytes after its last record")
        }, "\(problems)")
        // Readers decode the counted records only (the frame is valid): the event reads.
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
        #expect(log.endPosition == base + 1)
        #expect(try log.event(at: base).data == [9, 9])
        try log.close()
        // Without the trailing bytes, verify finds nothing.
        let clean = TemporaryDirectory()
        let cleanSegment = try Self.crashedLog(clean)
        try Self.appendFrame(to: cleanSegment, records: [RawRecord(stream: "extra", type: "T", data: [9, 9])])
        #expect(try Log.verify(at: clean.path).isSound)
    }

    // MARK: 4. The checks of a batch frame, in order (§5)

    @Test func frameChecksInTheOrderTheSpecListsThem() throws {
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir, events: 20)
        let file = Damage.read(segment)
        let first = try #require(Fixtures.batches(in: segment).first)
        let headerCRC: UInt32 = Self.load(file, at: SegmentHeader.size - 4, as: UInt32.self)
        let original = Array(file[first.offset..<(first.offset + first.length)])

        /// The verdict on the first frame after `edit`, resealed (CRC written again) unless `reseal` is false.
        func verdict(
            reseal: Bool = true, previousCRC: UInt32? = nil, expectedBase: UInt64? = 0, endCut: Int = 0,
            _ edit: (inout [UInt8]) -> Void = { _ in }
        ) -> String {
            var frame = original
            edit(&frame)
            if reseal {
                let length = min(Int(Self.load(frame, at: 0, as: UInt32.self)), frame.count)
                if length >= 8 {
                    let crc = frame.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress!, count: length) }
                    Self.store(crc, into: &frame, at: 4)
                }
            }
            let bytes = [UInt8](repeating: 0, count: 64) + frame + [UInt8](repeating: 0, count: 64)
            let result = bytes.withUnsafeBytes {
                BatchHeader.check(
                    $0, at: 64, end: 64 + frame.count - endCut, previousCRC: previousCRC ?? headerCRC, expectedBase: expectedBase)
            }
            switch result {
            case .valid: return "valid"
            case .endOfData: return "end"
            case .invalid(let reason, _): return reason
            case .unreadable: return "unreadable"
            }
        }
        let codec = 44
        #expect(verdict() == "valid")
        // 2–3: zeros are the end of the data; anything else there is not.
        #expect(verdict { $0 = [UInt8](repeating: 0, count: $0.count) } == "end")
        #expect(verdict(reseal: false) { $0 = [0, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: $0.count - 8) } == "batch length is 0")
        // 4: length bounds.
        #expect(verdict { Self.store(UInt32(47), into: &$0, at: 0) }.contains("impossible"))
        #expect(verdict { Self.store(UInt32(Limits.maxBatchBytes + 1), into: &$0, at: 0) }.contains("impossible"))
        // 5: the frame must fit.
        #expect(verdict(endCut: 1).contains("runs past the end"))
        // 6: the CRC.
        #expect(verdict(reseal: false) { $0[60] ^= 1 } == "batch checksum mismatch")
        // 7: the chain; 8: the base position.
        #expect(verdict(previousCRC: headerCRC ^ 1).contains("chain"))
        #expect(verdict(expectedBase: 1).contains("base position"))
        // 9: fields within limits and a known codec.
        #expect(verdict { Self.store(UInt32(0), into: &$0, at: 32) } == "batch header fields out of range")
        #expect(verdict { Self.store(UInt32(Limits.maxBatchRecords + 1), into: &$0, at: 32) } == "batch header fields out of range")
        #expect(verdict { Self.store(UInt32(Limits.maxBatchBytes + 1), into: &$0, at: 40) } == "batch header fields out of range")
        #expect(verdict { Self.store(UInt16(4), into: &$0, at: codec) } == "batch header fields out of range")
        #expect(verdict { Self.store(UInt16(7), into: &$0, at: codec) } == "batch header fields out of range")
        // Codec 3 (§5.4) is known; its dictionary is checked when its records are read.
        #expect(verdict { Self.store(UInt16(3), into: &$0, at: codec) } == "valid")
        // A base position whose end position (base + count) would pass 2^64 - 1: found by fuzzing
        // (`scripts/fuzz.sh log`), where the tail judgement trapped on a range ending before it began.
        let count = UInt64(Self.load(original, at: 32, as: UInt32.self))
        #expect(verdict(expectedBase: nil) { Self.store(UInt64.max - count + 1, into: &$0, at: 8) } == "batch header fields out of range")
        #expect(verdict(expectedBase: nil) { Self.store(UInt64.max, into: &$0, at: 8) } == "batch header fields out of range")
        #expect(verdict(expectedBase: nil) { Self.store(UInt64.max - count, into: &$0, at: 8) } == "valid")
        // 10: reserved attribute bits, each of 5–15 (bit 3 marks a sealed batch, §5.1; bit 4 a
        // type table, §5.3, which only a batch stored as is may have).
        for bit in 5..<16 {
            #expect(verdict { Self.store(UInt16(1) << UInt16(bit), into: &$0, at: codec) } == "batch attributes have reserved bits set")
        }
        #expect(verdict { Self.store(TypeTable.attribute, into: &$0, at: codec) } == "valid")
        for other: UInt16 in [1, 2, 3, BatchHeader.sealedFlag] {
            #expect(verdict { Self.store(TypeTable.attribute | other, into: &$0, at: codec) } == "a compressed or sealed batch has a type table")
        }
        // 11: an uncompressed area's length.
        #expect(verdict { Self.store(Self.load($0, at: 40, as: UInt32.self) - 1, into: &$0, at: 40) }.contains("uncompressed records length"))
        // The synced lag (bytes 46–47) is not checked.
        #expect(verdict { Self.store(UInt16(12345), into: &$0, at: 46) } == "valid")

        // The order: with two faults, the earlier check decides.
        #expect(verdict(reseal: false) { $0[codec] |= 0x08 } == "batch checksum mismatch")
        #expect(verdict(previousCRC: 1) { Self.store(UInt32(0), into: &$0, at: 32) }.contains("chain"))
        #expect(verdict(expectedBase: 9) { $0[codec] |= 0x08 }.contains("base position"))
        #expect(verdict(previousCRC: 1, expectedBase: 9).contains("chain"))
        #expect(verdict { Self.store(UInt16(0x0C), into: &$0, at: codec) } == "batch header fields out of range")
        // 10: codec 3 only unsealed.
        #expect(verdict { Self.store(UInt16(0x0B), into: &$0, at: codec) } == "a sealed batch is compressed against its segment's dictionary")
        #expect(verdict {
            $0[codec] |= 0x20
            Self.store(Self.load($0, at: 40, as: UInt32.self) + 1, into: &$0, at: 40)
        } == "batch attributes have reserved bits set")
        // Without a chain or an expected base (a reader of published data), those checks are skipped.
        let alone = Damage.read(segment).withUnsafeBytes {
            BatchHeader.check($0, at: first.offset, end: $0.count, previousCRC: nil, expectedBase: nil)
        }
        guard case .valid = alone else {
            Issue.record("the frame alone is \(alone)")
            return
        }
    }

    // MARK: 5. Unknown stream markers (§13.1)

    @Test func anUnknownStreamMarkerIsCorruption() throws {
        let cases: [(String, [UInt8])] = [("$renamed", [1]), ("$deleted", [2]), ("$deleted", []), ("$truncated", [0x80]), ("Plain", [])]
        for (type, data) in cases {
            let dir = TemporaryDirectory()
            let segment = try Self.crashedLog(dir)
            let (offset, _) = try Self.appendFrame(
                to: segment, records: [RawRecord(stream: "stream-1", type: type, data: data, isMarker: true, version: 15)])
            Self.expectCorruption(file: segment, offset: Int64(offset), reason: "unknown stream marker") {
                _ = try Log.open(at: dir.path, options: Self.options)
            }
            let problems = try Log.verify(at: dir.path).problems
            #expect(problems.contains { $0.file == segment && $0.reason.contains("unknown stream marker") }, "\(type) \(data): \(problems)")
        }
        // A marker of a known type, built the same way, is read: a soft deletion.
        let dir = TemporaryDirectory()
        let segment = try Self.crashedLog(dir)
        try Self.appendFrame(to: segment, records: [RawRecord(stream: "stream-1", type: "$deleted", data: [0], isMarker: true, version: 15)])
        let log = try Log.open(at: dir.path, options: Self.options)
        #expect(try log.events(inStream: "stream-1").isEmpty)
        #expect(try log.events(inStream: "stream-2").count == 14)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    // MARK: 6. Placement of index entries (§7)

    /// Format.md §7's placement procedure, transcribed from the spec.
    static func specIndexes(segment path: String, interval: Int) throws -> (offsets: [(UInt32, UInt32)], times: [(Int64, UInt32, UInt32)]) {
        let bytes = Damage.read(path)
        let segmentBase: UInt64 = load(bytes, at: 32, as: UInt64.self)
        var offsets: [(UInt32, UInt32)] = []
        var times: [(Int64, UInt32, UInt32)] = []
        var sinceOffset = Int.max
        var sinceTime = Int.max
        var runningMax = Int64.min
        for batch in Fixtures.batches(in: path) {
            let o = batch.offset
            let length = batch.length
            let r = UInt32(batch.base - segmentBase)
            if sinceTime >= 8 * interval {
                times.append((runningMax, r, UInt32(o)))
                sinceTime = 0
            }
            sinceTime += length
            runningMax = max(runningMax, load(bytes, at: o + 24, as: Int64.self))
            let codec = load(bytes, at: o + 44, as: UInt16.self) & 7
            let inside = codec == 0 && length > interval
            if sinceOffset < interval && !inside {
                sinceOffset += length
                continue
            }
            offsets.append((r, UInt32(o)))
            if !inside {
                sinceOffset = length
                continue
            }
            var since = 48
            var at = 0
            var p = r
            let recordsLength = Int(load(bytes, at: o + 40, as: UInt32.self))
            let area = Array(bytes[(o + 48)..<(o + 48 + recordsLength)])
            while p < r + UInt32(batch.count) && at < recordsLength {
                if since >= interval && p != r {
                    offsets.append((p, UInt32(o + 48 + at) | 0x8000_0000))
                    since = 0
                }
                var end = at
                let body = try #require(area.withUnsafeBytes { Varint.read($0, &end) })
                let n = end - at + Int(body)
                since += n
                at += n
                p += 1
            }
            sinceOffset = since
        }
        return (offsets, times)
    }

    @Test func indexEntriesArePlacedAsThePseudoCodeSays() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none, compression: .lz4)
        options.segmentBytes = 256 << 10
        options.indexInterval = 512
        let log = try Log.open(at: dir.path, options: options)
        var random = SplitMix64(seed: 42)
        for i in 0..<300 {
            // Small and large batches, compressible (stored LZ4) and random (stored as is).
            let count = [1, 3, 40, 2, 17][i % 5]
            let size = [20, 300, 90][i % 3]
            let compressible = i % 4 == 0
            let events = (0..<count).map { k in
                NewEvent(
                    stream: "s\((i + k) % 5)", type: "T",
                    data: (0..<size).map { _ in compressible ? 0x61 : UInt8(truncatingIfNeeded: random.next()) },
                    timestamp: 1_000_000 + Int64((i * 37 + k * 11) % 500))
            }
            try log.append(events)
        }
        try log.close()
        let segments = Fixtures.segments(dir)
        #expect(segments.count >= 2)
        var sawInBatch = false
        var sawCompressed = false
        for path in segments {
            let stem = String(path.dropLast(".segment".count))
            let (_, offsets) = try IndexFile.decodeOffsetIndex(Damage.read(stem + ".index"))
            let (_, times) = try IndexFile.decodeTimeIndex(Damage.read(stem + ".timeindex"))
            let spec = try Self.specIndexes(segment: path, interval: 512)
            #expect(offsets.count == spec.offsets.count, "\(path)")
            #expect(zip(offsets, spec.offsets).allSatisfy { $0.relativePosition == $1.0 && $0.offset == $1.1 }, "\(path)")
            #expect(times.count == spec.times.count, "\(path)")
            #expect(zip(times, spec.times).allSatisfy {
                $0.maxTimestampBefore == $1.0 && $0.relativePosition == $1.1 && $0.offset == $1.2
            }, "\(path)")
            sawInBatch = sawInBatch || offsets.contains { $0.isInBatch }
            let bytes = Damage.read(path)
            sawCompressed = sawCompressed || Fixtures.batches(in: path).contains { Self.load(bytes, at: $0.offset + 44, as: UInt16.self) == LZ4Units.codec }
        }
        #expect(sawInBatch)
        #expect(sawCompressed)
    }
}
