import Foundation
import Testing
@testable import EventLog

/// LZ4 units compressed against their segment's dictionary (codec 3,
/// Format.md §5.4): which batches the writer compresses so (every batch of
/// a segment but its first, also after a reopen), reads of every kind that
/// return what was appended, a smaller log than units alone, damage to the
/// dictionary's batch or a batch recorded against another dictionary
/// reported as corruption (the same on a retry), and scavenging's and
/// merging's copies, which a new first batch must not make unreadable.
@Suite struct LZ4DictionaryTests {
    static func options(segmentBytes: Int = 32 << 10) -> LogOptions {
        var options = LZ4UnitTests.options(segmentBytes: segmentBytes)
        options.dictionaryUnitBytes = LZ4Units.dictionaryTargetBytes
        return options
    }

    static func events(_ range: Range<Int>) -> [NewEvent] { range.map { LZ4UnitTests.event($0) } }

    /// Appends `range` in batches of `batch` events.
    static func append(_ log: Log, _ range: Range<Int>, batch: Int = 40) throws {
        for first in stride(from: range.lowerBound, to: range.upperBound, by: batch) {
            try log.append(events(first..<min(first + batch, range.upperBound)))
        }
    }

    /// Each batch of `segment`: its offset and header.
    static func headers(_ segment: String) -> [(offset: Int, header: BatchHeader)] {
        let bytes = Damage.read(segment)
        return Fixtures.batches(in: segment).map { batch in
            (batch.offset, bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + batch.offset) })
        }
    }

    /// Every event of the log read back by scan, by position and by stream
    /// equals `expected` (positions from 0).
    static func expectReads(_ log: Log, _ expected: [NewEvent], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scanned = try log.events(from: 0)
        #expect(scanned.map(\.data) == expected.map(\.data), sourceLocation: sourceLocation)
        for p in stride(from: 0, to: expected.count, by: 7) {
            #expect(try log.event(at: UInt64(p)).data == expected[p].data, sourceLocation: sourceLocation)
        }
        for s in 0..<LZ4UnitTests.streams {
            let name = "s-\(s)"
            #expect(
                try log.events(inStream: name).map(\.data) == expected.filter { $0.stream == name }.map(\.data),
                sourceLocation: sourceLocation)
        }
    }

    /// Point reads of codec 3 units decompress into a staged copy of the
    /// segment's dictionary that the segment lends (`SegmentDictionary.lendCopy`):
    /// readers on several threads, each moving between segments, read what
    /// was appended, so no two of them were ever lent the same copy; the
    /// segment keeps at most `spareCopies` copies once they are given back.
    @Test func concurrentPointReadsAcrossSegmentsShareNoStagedCopy() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        try Self.append(log, 0..<1500)
        let expected = Self.events(0..<1500)
        #expect(Fixtures.segments(dir).count >= 4)
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for t in 0..<4 {
            group.enter()
            Thread {
                var state = UInt64(t + 1)
                for _ in 0..<2000 {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let p = Int(state >> 33) % expected.count
                    do {
                        let data = try log.withEvent(at: UInt64(p)) { Array($0.data) }
                        if data != expected[p].data { failures.withLock { $0.append("position \(p): other bytes") } }
                    } catch {
                        failures.withLock { $0.append("position \(p): \(error)") }
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(5) })")

        // One segment's lender: nothing to lend before its dictionary is read;
        // copies lent together are distinct, hold the dictionary, and at most
        // `spareCopies` given back are kept.
        let lender = SegmentDictionary()
        #expect(lender.lendCopy() == nil)
        let segment = try #require(Fixtures.segments(dir).sorted().first)
        let bytes = Damage.read(segment)
        let dictionary = try bytes.withUnsafeBytes { try lender.dictionary(in: $0, path: segment, forBatchAt: nil) }
        let copies = (0..<(SegmentDictionary.spareCopies + 2)).compactMap { _ in lender.lendCopy() }
        #expect(copies.count == SegmentDictionary.spareCopies + 2)
        #expect(Set(copies.map { ObjectIdentifier($0) }).count == copies.count)
        for copy in copies {
            #expect(Array(copy.dictionary.bytes) == Array(dictionary.bytes) && copy.dictionary.checksum == dictionary.checksum)
            #expect(copy.output == UnsafeMutableRawPointer(mutating: copy.dictionary.bytes.baseAddress!) + dictionary.bytes.count)
        }
        for copy in copies { lender.takeBack(copy) }
        let again = (0..<(SegmentDictionary.spareCopies + 1)).compactMap { _ in lender.lendCopy() }
        let kept = again.filter { copy in copies.contains { $0 === copy } }.count
        #expect(kept == SegmentDictionary.spareCopies)
        try log.close()
    }

    /// Checks that every segment of `dir` (4 or more) has its first batch
    /// in LZ4 units alone and every later batch against the dictionary that
    /// first batch gives, recording that dictionary's checksum (the first
    /// 16 KiB of its records, decompressed); returns how many later batches.
    static func expectDictionaryLayout(_ dir: TemporaryDirectory, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let segments = Fixtures.segments(dir).sorted()
        #expect(segments.count >= 4, sourceLocation: sourceLocation)
        var dictionaryBatches = 0
        for segment in segments {
            let headers = Self.headers(segment)
            guard let first = headers.first else { continue }
            #expect(!first.header.usesSegmentDictionary, "\(segment): the first batch gives the dictionary", sourceLocation: sourceLocation)
            #expect(first.header.holdsLZ4Units, sourceLocation: sourceLocation)
            // The checksum each later batch records is that of the first
            // 16 KiB of the first batch's records, decompressed.
            let bytes = Damage.read(segment)
            let expected: UInt32 = try bytes.withUnsafeBytes { raw in
                let stored = UnsafeRawBufferPointer(
                    rebasing: raw[(first.offset + BatchHeader.size)..<(first.offset + Int(first.header.length))])
                var area = [UInt8](repeating: 0, count: Int(first.header.recordsLength))
                try area.withUnsafeMutableBytes { try LZ4Units.decompress(stored, of: first.header, into: $0.baseAddress!) }
                return CRC32C.checksum(Array(area.prefix(LZ4Dictionary.maxBytes)))
            }
            for (offset, header) in headers.dropFirst() {
                #expect(header.usesSegmentDictionary, "\(segment) at \(offset)", sourceLocation: sourceLocation)
                #expect(bytes.withUnsafeBytes { $0.loadLE(at: offset + BatchHeader.size, as: UInt32.self) } == expected, sourceLocation: sourceLocation)
                dictionaryBatches += 1
            }
        }
        return dictionaryBatches
    }

    /// An import compresses as a writer does (Format.md §5.4): each
    /// segment's first batch alone, every batch after it against the
    /// dictionary that first batch gives, with its checksum; the imported log reads back
    /// by scan, position and stream, and `verify` finds nothing.
    @Test func anImportCompressesAgainstEachSegmentsDictionary() throws {
        let source = TemporaryDirectory()
        let log = try Log.open(at: source.path, options: Self.options())
        try Self.append(log, 0..<1500)
        let exported = try log.events(from: 0)
        try log.close()

        let dir = TemporaryDirectory()
        let importer = try LogImporter(at: dir.path, logID: UUID(), startPosition: 0, options: Self.options())
        for first in stride(from: 0, to: exported.count, by: 40) {
            try importer.beginBatch(at: exported[first].position, firstTimestamp: exported[first].timestamp)
            for event in exported[first..<min(first + 40, exported.count)] { try importer.appendRecord(event, isMarker: false) }
            try importer.endBatch()
        }
        try importer.finish(endPosition: UInt64(exported.count), streams: nil)

        #expect(try Self.expectDictionaryLayout(dir) > 20)
        let imported = try Log.open(at: dir.path, options: Self.options())
        try Self.expectReads(imported, Self.events(0..<1500))
        try imported.close()
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.isEmpty, "\(report.problems)")
    }

    @Test func everyBatchButASegmentsFirstUsesItsDictionary() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        try Self.append(log, 0..<1500)
        try Self.expectReads(log, Self.events(0..<1500))
        try log.close()

        #expect(try Self.expectDictionaryLayout(dir) > 10)

        // Reopened: reads, and a writer that loads the active segment's
        // dictionary from its first batch and goes on with it.
        let writer = try Log.open(at: dir.path, options: Self.options())
        try Self.expectReads(writer, Self.events(0..<1500))
        let active = Fixtures.segments(dir).sorted().last!
        let before = Self.headers(active).count
        try Self.append(writer, 1500..<1540)
        try writer.close()
        let after = Self.headers(active)
        if after.count > before && before > 0 { #expect(after[before].header.usesSegmentDictionary) }
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        try Self.expectReads(reader, Self.events(0..<1540))
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// The same events, with and without dictionaries: smaller on disk with
    /// them, and units of about `dictionaryUnitBytes`.
    @Test func dictionaryUnitsAreSmallerOnDiskThanUnitsAlone() throws {
        func dataBytes(_ options: LogOptions) throws -> Int {
            let dir = TemporaryDirectory()
            let log = try Log.open(at: dir.path, options: options)
            try Self.append(log, 0..<3000, batch: 100)
            try log.close()
            return Fixtures.segments(dir).reduce(0) { sum, segment in
                sum + Fixtures.batches(in: segment).reduce(0) { $0 + $1.length }
            }
        }
        var alone = Self.options(segmentBytes: 1 << 20)
        alone.dictionaryUnitBytes = 0
        alone.compressionUnitBytes = 1 << 10
        let withDictionary = try dataBytes(Self.options(segmentBytes: 1 << 20))
        let withoutDictionary = try dataBytes(alone)
        #expect(withDictionary * 20 < withoutDictionary * 19, "\(withDictionary) against \(withoutDictionary)")
    }

    /// Damage to a segment's first batch: its own reads fail, and so do
    /// those of the batches compressed against its dictionary, naming the
    /// file and an offset, the same on a retry; verify finds it.
    @Test func damageToTheDictionarysBatchFailsTheBatchesThatNeedIt() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        try Self.append(log, 0..<1500)
        try log.close()
        let segment = Fixtures.segments(dir).sorted()[1]
        let headers = Self.headers(segment)
        let first = headers[0]
        // A byte of the first batch's first unit block.
        Damage.flipBit(segment, at: first.offset + Int(first.header.length) - 20)

        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        let later = headers[2].header.basePosition
        var messages: [String] = []
        for _ in 0..<2 {
            do {
                _ = try reader.event(at: later)
                Issue.record("a batch compressed against a damaged dictionary was read")
            } catch let error as EventLogError {
                guard case .corruption(let file, _, _) = error else { Issue.record("\(error)"); return }
                #expect(file == segment)
                messages.append("\(error)")
            }
        }
        #expect(messages.count == 2 && messages[0] == messages[1])
        #expect(throws: EventLogError.self) { _ = try reader.events(from: headers[1].header.basePosition) }
        // Another segment reads on.
        let other = Self.headers(Fixtures.segments(dir).sorted()[2])[1].header.basePosition
        #expect(try reader.event(at: other).data == LZ4UnitTests.event(Int(other)).data)
        #expect(!(try Log.verify(at: dir.path).isSound))
    }

    /// A batch whose recorded dictionary checksum is not its segment's (as
    /// a copy into another file would be, were it not compressed again) is
    /// refused, even with its frame checksum made right: never decompressed
    /// against the wrong bytes.
    @Test func aBatchRecordedAgainstAnotherDictionaryIsRefused() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        try Self.append(log, 0..<600)
        try log.close()
        let segment = Fixtures.segments(dir).sorted()[0]
        let target = Self.headers(segment)[1]
        #expect(target.header.usesSegmentDictionary)
        var bytes = Damage.read(segment)
        bytes[target.offset + BatchHeader.size] ^= 0x01
        let length = Int(target.header.length)
        let crc = bytes.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress! + target.offset, count: length) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[target.offset + 4 + i] = $0[i] } }
        Damage.write(segment, bytes)

        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        for _ in 0..<2 {
            #expect {
                _ = try reader.event(at: target.header.basePosition)
            } throws: { error in
                "\(error)".contains("dictionary with checksum")
            }
        }
        #expect(throws: EventLogError.self) { _ = try reader.events(from: 0) }
        let report = try Log.verify(at: dir.path)
        #expect(!report.isSound)
        #expect(report.problems.contains { $0.reason.contains("dictionary with checksum") })
    }

    /// Scavenging rewrites segments whose first batch may go (here cut into
    /// runs of 2 or 3 events, too small to give a dictionary: the copies are
    /// codec 2). A merge puts later segments' batches behind another first
    /// batch: theirs are compressed again against the first segment's
    /// dictionary. Every event reads back.
    @Test func scavengedAndMergedCopiesReadBack() throws {
        let dir = TemporaryDirectory()
        // Small segments of several batches each: rolled by age.
        var options = Self.options(segmentBytes: 1 << 20)
        options.checkpointBytes = 4096
        options.segmentMaxAge = .milliseconds(40)
        let log = try Log.open(at: dir.path, options: options)
        for group in 0..<8 {
            try Self.append(log, (group * 150)..<((group + 1) * 150), batch: 30)
            Thread.sleep(forTimeInterval: 0.06)
        }
        try log.close()
        #expect(Fixtures.segments(dir).count >= 6)

        let merger = try Log.open(at: dir.path, options: Self.options(segmentBytes: 1 << 20))
        let result = try merger.compact()  // nothing to scavenge: merges only
        #expect(result.segmentsMerged > 1)
        try Self.expectReads(merger, Self.events(0..<1200))
        try merger.close()
        let merged = Fixtures.segments(dir).sorted()
        let kinds = merged.flatMap { Self.headers($0).dropFirst().map(\.header.usesSegmentDictionary) }
        #expect(kinds.filter { $0 }.count > 10, "merged segments keep codec 3 batches")
        #expect(try Log.verify(at: dir.path).isSound)

        // Scavenging: a stream's early events go, so first batches change.
        let scavenger = try Log.open(at: dir.path, options: Self.options(segmentBytes: 1 << 20))
        _ = try scavenger.truncateStream("s-0", before: 100)
        _ = try scavenger.truncateStream("s-3", before: 100)
        let scavenged = try scavenger.compact()
        #expect(scavenged.segmentsRewritten > 0)
        let expected = Self.events(0..<1200)
        let kept = try scavenger.events(from: 0)
        #expect(kept.count < expected.count)
        for event in kept where event.position < 1200 { #expect(event.data == expected[Int(event.position)].data) }  // (the truncations appended markers after)
        for s in [1, 2, 4] {
            #expect(try scavenger.events(inStream: "s-\(s)").map(\.data) == expected.filter { $0.stream == "s-\(s)" }.map(\.data))
        }
        try scavenger.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A scavenged segment whose first batch went whole: the new file's
    /// first batch (the old second) gives it a dictionary of its own, and
    /// the batches after it are compressed against that one.
    @Test func aScavengedSegmentGetsADictionaryOfItsOwn() throws {
        let dir = TemporaryDirectory()
        var options = Self.options(segmentBytes: 32 << 10)
        options.checkpointBytes = 4096
        let log = try Log.open(at: dir.path, options: options)
        // The log's first batch holds one stream, which a truncation removes whole.
        try log.append((0..<30).map { NewEvent(stream: "gone", type: "T", data: LZ4UnitTests.event($0).data) })
        try Self.append(log, 30..<1200, batch: 30)
        _ = try log.truncateStream("gone", before: 30)
        #expect(try log.compact().segmentsRewritten > 0)
        let expected = Self.events(0..<1200)
        #expect(try log.events(from: 30).filter { $0.position < 1200 }.map(\.data) == expected[30...].map(\.data))
        for s in 0..<LZ4UnitTests.streams {
            let name = "s-\(s)"
            #expect(try log.events(inStream: name).map(\.data) == expected[30...].filter { $0.stream == name }.map(\.data))
        }
        try log.close()

        let first = Fixtures.segments(dir).sorted()[0]
        #expect(try Log.inspect(at: dir.path).segments.first?.isRewritten == true)
        let headers = Self.headers(first).map(\.header)
        #expect(headers.first?.basePosition == 30)
        #expect(headers.first.map { $0.codecValue == LZ4Units.codec } ?? false)
        #expect(headers.count > 2 && headers.dropFirst().allSatisfy(\.usesSegmentDictionary), "\(headers.map(\.codecValue))")
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// No dictionary where none fits: a segment whose first batch holds
    /// less than `LZ4Dictionary.minBytes` of records, an encrypted log (its
    /// batches are sealed), `dictionaryUnitBytes` 0.
    @Test func noDictionaryWhereNoneFits() throws {
        func codecs(_ options: LogOptions, firstBatch: Int) throws -> [UInt16] {
            let dir = TemporaryDirectory()
            let log = try Log.open(at: dir.path, options: options)
            try log.append(Self.events(0..<firstBatch))
            try Self.append(log, firstBatch..<(firstBatch + 200))
            try Self.expectReads(log, Self.events(0..<(firstBatch + 200)))
            try log.close()
            return Fixtures.segments(dir).sorted().flatMap { Self.headers($0).map(\.header.codecValue) }
        }
        let small = try codecs(Self.options(segmentBytes: 1 << 20), firstBatch: 1)
        #expect(!small.contains(LZ4Units.dictionaryCodec) && small.dropFirst().allSatisfy { $0 == LZ4Units.codec }, "\(small)")
        var off = Self.options(segmentBytes: 1 << 20)
        off.dictionaryUnitBytes = 0
        let none = try codecs(off, firstBatch: 40)
        #expect(none.allSatisfy { $0 == LZ4Units.codec }, "\(none)")
        #expect(try codecs(Self.options(segmentBytes: 1 << 20), firstBatch: 40).dropFirst().allSatisfy { $0 == LZ4Units.dictionaryCodec })

        var encrypted = Self.options(segmentBytes: 1 << 20)
        encrypted.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: [UInt8](repeating: 7, count: 32)), scope: .log)
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: encrypted)
        try Self.append(log, 0..<200)
        try Self.expectReads(log, Self.events(0..<200))
        try log.close()
        let sealed = Fixtures.segments(dir).flatMap { Self.headers($0).map(\.header) }
        #expect(sealed.allSatisfy { $0.isSealed && !$0.usesSegmentDictionary })
    }

    /// A version 10 LZ4 log (codec 2 only): a writer upgrades it, and its
    /// next batches in the same segment are compressed against a dictionary
    /// taken from that segment's first batch, written by version 10.
    @Test func aVersion10LogIsUpgradedAndItsSegmentGainsADictionary() throws {
        let dir = TemporaryDirectory()
        var old = Self.options(segmentBytes: 1 << 20)
        old.dictionaryUnitBytes = 0
        let writer10 = try Log.open(at: dir.path, options: old)
        try Self.append(writer10, 0..<200)
        try writer10.close()
        try Fixtures.setReadVersion(10, in: dir)

        let writer = try Log.open(at: dir.path, options: Self.options(segmentBytes: 1 << 20))
        #expect(writer.recovery.upgradedFromVersion == 10)
        try Self.append(writer, 200..<400)
        try writer.close()
        let meta = dir.sub(FileNames.metadata)
        #expect(try LogMetadata.decode(Damage.read(meta), file: meta).readVersion == FormatVersion.current)
        let headers = Fixtures.segments(dir).flatMap { Self.headers($0).map(\.header) }
        #expect(headers.filter { $0.basePosition < 200 }.allSatisfy { $0.codecValue == LZ4Units.codec })
        #expect(headers.filter { $0.basePosition >= 200 }.allSatisfy { $0.usesSegmentDictionary })
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        try Self.expectReads(reader, Self.events(0..<400))
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// The frame checks: a sealed batch may not use a dictionary, and a
    /// segment's first batch cannot use its own.
    @Test func impossibleDictionaryBatchesAreCorruption() throws {
        var header = BatchHeader(
            length: 100, crc: 0, basePosition: 0, firstTimestamp: 0, maxTimestamp: 0, recordCount: 1, previousCRC: 0,
            recordsLength: 200, attributes: LZ4Units.dictionaryCodec | BatchHeader.sealedFlag, syncedLag: 0)
        var frame = [UInt8](repeating: 0, count: 100)
        frame.withUnsafeMutableBytes { header.store($0.baseAddress!) }
        header.crc = frame.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress!, count: 100) }
        frame.withUnsafeMutableBytes { header.store($0.baseAddress!) }
        let check = frame.withUnsafeBytes { BatchHeader.check($0, at: 0, end: 100, previousCRC: nil, expectedBase: nil) }
        guard case .invalid(let reason, _) = check else { Issue.record("\(check)"); return }
        #expect(reason.contains("sealed batch is compressed against its segment's dictionary"))

        let dictionary = SegmentDictionary()
        #expect {
            _ = try frame.withUnsafeBytes { try dictionary.dictionary(in: $0, path: "p", forBatchAt: SegmentHeader.size) }
        } throws: { error in
            "\(error)".contains("first batch is compressed against the segment's LZ4 dictionary")
        }
    }
}
