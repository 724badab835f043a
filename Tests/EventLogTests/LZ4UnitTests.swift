import Foundation
import Testing
@testable import EventLog

/// LZ4 batches stored in units (codec 2, Format.md §5.2): the writer's
/// units and table, point, stream and whole-log reads that return what was
/// appended, damage to a unit or to the table reported as corruption naming
/// the batch, and a batch of the older layout (codec 1, one LZ4 block)
/// still read.
@Suite struct LZ4UnitTests {
    static let streams = 7

    /// Event `i`: compressible text naming its position, `size` bytes or
    /// more (a size above `LZ4Units.targetBytes` makes a unit of its own).
    static func event(_ i: Int, size: Int = 180) -> NewEvent {
        var text = "{\"position\":\(i),\"note\":\""
        var k = UInt64(i) &+ 1
        while text.utf8.count < size {
            k = k &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            text += ["north ", "south ", "pallet ", "door ", "signature "][Int(k >> 61) % 5]
        }
        return NewEvent(stream: "s-\(i % streams)", type: "T", data: Array((text + "\"}").utf8))
    }

    static func options(segmentBytes: Int = 1 << 20) -> LogOptions {
        var options = LogOptions(segmentBytes: segmentBytes, durability: .none, compression: .lz4)
        options.compressionUnitBytes = 4096  // several units a batch
        options.dictionaryUnitBytes = 0  // codec 2 throughout (codec 3: LZ4DictionaryTests)
        options.maintenanceInterval = nil
        options.metricsInterval = nil
        return options
    }

    /// The units of the frame at `offset` of `bytes`, as its table gives them.
    static func units(_ bytes: [UInt8], at offset: Int) throws -> [LZ4Units.Unit] {
        let header = bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + offset) }
        return try bytes.withUnsafeBytes { raw in
            let stored = UnsafeRawBufferPointer(rebasing: raw[(offset + BatchHeader.size)..<(offset + Int(header.length))])
            let table = try LZ4Units.Table(stored, recordCount: Int(header.recordCount), recordsLength: Int(header.recordsLength))
            var units: [LZ4Units.Unit] = []
            var next = 0
            while next < Int(header.recordCount) {
                let unit = table.unit(holding: next)
                units.append(unit)
                next = unit.firstRecord + unit.records
            }
            return units
        }
    }

    // MARK: The writer's units

    @Test func unitsCutAtRecordBoundariesAndDecompressToTheRecords() throws {
        // Records of 100 B to 9 KB: small ones share units, a large one is alone.
        var buffer = ByteBuffer(capacity: 1 << 16)
        var random = SplitMix64(seed: 3)
        let sizes = (0..<120).map { i in i % 17 == 5 ? 9000 : 100 + Int(random.next() % 300) }
        for (i, size) in sizes.enumerated() {
            let data = Array(Self.event(i, size: size).data)
            let stream = Array("s".utf8)
            let type = Array("T".utf8)
            stream.withUnsafeBytes { s in
                type.withUnsafeBytes { t in
                    data.withUnsafeBytes { d in
                        Record.encode(
                            into: &buffer, position: UInt64(i), firstTimestamp: 1, timestamp: 1, version: UInt64(i), isMarker: false,
                            stream: s, type: t, metadata: nil, metadataLength: 0, data: d)
                    }
                }
            }
        }
        let trailing: [UInt8] = Array(repeating: 0x5A, count: 100)  // as a seal table would follow the records
        buffer.append(trailing.withUnsafeBytes { $0 })
        let records = Array(buffer.bytes)
        var stored = [UInt8](repeating: 0, count: records.count)
        let length = records.withUnsafeBytes { r in
            stored.withUnsafeMutableBytes { LZ4Units.compress(r, recordCount: sizes.count, into: $0.baseAddress!, unitBytes: 4096) }
        }
        #expect(length > 0 && length < records.count / 2)
        stored.removeLast(stored.count - length)

        try stored.withUnsafeBytes { raw in
            let table = try LZ4Units.Table(raw, recordCount: sizes.count, recordsLength: records.count)
            #expect(table.count > 5)
            var out = [UInt8](repeating: 0, count: records.count)
            try out.withUnsafeMutableBytes { o in try table.decompressAll(into: o.baseAddress!) }
            #expect(out == records)
            // Each unit starts at a record, and holds at least the target unless it is the last.
            var at = 0
            var record = 0
            for i in 0..<table.count {
                let unit = table.unit(holding: record)
                #expect(unit.firstRecord == record && unit.areaOffset == at)
                records.withUnsafeBytes { r in
                    var walk = at
                    for _ in 0..<unit.records { try? Record.skip(r, at: &walk) }
                    if i < table.count - 1 {
                        #expect(walk - at == unit.length)
                        #expect(unit.length >= 4096)
                    } else {
                        #expect(walk + trailing.count == records.count)  // the last unit takes the trailing bytes
                    }
                }
                at += unit.length
                record += unit.records
            }
            #expect(record == sizes.count && at == records.count)
        }
        // Incompressible records are left as they are.
        var noise = ByteBuffer(capacity: 1 << 14)
        for i in 0..<20 {
            let data = (0..<400).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            data.withUnsafeBytes { d in
                Array("s".utf8).withUnsafeBytes { s in
                    Record.encode(
                        into: &noise, position: UInt64(i), firstTimestamp: 1, timestamp: 1, version: 0, isMarker: false,
                        stream: s, type: UnsafeRawBufferPointer(start: nil, count: 0), metadata: nil, metadataLength: 0, data: d)
                }
            }
        }
        var room = [UInt8](repeating: 0, count: noise.count)
        let packed = room.withUnsafeMutableBytes { LZ4Units.compress(noise.bytes, recordCount: 20, into: $0.baseAddress!) }
        #expect(packed == 0)
    }

    // MARK: Reads

    @Test func theUnitSizeIsBounded() throws {
        for bytes in [0, 1023, Limits.maxBatchBytes + 1] {
            var options = Self.options()
            options.compressionUnitBytes = bytes
            let dir = TemporaryDirectory()
            #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: options) }
        }
        // The default makes about two units of a batch of the benchmark's size (100 events, ~23 KB).
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.compressionUnitBytes = LogOptions().compressionUnitBytes
        let log = try Log.open(at: dir.path, options: options)
        try log.append((0..<100).map { Self.event($0, size: 230) })
        try log.close()
        let segment = try #require(Fixtures.segments(dir).first)
        let batch = try #require(Fixtures.batches(in: segment).first)
        #expect(try Self.units(Damage.read(segment), at: batch.offset).count == 2)
    }

    /// With codec 2 throughout (dictionary units 0), and with units of 128
    /// bytes against each segment's dictionary (codec 3), many of whose
    /// tables are larger than the `LogReader.typicalUnitTableBytes` a stream
    /// read asks for ahead of each entry.
    @Test(arguments: [0, 128])
    func pointStreamAndWholeReadsReturnWhatWasAppended(dictionaryUnitBytes: Int) throws {
        let dir = TemporaryDirectory()
        var options = Self.options(segmentBytes: 256 << 10)
        options.dictionaryUnitBytes = dictionaryUnitBytes
        let log = try Log.open(at: dir.path, options: options)
        var sizes: [Int] = []
        var random = SplitMix64(seed: 11)
        for b in 0..<60 {
            let count = 1 + Int(random.next() % 90)
            let first = sizes.count
            let batchSizes = (0..<count).map { _ in b % 9 == 4 ? 6000 : 120 + Int(random.next() % 200) }
            sizes += batchSizes
            try log.append(batchSizes.enumerated().map { Self.event(first + $0.offset, size: $0.element) })
        }
        let total = sizes.count
        func check(_ log: Log) throws {
            // Point reads in a random order (a reader reuses the unit it decompressed last).
            var order = Array(0..<total)
            var r = SplitMix64(seed: 5)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(r.next() % UInt64(i + 1))) }
            for p in order {
                let event = try log.event(at: UInt64(p))
                #expect(event.data == Self.event(p, size: sizes[p]).data, "position \(p)")
            }
            // Stream reads (through the stream index's batch offsets).
            for s in 0..<Self.streams {
                var expected = s
                try log.readStream("s-\(s)") { view in
                    #expect(view.position == UInt64(expected) && Array(view.data) == Self.event(expected, size: sizes[expected]).data)
                    expected += Self.streams
                }
                #expect(expected >= total)
            }
            // The whole log.
            var next = 0
            _ = try log.read(from: 0, maxCount: total) { view in
                #expect(view.position == UInt64(next) && Array(view.data) == Self.event(next, size: sizes[next]).data)
                next += 1
            }
            #expect(next == total)
        }
        try check(log)
        try log.close()

        // Every batch is stored in units; most hold several. With the
        // dictionary, every batch but each segment's first uses it, and many
        // tables outgrow the typical one.
        var multi = 0
        var large = 0
        for path in Fixtures.segments(dir) {
            let bytes = Damage.read(path)
            for (i, batch) in Fixtures.batches(in: path).enumerated() {
                let header = bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + batch.offset) }
                let codec = dictionaryUnitBytes > 0 && i > 0 ? LZ4Units.dictionaryCodec : LZ4Units.codec
                #expect(header.codecValue == codec, "\(path) at \(batch.offset)")
                let tableStart = header.usesSegmentDictionary ? LZ4Units.dictionaryFieldSize : 0
                let count = bytes.withUnsafeBytes { $0.loadLE(at: batch.offset + BatchHeader.size + tableStart, as: UInt32.self) }
                if count > 1 { multi += 1 }
                if tableStart + 4 + Int(count) * LZ4Units.entrySize > LogReader.typicalUnitTableBytes { large += 1 }
            }
        }
        #expect(multi > 30)
        #expect(dictionaryUnitBytes == 0 || large > 20)
        let reopened = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        try check(reopened)
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    // MARK: Damage

    /// A log of three segments of two batches of 150 events each, closed
    /// cleanly; the first segment's path and its first batch. The tests
    /// open a reader before they damage the batch (in place: the reader's
    /// mapping sees it), since an open of so small a log replays every
    /// batch (no stream table run covers them yet) and would report the
    /// damage itself, before any read.
    static func damageable(_ dir: TemporaryDirectory) throws -> (segment: String, batch: (offset: Int, length: Int, base: UInt64, count: Int)) {
        let log = try Log.open(at: dir.path, options: Self.options(segmentBytes: 32 << 10))
        for b in 0..<6 { try log.append((0..<150).map { Self.event(b * 150 + $0) }) }
        try log.close()
        let segments = Fixtures.segments(dir)
        try #require(segments.count == 3)
        let batches = Fixtures.batches(in: segments[0])
        try #require(batches.count == 2)
        return (segments[0], batches[0])
    }

    @Test func aDamagedUnitIsCorruptionNamingTheBatch() throws {
        let dir = TemporaryDirectory()
        let (segment, batch) = try Self.damageable(dir)
        let units = try Self.units(Damage.read(segment), at: batch.offset)
        try #require(units.count >= 4)
        // A bit in the middle of the third unit's block.
        let third = units[2]
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        let at = batch.offset + BatchHeader.size + third.storedOffset + third.storedLength / 2
        Damage.overwrite(segment, at: at, with: [Damage.read(segment)[at] ^ 0x08])  // in place: the reader's mapping sees it

        // A record of the damaged unit: corruption at the batch (the unit's
        // bytes no longer decompress, or the record's checksum fails).
        let victim = UInt64(third.firstRecord + third.records / 2)
        #expect {
            _ = try reader.event(at: victim)
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(batch.offset)
        }
        // A stream with an event in it, read from the start, too.
        #expect {
            _ = try reader.readStream("s-\(Int(victim) % Self.streams)") { _ in }
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(batch.offset)
        }
        // A record of an intact unit reads, as a point read of a plain batch
        // reads around damage elsewhere in its batch (its own checksum holds).
        #expect(try reader.event(at: UInt64(units[0].firstRecord)).data == Self.event(units[0].firstRecord).data)
        // A scan checks the whole frame; verify names the batch.
        #expect(throws: EventLogError.self) { _ = try reader.read(from: 0, maxCount: 150) { _ in } }
        #expect(try reader.event(at: 200).data == Self.event(200).data)  // the next batch is intact
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == segment && $0.offset == Int64(batch.offset) }, "\(report.problems)")
    }

    @Test(arguments: ["count zero", "count too large", "records do not add up", "empty unit"])
    func aDamagedTableIsCorruption(_ damage: String) throws {
        let dir = TemporaryDirectory()
        let (segment, batch) = try Self.damageable(dir)
        var bytes = Damage.read(segment)
        let countAt = batch.offset + BatchHeader.size
        let table = countAt + 4
        func put(_ value: UInt32, at offset: Int) { bytes.withUnsafeMutableBytes { $0.baseAddress!.storeLE(value, at: offset) } }
        switch damage {
        case "count zero": put(0, at: countAt)
        case "count too large": put(UInt32(batch.length), at: countAt)
        case "records do not add up": put(bytes.withUnsafeBytes { $0.loadLE(at: table, as: UInt32.self) } + 1, at: table)
        default: put(0, at: table + 8)
        }
        // The frame checksum made to hold again, and the next frame's chain
        // to it: only the table is wrong.
        let crc = bytes.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress! + batch.offset, count: batch.length) }
        put(crc, at: batch.offset + 4)
        let next = batch.offset + batch.length
        let nextLength = Int(bytes.withUnsafeBytes { $0.loadLE(at: next, as: UInt32.self) })
        put(crc, at: next + 36)
        put(bytes.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress! + next, count: nextLength) }, at: next + 4)
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        Damage.overwrite(segment, at: batch.offset, with: Array(bytes[batch.offset..<(next + nextLength)]))

        #expect {
            _ = try reader.event(at: 75)
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, let reason)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(batch.offset) && reason.contains("LZ4 unit")
        }
        // A stream read (which asks for its events' units ahead, reading the
        // tables) says the same of the batch.
        #expect {
            _ = try reader.readStream("s-\(75 % Self.streams)") { _ in }
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, let reason)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(batch.offset) && reason.contains("LZ4 unit")
        }
        #expect(throws: EventLogError.self) { _ = try reader.read(from: 0, maxCount: 150) { _ in } }
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.offset == Int64(batch.offset) && $0.reason.contains("LZ4 unit") }, "\(report.problems)")
        // A new open replays the batch and names it.
        #expect {
            try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(batch.offset)
        }
    }

    /// A point read decompresses only a prefix of its unit, guessed as if
    /// the unit's records were all one size. A large record among small
    /// ones ends past that guess (checked here on the stored unit): it is
    /// still read whole and right, first in a reader and after a read of a
    /// small record of the same unit left only a prefix decompressed.
    @Test func aRecordThatEndsPastThePrefixGuessStillReads() throws {
        let sizes = [Int](repeating: 60, count: 6) + [6000] + [Int](repeating: 60, count: 30)
        let (dir, events, unit, area) = try Self.oneUnitLog(sizes)
        let largeEnd = try Self.recordEnds(area, count: 7)[6]
        let guess = unit.prefixGuess(forRecord: 6)
        #expect(guess < largeEnd, "the guess (\(guess)) must fall short of the large record's end (\(largeEnd))")

        let first = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        #expect(try first.event(at: 6).data == events[6].data)
        try first.close()
        let second = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? second.close() }
        for p in [3, 6, 36, 6, 0] { #expect(try second.event(at: UInt64(p)).data == events[p].data) }
    }

    /// A walk that runs out of decompressed bytes guesses again from the
    /// record it stopped at: that record's own end when its length field
    /// was decompressed (one more decompression reads it), and the rest
    /// at the unit's mean size. Two large records in a row among small ones
    /// leave the second past both guesses (checked here on the stored
    /// unit): the whole unit is then decompressed, and every record still
    /// reads whole and right, in any order.
    @Test func aRecordPastBothPrefixGuessesStillReads() throws {
        let sizes = [Int](repeating: 60, count: 6) + [3000, 3000] + [Int](repeating: 60, count: 28)
        let (dir, events, unit, area) = try Self.oneUnitLog(sizes)
        let ends = try Self.recordEnds(area, count: 8)
        try area.withUnsafeBytes { area throws in
            // Record 6: the first guess falls short; the second, from its length field, is its end.
            let first6 = unit.prefixGuess(forRecord: 6)
            #expect(first6 < ends[6])
            let second6 = unit.prefixGuess(forRecord: 6, stoppedAt: 6, offset: ends[5], in: UnsafeRawBufferPointer(rebasing: area[0..<first6]))
            #expect(second6 == ends[6])
            // Record 7: both guesses fall short.
            let first7 = unit.prefixGuess(forRecord: 7)
            #expect(first7 < ends[6])
            let second7 = unit.prefixGuess(forRecord: 7, stoppedAt: 6, offset: ends[5], in: UnsafeRawBufferPointer(rebasing: area[0..<first7]))
            #expect(second7 > first7 && second7 < ends[7], "\(second7) against \(ends)")
            // A record that was all there and still failed: the whole unit.
            #expect(unit.prefixGuess(forRecord: 6, stoppedAt: 6, offset: ends[5], in: UnsafeRawBufferPointer(rebasing: area[0..<ends[6]])) == unit.length)
        }

        for order in [Array(0..<sizes.count), Array((0..<sizes.count).reversed()), [7, 6, 8, 7, 0, 35]] {
            let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
            defer { try? reader.close() }
            for p in order { #expect(try reader.event(at: UInt64(p)).data == events[p].data, "position \(p) in \(order)") }
        }
    }

    /// A log of one batch of events of `sizes` bytes, stored in one LZ4
    /// unit (codec 2): its directory, the events, the unit as its table
    /// gives it, and the unit decompressed.
    static func oneUnitLog(
        _ sizes: [Int]
    ) throws -> (dir: TemporaryDirectory, events: [NewEvent], unit: LZ4Units.Unit, area: [UInt8]) {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.compressionUnitBytes = 32 << 10  // the whole batch in one unit
        let log = try Log.open(at: dir.path, options: options)
        let events = sizes.enumerated().map { Self.event($0.offset, size: $0.element) }
        try log.append(events)
        try log.close()

        let segment = try #require(Fixtures.segments(dir).first)
        let batch = try #require(Fixtures.batches(in: segment).first)
        let bytes = Damage.read(segment)
        let (unit, area) = try bytes.withUnsafeBytes { raw throws -> (LZ4Units.Unit, [UInt8]) in
            let header = BatchHeader.load(raw.baseAddress! + batch.offset)
            #expect(header.holdsLZ4Units)
            let stored = UnsafeRawBufferPointer(rebasing: raw[(batch.offset + BatchHeader.size)..<(batch.offset + batch.length)])
            let table = try LZ4Units.Table(stored, recordCount: Int(header.recordCount), recordsLength: Int(header.recordsLength))
            let unit = table.unit(holding: 0)
            var area = [UInt8](repeating: 0, count: unit.length)
            try area.withUnsafeMutableBytes { try table.decompress(unit, into: $0.baseAddress!) }
            return (unit, area)
        }
        #expect(unit.firstRecord == 0 && unit.records == sizes.count)
        return (dir, events, unit, area)
    }

    /// Where each of the first `count` records of a decompressed `area` ends.
    static func recordEnds(_ area: [UInt8], count: Int) throws -> [Int] {
        try area.withUnsafeBytes { area throws -> [Int] in
            var ends: [Int] = []
            var at = 0
            for _ in 0..<count {
                try Record.skip(area, at: &at)
                ends.append(at)
            }
            return ends
        }
    }

    /// The unit sizes of `segment`'s LZ4 batches: per batch, each unit's
    /// records length.
    static func unitLengths(in segment: String) throws -> [[Int]] {
        let bytes = Damage.read(segment)
        return try Fixtures.batches(in: segment).compactMap { batch in
            try bytes.withUnsafeBytes { raw throws -> [Int]? in
                let header = BatchHeader.load(raw.baseAddress! + batch.offset)
                guard header.holdsLZ4Units else { return nil }
                let stored = UnsafeRawBufferPointer(rebasing: raw[(batch.offset + BatchHeader.size)..<(batch.offset + batch.length)])
                let table = try LZ4Units.Table(stored, recordCount: Int(header.recordCount), recordsLength: Int(header.recordsLength))
                var lengths: [Int] = []
                var index = 0
                while index < Int(header.recordCount) {
                    let unit = table.unit(holding: index)
                    lengths.append(unit.length)
                    index = unit.firstRecord + unit.records
                }
                return lengths
            }
        }
    }

    /// Scavenging's rewrites and `import` compress in units of the log's
    /// `compressionUnitBytes` (1 KiB here), not the default (12 KiB, which
    /// would hold each of these ~6 KB batches in one unit).
    @Test func rewritesAndImportsKeepTheLogsUnitSize() throws {
        let dir = TemporaryDirectory()
        var options = Self.options(segmentBytes: 16 << 10)
        options.compressionUnitBytes = 1 << 10
        options.checkpointBytes = 4096
        let log = try Log.open(at: dir.path, options: options)
        for first in stride(from: 0, to: 600, by: 30) { try log.append((first..<(first + 30)).map { Self.event($0) }) }
        _ = try log.truncateStream("s-1", before: 60)
        _ = try log.truncateStream("s-2", before: 60)
        let result = try log.compact()
        #expect(result.segmentsRewritten > 0)
        let exported = try log.events(from: 0)
        try log.close()
        func checkUnits(in dir: TemporaryDirectory, _ what: String) throws {
            var batches = 0
            for segment in Fixtures.segments(dir) {
                for units in try Self.unitLengths(in: segment) {
                    batches += 1
                    #expect(units.dropLast().allSatisfy { $0 <= 2 << 10 }, "\(what): \(units)")
                    if units.reduce(0, +) > 3 << 10 { #expect(units.count >= 3, "\(what): \(units)") }
                }
            }
            #expect(batches > 10, "\(what)")
        }
        let inspection = try Log.inspect(at: dir.path)
        #expect(inspection.segments.contains { $0.isRewritten })
        try checkUnits(in: dir, "rewritten")

        let imported = TemporaryDirectory()
        let importer = try LogImporter(at: imported.path, logID: UUID(), startPosition: 0, options: options)
        // Each surviving run of positions in batches of at most 30 (a removed position starts a new batch).
        var i = 0
        while i < exported.count {
            try importer.beginBatch(at: exported[i].position, firstTimestamp: exported[i].timestamp)
            var n = 0
            repeat {
                try importer.appendRecord(exported[i], isMarker: exported[i].type.hasPrefix("$"))
                i += 1
                n += 1
            } while i < exported.count && n < 30 && exported[i].position == exported[i - 1].position + 1
            try importer.endBatch()
        }
        try importer.finish(endPosition: (exported.last?.position ?? 0) + 1, streams: nil)
        try checkUnits(in: imported, "imported")
        let reader = try Log.open(at: imported.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        #expect(try reader.events(from: 0).map(\.data) == exported.map(\.data))
    }

    // MARK: The older layout

    /// A batch of codec 1 (one LZ4 block, as logs of format version 8 hold):
    /// made by storing a plain log's only batch that way, the index files
    /// removed (derived data, rebuilt); read by point, stream and whole reads.
    @Test func aBatchOfOneLZ4BlockIsStillRead() throws {
        try aBatchOfOneLZ4BlockIsStillRead(in: TemporaryDirectory())
    }

    /// `aBatchOfOneLZ4BlockIsStillRead`, leaving its log in `dir`. The plain
    /// batch is an import's (records that store their types, as before
    /// format version 10: an appended one would start with a type table,
    /// which a compressed batch never has).
    func aBatchOfOneLZ4BlockIsStillRead(in dir: TemporaryDirectory) throws {
        var options = Self.options()
        options.compression = .none
        try Fixtures.importAsOneBatch((0..<120).map { Self.event($0) }, at: dir, options: options)
        let segment = try #require(Fixtures.segments(dir).first)
        let batch = try #require(Fixtures.batches(in: segment).first)
        var bytes = Damage.read(segment)
        var header = bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + batch.offset) }
        let records = Array(bytes[(batch.offset + BatchHeader.size)..<(batch.offset + batch.length)])
        var packed = [UInt8](repeating: 0, count: LZ4Codec.compressBound(records.count))
        let written = records.withUnsafeBytes { r in
            packed.withUnsafeMutableBytes { LZ4Codec.compress(r, into: $0.baseAddress!, capacity: $0.count) }
        }
        try #require(written > 0 && written < records.count / 2)
        header.attributes = 1
        header.length = UInt32(BatchHeader.size + written)
        var frame = [UInt8](repeating: 0, count: BatchHeader.size) + packed[0..<written]
        frame.withUnsafeMutableBytes { header.store($0.baseAddress!) }
        header.crc = frame.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress!, count: frame.count) }
        frame.withUnsafeMutableBytes { header.store($0.baseAddress!) }
        bytes.replaceSubrange(batch.offset..<(batch.offset + batch.length), with: frame + [UInt8](repeating: 0, count: batch.length - frame.count))
        Damage.write(segment, bytes)
        let stem = String(segment.dropLast(".segment".count))
        for suffix in [".index", ".timeindex", ".streamindex"] { try? FileManager.default.removeItem(atPath: stem + suffix) }
        try? FileManager.default.removeItem(atPath: dir.sub("clean-shutdown"))

        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        for p in [0, 57, 119, 3] { #expect(try reader.event(at: UInt64(p)).data == Self.event(p).data) }
        var expected = 2
        try reader.readStream("s-2") { view in
            #expect(Array(view.data) == Self.event(expected).data)
            expected += Self.streams
        }
        #expect(expected >= 120)
        var count = 0
        _ = try reader.read(from: 0, maxCount: 200) { view in
            #expect(Array(view.data) == Self.event(count).data)
            count += 1
        }
        #expect(count == 120)
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A log of format version 8 (its metadata says so, and its only batch
    /// is one LZ4 block): a reader reads it as it is and upgrades nothing; a
    /// writer upgrades it to version 9 (the metadata rewritten), its new LZ4
    /// batches are stored in units, and the old batch and the new ones read
    /// after a reopen, whole, by position and by stream.
    @Test func aVersion8LogIsUpgradedAndItsOneBlockBatchStillReads() throws {
        let dir = TemporaryDirectory()
        try aBatchOfOneLZ4BlockIsStillRead(in: dir)
        try Fixtures.setReadVersion(8, in: dir)
        let meta = dir.sub(FileNames.metadata)

        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        #expect(reader.recovery.upgradedFromVersion == nil)
        #expect(try reader.event(at: 57).data == Self.event(57).data)
        try reader.close()
        #expect(try LogMetadata.decode(Damage.read(meta), file: meta).readVersion == 8, "a reader writes nothing")

        let writer = try Log.open(at: dir.path, options: Self.options())
        #expect(writer.recovery.upgradedFromVersion == 8)
        try writer.append((120..<400).map { Self.event($0) })
        try writer.close()
        #expect(try LogMetadata.decode(Damage.read(meta), file: meta).readVersion == FormatVersion.current)
        let segment = try #require(Fixtures.segments(dir).first)
        let codecs = try Fixtures.batches(in: segment).map { batch in
            Damage.read(segment).withUnsafeBytes { BatchHeader.load($0.baseAddress! + batch.offset).codecValue }
        }
        #expect(codecs.first == 1 && codecs.dropFirst().allSatisfy { $0 == LZ4Units.codec } && codecs.count > 1, "\(codecs)")

        let reopened = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reopened.close() }
        #expect(reopened.recovery.upgradedFromVersion == nil)
        for p in [0, 119, 120, 250, 399] { #expect(try reopened.event(at: UInt64(p)).data == Self.event(p).data) }
        #expect(try reopened.events(from: 0).map(\.data) == (0..<400).map { Self.event($0).data })
        #expect(try reopened.events(inStream: "s-3").map(\.data) == stride(from: 3, to: 400, by: Self.streams).map { Self.event($0).data })
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
