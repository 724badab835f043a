import Foundation
import Testing
@testable import EventLog

/// The type table of a batch stored as is (Format.md §5.3, version 10): who
/// writes one (a plain log's batches whose types repeat; never a batch of
/// one event, a compressed or sealed one, or a stream marker's), what it
/// saves, reads of every kind through it, damage to it reported as
/// corruption, scavenging's copies, and the upgrade of a version 9 log.
@Suite struct TypeTableTests {
    static let types = ["OrderCreated", "ItemAdded", "ItemRemoved", "AddressChanged", "PaymentAuthorized", "OrderShipped"]

    /// Event `i` of a seeded mix: one of 9 streams, one of the first `kinds` of `types`.
    static func event(_ i: Int, random: inout SplitMix64, kinds: Int = types.count) -> NewEvent {
        let type = types[Int(random.next() % UInt64(kinds))]
        return NewEvent(stream: "order-\(i % 9)", type: type, data: Array("{\"i\":\(i),\"note\":\"\(String(repeating: "x", count: i % 40))\"}".utf8))
    }

    static func options(segmentBytes: Int = 16 << 10) -> LogOptions {
        var options = LogOptions(segmentBytes: segmentBytes, durability: .none)
        options.maintenanceInterval = nil
        options.metricsInterval = nil
        return options
    }

    /// Each batch of every segment: its header and offset.
    static func headers(_ dir: TemporaryDirectory) -> [(segment: String, offset: Int, header: BatchHeader)] {
        Fixtures.segments(dir).flatMap { segment in
            let bytes = Damage.read(segment)
            return Fixtures.batches(in: segment).map { batch in
                (segment, batch.offset, bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + batch.offset) })
            }
        }
    }

    static func hasTable(_ header: BatchHeader) -> Bool { header.attributes & TypeTable.attribute != 0 }

    // MARK: Who writes a table, and what it saves

    @Test func batchesOfRepeatedTypesCarryATableAndEveryReadResolvesIt() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 10)
        var appended: [NewEvent] = []
        let log = try Log.open(at: dir.path, options: Self.options())
        // Tables of 6 types, then of 2 (shorter than the room the writer
        // keeps: the records move back), then of 6 again (they move on).
        for kinds in [6, 6, 6, 6, 6, 2, 2, 6, 6, 6, 6, 6] {
            let batch = (0..<50).map { Self.event(appended.count + $0, random: &random, kinds: kinds) }
            try log.append(batch)
            appended += batch
        }
        // One event alone; three events of three types: no type repeats.
        let single = Self.event(appended.count, random: &random)
        try log.append([single])
        appended.append(single)
        let distinct = (0..<3).map { k in
            NewEvent(stream: "order-\(k)", type: Self.types[k], data: Array("d\(k)".utf8))
        }
        try log.append(distinct)
        appended += distinct

        func check(_ log: Log, _ what: String) throws {
            let all = try log.events(from: 0)
            #expect(all.map(\.type) == appended.map(\.type), "\(what)")
            #expect(all.map(\.data) == appended.map(\.data), "\(what)")
            var picks = SplitMix64(seed: 11)
            for _ in 0..<60 {
                let p = Int(picks.next() % UInt64(appended.count))
                let event = try log.event(at: UInt64(p))
                #expect(event.type == appended[p].type && event.data == appended[p].data, "\(what): event \(p)")
            }
            for k in 0..<9 {
                let stream = try log.events(inStream: "order-\(k)")
                let expected = appended.filter { $0.stream == "order-\(k)" }
                #expect(stream.map(\.type) == expected.map(\.type), "\(what): order-\(k)")
                #expect(stream.map(\.data) == expected.map(\.data), "\(what): order-\(k)")
            }
        }
        try check(log, "written")
        try log.close()

        let headers = Self.headers(dir)
        #expect(Fixtures.segments(dir).count >= 3)
        let tabled = headers.filter { Self.hasTable($0.header) }
        // Every batch of 50 (and the pieces a roll cannot make: batches are never split) has one; the last two have none.
        #expect(tabled.count == 12, "\(headers.map { ($0.header.recordCount, Self.hasTable($0.header)) })")
        #expect(headers.suffix(2).allSatisfy { !Self.hasTable($0.header) })

        // Derived files rebuilt from the records (the stream index, the offset index's in-batch entries).
        for segment in Fixtures.segments(dir) {
            let stem = String(segment.dropLast(".segment".count))
            for suffix in [".index", ".timeindex", ".streamindex"] { Damage.remove(stem + suffix) }
        }
        for run in try FileManager.default.contentsOfDirectory(atPath: dir.path) where run.hasSuffix(".streamtable") {
            Damage.remove(dir.sub(run))
        }
        let reopened = try Log.open(at: dir.path, options: Self.options())
        try check(reopened, "rebuilt")
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A table saves exactly the type bytes its records leave out, less its
    /// own length: the same 100 events imported (records that keep their
    /// types) make a batch that much longer.
    @Test func aTableSavesTheTypesItsRecordsLeaveOut() throws {
        var random = SplitMix64(seed: 12)
        let events = (0..<100).map { Self.event($0, random: &random) }
        let appendedDir = TemporaryDirectory()
        let log = try Log.open(at: appendedDir.path, options: Self.options(segmentBytes: 1 << 20))
        try log.append(events)
        try log.close()
        let importedDir = TemporaryDirectory()
        try Fixtures.importAsOneBatch(events, at: importedDir, options: Self.options(segmentBytes: 1 << 20))

        let withTable = try #require(Self.headers(appendedDir).first)
        let without = try #require(Self.headers(importedDir).first)
        #expect(Self.hasTable(withTable.header) && !Self.hasTable(without.header))
        let typeBytes = events.reduce(0) { $0 + $1.type.utf8.count }
        let distinct = Set(events.map(\.type))
        let tableLength = 1 + 2 * distinct.count + distinct.reduce(0) { $0 + $1.utf8.count }
        #expect(Int(without.header.length) - Int(withTable.header.length) == typeBytes - tableLength)
        #expect(typeBytes - tableLength > 100 * 9, "about a type per event: \(typeBytes - tableLength) bytes")
        #expect(try Log.open(at: importedDir.path, options: LogOptions(readOnly: true)).events(from: 0).map(\.type) == events.map(\.type))
    }

    @Test func compressedSealedMarkerAndTurnedOffBatchesHaveNoTable() throws {
        var random = SplitMix64(seed: 13)
        let events = (0..<60).map { Self.event($0, random: &random) }
        var lz4 = Self.options()
        lz4.compression = .lz4
        var sealed = Self.options()
        sealed.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: EncryptionTests.key), scope: .log)
        for (what, options) in [("lz4", lz4), ("sealed", sealed)] {
            let dir = TemporaryDirectory()
            let log = try Log.open(at: dir.path, options: options)
            try log.append(events)
            #expect(try log.events(from: 0).map(\.type) == events.map(\.type), "\(what)")
            try log.close()
            #expect(!Self.headers(dir).contains { Self.hasTable($0.header) }, "\(what)")
        }

        // Turned off: no table.
        var off = Self.options()
        off.typeTables = false
        let offDir = TemporaryDirectory()
        let offLog = try Log.open(at: offDir.path, options: off)
        try offLog.append(events)
        #expect(try offLog.events(from: 0).map(\.type) == events.map(\.type))
        try offLog.close()
        #expect(!Self.headers(offDir).contains { Self.hasTable($0.header) })

        // A marker keeps its type in its record: its batch has no table.
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options(segmentBytes: 1 << 20))
        try log.append(events)
        _ = try log.truncateStream("order-3", before: 2)
        let markerBatch = try #require(Self.headers(dir).last)
        #expect(markerBatch.header.basePosition == 60 && !Self.hasTable(markerBatch.header))
        #expect(try log.events(inStream: "order-3").map(\.data) == events.filter { $0.stream == "order-3" }.dropFirst(2).map(\.data))
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A batch of more types than a table holds (255): the first 255 are
    /// named by index, the others stay in their records, in the same batch.
    @Test func typesPastAFullTableStayInTheirRecords() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options(segmentBytes: 1 << 20))
        // 300 types, each twice: the table pays for its 255.
        let events = (0..<600).map { i in
            NewEvent(stream: "s-\(i % 5)", type: "Type-\(String(format: "%04d", i % 300))", data: Array("\(i)".utf8))
        }
        try log.append(events)
        #expect(try log.events(from: 0).map(\.type) == events.map(\.type))
        for p in [0, 254, 255, 299, 300, 554, 555, 599] { #expect(try log.event(at: UInt64(p)).type == events[p].type) }
        #expect(try log.events(inStream: "s-3").map(\.type) == events.filter { $0.stream == "s-3" }.map(\.type))
        try log.close()
        let batch = try #require(Self.headers(dir).first)
        #expect(Self.hasTable(batch.header))
        let bytes = Damage.read(batch.segment)
        #expect(bytes[batch.offset + BatchHeader.size] == 255)
        #expect(try Log.verify(at: dir.path).isSound)
    }

    // MARK: Damage

    /// A byte of a type in a sealed segment's table changed: the frame
    /// checksum fails for a scan and `verify`; a point read and a stream
    /// read of an event of that type fail the record's checksum, which
    /// covers its type. With the frame checksum made to match again, only
    /// the records' checksums catch it, and `verify` still does. Every read
    /// fails the same way twice.
    @Test func damageToATableIsCorruptionInItsBatch() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 14)
        var appended: [NewEvent] = []
        let log = try Log.open(at: dir.path, options: Self.options())
        for _ in 0..<10 {
            let batch = (0..<50).map { Self.event(appended.count + $0, random: &random) }
            try log.append(batch)
            appended += batch
        }
        try log.close()
        let target = try #require(Self.headers(dir).first { Self.hasTable($0.header) && $0.header.basePosition > 0 })
        let position = target.header.basePosition + 7
        let event = appended[Int(position)]
        // The event's type in the table: a bit of its second byte changed.
        let bytes = Damage.read(target.segment)
        let area = target.offset + BatchHeader.size
        let count = Int(bytes[area])
        let names = area + 1 + 2 * count
        let namesEnd = names + Int(UInt16(bytes[names - 2]) | UInt16(bytes[names - 1]) << 8)
        let typeAt = try #require(
            (names..<namesEnd).first { bytes[$0..<min(namesEnd, $0 + event.type.utf8.count)].elementsEqual(event.type.utf8) })
        Damage.flipBit(target.segment, at: typeAt + 1, bit: 1)
        let batchRange = Int64(area)..<Int64(target.offset + Int(target.header.length))
        let name = URL(fileURLWithPath: target.segment).lastPathComponent

        func expectCorruption(inBatch: Bool, _ reason: String, _ read: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
            var offsets: [Int64] = []
            for _ in 0..<2 {
                do {
                    try read()
                    Issue.record("read a damaged type table", sourceLocation: sourceLocation)
                } catch let error as EventLogError {
                    guard case .corruption(let file, let at, let why) = error else {
                        Issue.record("\(error)", sourceLocation: sourceLocation)
                        return
                    }
                    offsets.append(at)
                    let placed = inBatch ? batchRange.contains(at) : at == Int64(target.offset)
                    #expect(file == target.segment && placed && why.contains(reason), "\(error)", sourceLocation: sourceLocation)
                } catch {
                    Issue.record("\(error)", sourceLocation: sourceLocation)
                }
            }
            #expect(offsets.count == 2 && offsets[0] == offsets[1], sourceLocation: sourceLocation)
        }
        var reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        expectCorruption(inBatch: true, "record checksum mismatch") { _ = try reader.event(at: position) }
        expectCorruption(inBatch: true, "record checksum mismatch") { _ = try reader.events(inStream: event.stream) }
        expectCorruption(inBatch: false, "checksum") { _ = try reader.events(from: 0) }
        try reader.close()
        var report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { ($0.file == name || $0.file == target.segment) && $0.offset == Int64(target.offset) }, "\(report.problems)")

        // The frame checksum made to match the damaged bytes.
        var resealed = Damage.read(target.segment)
        resealed.withUnsafeMutableBytes { raw in
            var header = BatchHeader.load(raw.baseAddress! + target.offset)
            header.crc = BatchHeader.frameChecksum(raw.baseAddress! + target.offset, count: Int(header.length))
            header.store(raw.baseAddress! + target.offset)
        }
        Damage.write(target.segment, resealed)
        reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        expectCorruption(inBatch: true, "record checksum mismatch") { _ = try reader.event(at: position) }
        try reader.close()
        report = try Log.verify(at: dir.path)
        #expect(
            report.problems.contains {
                ($0.file == name || $0.file == target.segment) && batchRange.contains($0.offset) && $0.reason.contains("record checksum mismatch")
            },
            "\(report.problems)")
    }

    /// The decoders against tables and type indexes no writer makes, and a
    /// record's checksum covering the type it names.
    @Test func impossibleTablesAndTypeIndexesAreDefects() throws {
        let header = BatchHeader(
            length: 0, crc: 0, basePosition: 5, firstTimestamp: 9, maxTimestamp: 9, recordCount: 1, previousCRC: 0,
            recordsLength: 0, attributes: TypeTable.attribute)
        func reason(_ bytes: [UInt8]) -> String? {
            bytes.withUnsafeBytes { raw in
                do throws(RecordDefect) { _ = try TypeTable.read(raw, of: header, guarded: true) } catch { return error.reason }
                return nil
            }
        }
        // A sound table of "A" and "BC".
        let sound: [UInt8] = [2, 1, 0, 3, 0] + Array("ABC".utf8)
        #expect(reason(sound + [7, 7]) == nil)
        sound.withUnsafeBytes { raw in
            let table = try? TypeTable.read(raw, of: header, guarded: false)
            #expect(table?.count == 2 && table?.length == 8 && table?.defect() == nil)
            #expect(table?.type(0).map(Array.init) == Array("A".utf8) && table?.type(1).map(Array.init) == Array("BC".utf8))
            #expect(table?.type(2) == nil)
        }
        #expect(reason([0, 0, 0, 0]) == "type table holds no type")
        #expect(reason([1, 200, 0, 0, 0, 0, 0]) == "type table runs past the records area")
        #expect(reason([255, 0, 0]) == "type table runs past the records area")
        #expect(reason([1]) == "type table runs past the records area")
        // Ends that decrease, a type of 256 bytes: read (the extent fits), but no such type, and `verify`'s check says why.
        for (bytes, bad) in [([2, 3, 0, 1, 0, 65] as [UInt8], 1), ([1, 0, 1] + [UInt8](repeating: 65, count: 256), 0)] {
            bytes.withUnsafeBytes { raw in
                let table = try? TypeTable.read(raw, of: header, guarded: false)
                #expect(table != nil && table?.type(bad) == nil)
                #expect(table?.defect() == "type table entry \(bad) is impossible")
            }
        }
        var noTable = header
        noTable.attributes = 0
        #expect([UInt8]([9, 9]).withUnsafeBytes { (try? TypeTable.read($0, of: noTable, guarded: true))?.length } == 0)

        // Records naming "BC" by index 1; its checksum covers "BC".
        func record(typeIndex: UInt8, type: String) -> [UInt8] {
            var buffer = ByteBuffer(capacity: 256)
            let stream = Array("s".utf8), data = Array("x".utf8), type = Array(type.utf8)
            stream.withUnsafeBytes { stream in
                data.withUnsafeBytes { data in
                    type.withUnsafeBytes { type in
                        Record.encode(
                            into: &buffer, position: 5, firstTimestamp: 9, timestamp: 9, version: 0, isMarker: false, stream: stream,
                            type: type, metadata: nil, metadataLength: 0, data: data, typeIndex: typeIndex)
                    }
                }
            }
            return Array(buffer.bytes)
        }
        func decoded(_ record: [UInt8], table: [UInt8]?) -> Result<String, RecordDefect> {
            let tableBytes = table ?? []
            return tableBytes.withUnsafeBytes { rawTable in
                record.withUnsafeBytes { raw in
                    var at = 0
                    do throws(RecordDefect) {
                        let types = table == nil ? TypeTable.none : try TypeTable.read(rawTable, of: header, guarded: false)
                        return .success(try Record.decode(raw, at: &at, position: 5, firstTimestamp: 9, verify: true, types: types).type)
                    } catch {
                        return .failure(error)
                    }
                }
            }
        }
        func reason(_ result: Result<String, RecordDefect>) -> String? {
            if case .failure(let defect) = result { return defect.reason }
            return nil
        }
        #expect(try decoded(record(typeIndex: 1, type: "BC"), table: sound).get() == "BC")
        #expect(reason(decoded(record(typeIndex: 1, type: "BC"), table: [2, 1, 0, 3, 0] + Array("ABX".utf8))) == "record checksum mismatch")
        #expect(reason(decoded(record(typeIndex: 1, type: "BC"), table: [2, 1, 0, 3, 0] + Array("BCA".utf8))) == "record checksum mismatch")
        #expect(reason(decoded(record(typeIndex: 2, type: "BC"), table: sound)) == "type index 2 is past the batch's type table of 2")
        #expect(reason(decoded(record(typeIndex: 0, type: "A"), table: nil)) == "a type index in a batch without a type table")
        #expect(reason(decoded(record(typeIndex: 0, type: "A"), table: [2, 3, 0, 1, 0, 65])) == "type index 0 names no type in the batch's type table")
        // Scans do not check record checksums: the type is the table's.
        #expect(record(typeIndex: 1, type: "BC").withUnsafeBytes { raw in
            var at = 0
            return [UInt8]([2, 1, 0, 3, 0] + Array("ABX".utf8)).withUnsafeBytes { table in
                (try? Record.decode(
                    raw, at: &at, position: 5, firstTimestamp: 9, verify: false,
                    types: TypeTable.read(table, of: header, guarded: false)))?.type
            }
        } == "BX")
    }

    // MARK: Scavenging and the upgrade

    /// Scavenging cuts batches into runs of surviving records: each run's
    /// batch gets the table, and names every type as before (a point read
    /// checks each record's checksum, which covers its type).
    @Test func scavengedBatchesKeepTheirTable() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 15)
        var appended: [NewEvent] = []
        var options = Self.options()
        options.checkpointBytes = 4096
        let log = try Log.open(at: dir.path, options: options)
        for _ in 0..<12 {
            let batch = (0..<50).map { Self.event(appended.count + $0, random: &random) }
            try log.append(batch)
            appended += batch
        }
        for k in [1, 4] { _ = try log.truncateStream("order-\(k)", before: 40) }
        let result = try log.compact()
        #expect(result.segmentsRewritten > 0)
        let rewritten = try Log.inspect(at: dir.path).segments.filter(\.isRewritten)
        #expect(!rewritten.isEmpty)
        // Runs that start past their original batch's base.
        let runs = Self.headers(dir).filter { Self.hasTable($0.header) && $0.header.basePosition % 50 != 0 }
        #expect(!runs.isEmpty)
        for run in runs {
            for p in run.header.basePosition..<run.header.endPosition {
                let event = try log.event(at: p)
                #expect(event.type == appended[Int(p)].type && event.data == appended[Int(p)].data)
            }
        }
        for k in 0..<9 {
            let expected = appended.enumerated().filter { $0.element.stream == "order-\(k)" }.map(\.element)
            let kept = [1, 4].contains(k) ? Array(expected.dropFirst(40)) : expected
            #expect(try log.events(inStream: "order-\(k)").map(\.type) == kept.map(\.type))
        }
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A version 9 log (its records keep their types): a reader reads it and
    /// changes nothing; a writer upgrades it to the current version and its new
    /// batches carry tables; old and new read back after a reopen.
    @Test func aVersion9LogIsUpgradedAndReadsOnWithTablesAfterIt() throws {
        var random = SplitMix64(seed: 16)
        let first = (0..<80).map { Self.event($0, random: &random) }
        let dir = TemporaryDirectory()
        try Fixtures.importAsOneBatch(first, at: dir, options: Self.options(segmentBytes: 1 << 20))
        try Fixtures.setReadVersion(9, in: dir)
        let meta = dir.sub(FileNames.metadata)

        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        #expect(reader.recovery.upgradedFromVersion == nil)
        #expect(try reader.events(from: 0).map(\.type) == first.map(\.type))
        try reader.close()
        #expect(try LogMetadata.decode(Damage.read(meta), file: meta).readVersion == 9)

        let writer = try Log.open(at: dir.path, options: Self.options(segmentBytes: 1 << 20))
        #expect(writer.recovery.upgradedFromVersion == 9)
        let second = (80..<160).map { Self.event($0, random: &random) }
        try writer.append(second)
        try writer.close()
        #expect(try LogMetadata.decode(Damage.read(meta), file: meta).readVersion == FormatVersion.current)
        #expect(Self.headers(dir).map { Self.hasTable($0.header) } == [false, true])

        let reopened = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reopened.close() }
        let all = first + second
        #expect(try reopened.events(from: 0).map(\.type) == all.map(\.type))
        for p in [0, 79, 80, 159] { #expect(try reopened.event(at: UInt64(p)).type == all[p].type) }
        #expect(try reopened.events(inStream: "order-2").map(\.data) == all.filter { $0.stream == "order-2" }.map(\.data))
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
