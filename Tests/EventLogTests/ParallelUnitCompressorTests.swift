import Foundation
import Testing
@testable import EventLog

/// The writer's LZ4 units compressed on two cores (`ParallelUnitCompressor`,
/// `LogOptions.parallelCompression`): the same bytes as one thread, whoever
/// compressed which unit.
@Suite struct ParallelUnitCompressorTests {
    /// Seeded events of the benchmark's shape: JSON-like payloads over 40 streams.
    static func events(count: Int, seed: UInt64) -> [NewEvent] {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        let words = ["express", "gift", "fragile", "pallet", "north", "signature", "door", "reception"]
        return (0..<count).map { i in
            var text = "{\"orderId\":\"order-\(next() % 40)\",\"seq\":\(i),\"qty\":\(next() % 10),\"note\":\""
            let length = 120 + Int(next() % 200)
            while text.utf8.count < length { text += words[Int(next() % 8)] + " " }
            return NewEvent(
                stream: "order-\(next() % 40)", type: ["Created", "Shipped", "Paid"][Int(next() % 3)], data: Array((text + "\"}").utf8),
                timestamp: 1_700_000_000_000_000 + Timestamp(i))
        }
    }

    /// The records areas (and record counts) of a plain log's batches.
    static func recordsAreas(_ events: [NewEvent]) throws -> [([UInt8], Int)] {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.typeTables = false
        let log = try Log.open(at: dir.path, options: options)
        for start in stride(from: 0, to: events.count, by: 100) {
            try log.append(Array(events[start..<min(events.count, start + 100)]))
        }
        try log.close()
        var areas: [([UInt8], Int)] = []
        for segment in Fixtures.segments(dir) {
            let bytes = Damage.read(segment)
            for batch in Fixtures.batches(in: segment) {
                areas.append((Array(bytes[(batch.offset + BatchHeader.size)..<(batch.offset + batch.length)]), batch.count))
            }
        }
        return areas
    }

    /// Each batch's stored area in the log at `dir`, in order (its header
    /// holds, besides, how far syncs had come when it was written, which
    /// differs run to run).
    static func storedAreas(_ dir: TemporaryDirectory) -> [[UInt8]] {
        var stored: [[UInt8]] = []
        for segment in Fixtures.segments(dir) {
            let bytes = Damage.read(segment)
            for batch in Fixtures.batches(in: segment) {
                stored.append(Array(bytes[(batch.offset + BatchHeader.size)..<(batch.offset + batch.length)]))
            }
        }
        return stored
    }

    /// Both ways, straight from the compressors: every batch, with and
    /// without a dictionary, at three unit sizes; and the helper took part.
    @Test func theSameBytesAsOneThread() throws {
        let areas = try Self.recordsAreas(Self.events(count: 3_000, seed: 7))
        try #require(areas.count >= 20)
        let compressor = try #require(ParallelUnitCompressor.start())
        defer { compressor.stop() }
        let dictionary = try #require(areas[0].0.withUnsafeBytes { LZ4DictionaryCompressor(records: $0) })
        var shared = 0
        // Until the helper took part in a pass (whatever else runs on the machine), for at most ten seconds.
        let deadline = ContinuousClock.now + .seconds(10)
        repeat {
            shared = 0
            for unitBytes in [256, 1024, 4096] {
                for withDictionary in [false, true] {
                    for (area, count) in areas {
                        var one = ByteBuffer(capacity: 0)
                        var two = ByteBuffer(capacity: 0)
                        let d = withDictionary ? dictionary : nil
                        let (a, b) = area.withUnsafeBytes { records in
                            (LZ4Units.compress(records, recordCount: count, appendingTo: &one, unitBytes: unitBytes, dictionary: d),
                             compressor.compress(records, recordCount: count, appendingTo: &two, unitBytes: unitBytes, dictionary: d))
                        }
                        #expect(a == b)
                        #expect(Array(one.bytes) == Array(two.bytes), "unit bytes \(unitBytes), dictionary \(withDictionary)")
                        if a { shared += 1 }
                    }
                }
            }
        } while compressor.helperUnits.load(ordering: .relaxed) == 0 && ContinuousClock.now < deadline
        #expect(shared >= 100)
        #expect(compressor.helperUnits.load(ordering: .relaxed) > 0)
    }

    /// A records area that does not shrink by 1/16 is stored as is, both ways.
    @Test func incompressibleRecordsAreStoredAsIs() throws {
        var state: UInt64 = 99
        let events = (0..<300).map { i in
            NewEvent(stream: "s", type: "T", data: (0..<300).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }, timestamp: Timestamp(i))
        }
        let areas = try Self.recordsAreas(events)
        let compressor = try #require(ParallelUnitCompressor.start())
        defer { compressor.stop() }
        for (area, count) in areas {
            var two = ByteBuffer(capacity: 0)
            let compressed = area.withUnsafeBytes {
                compressor.compress($0, recordCount: count, appendingTo: &two, unitBytes: 1024, dictionary: nil)
            }
            #expect(!compressed)
            #expect(two.count == 0)
        }
    }

    /// Through the writer: the same events give the same batches with and
    /// without the helper (dictionary units and plain units), and read back.
    @Test(arguments: [0, 1024])
    func aLogWrittenOnTwoCoresIsTheSameLog(dictionaryUnitBytes: Int) throws {
        let events = Self.events(count: 2_000, seed: 11)
        var frames: [[[UInt8]]] = []
        for parallel in [false, true] {
            let dir = TemporaryDirectory()
            var options = LogOptions(durability: .none, compression: .lz4)
            options.parallelCompression = parallel
            options.dictionaryUnitBytes = dictionaryUnitBytes
            options.compressionUnitBytes = 1024
            options.segmentBytes = 64 << 10
            let log = try Log.open(at: dir.path, options: options)
            #expect((log.batches.unitCompressor != nil) == parallel)
            for start in stride(from: 0, to: events.count, by: 100) { try log.append(Array(events[start..<(start + 100)])) }
            #expect(try log.events(from: 0).map(\.data) == events.map(\.data))
            try log.close()
            frames.append(Self.storedAreas(dir))
            #expect(try Log.verify(at: dir.path).isSound)
        }
        #expect(frames[0].count == 20)
        #expect(frames[0] == frames[1])
    }

    /// The units fed one record at a time, as the builder does
    /// (`UnitFeed`), into a buffer that starts small and moves as it grows
    /// (the helper let go first): the same bytes as one thread, at two unit
    /// sizes; and the helper took part. Whether the helper gets a unit
    /// before the writer takes them back (each move of the buffer, then the
    /// finish) is up to the scheduler: on a loaded machine (a CI run, every
    /// suite at once) it may get none in a pass, so the pass is repeated,
    /// for at most 30 s, until it did; every pass checks every batch's bytes.
    @Test func aFedStreamGivesTheSameBytesAsOneThread() throws {
        let areas = try Self.recordsAreas(Self.events(count: 3_000, seed: 21))
        try #require(areas.count >= 20)
        let compressor = try #require(ParallelUnitCompressor.start())
        defer { compressor.stop() }
        let dictionary = try #require(areas[0].0.withUnsafeBytes { LZ4DictionaryCompressor(records: $0) })
        let before = compressor.helperUnits.load(ordering: .relaxed)
        var moves = 0
        // One batch fed record by record, then finished: the same bytes as one thread.
        func checkFed(_ area: [UInt8], count: Int, unitBytes: Int) throws {
            var one = ByteBuffer(capacity: 0)
            let a = area.withUnsafeBytes {
                LZ4Units.compress($0, recordCount: count, appendingTo: &one, unitBytes: unitBytes, dictionary: dictionary)
            }
            var feed = UnitFeed(compressor: compressor, unitBytes: unitBytes, dictionary: dictionary)
            var building = ByteBuffer(capacity: 512)
            try area.withUnsafeBytes { records in
                var at = 0
                for _ in 0..<count {
                    let start = at
                    try Record.skip(records, at: &at)
                    if building.count + (at - start) > building.capacity {
                        feed.willMove()
                        building.reserve(at - start)
                        feed.moved(to: building.base)
                        moves += 1
                    }
                    building.append(UnsafeRawBufferPointer(rebasing: records[start..<at]))
                    feed.recordEncoded(area: building.base, length: building.count)
                }
            }
            // Give the helper a chance (whatever else runs on the machine), at most two
            // seconds: until a unit is claimed (by the helper, or by the writer when the
            // buffer moved).
            let deadline = ContinuousClock.now + .seconds(2)
            while compressor.claimedUnits == 0 && ContinuousClock.now < deadline { sched_yield() }
            var two = ByteBuffer(capacity: 0)
            let b = compressor.finish(building.bytes, recordCount: count, appendingTo: &two, unitBytes: unitBytes, dictionary: dictionary)
            #expect(b == a)
            #expect(Array(one.bytes) == Array(two.bytes), "unit bytes \(unitBytes)")
        }
        let passDeadline = ContinuousClock.now + .seconds(30)
        repeat {
            for unitBytes in [256, 1024] {
                for (area, count) in areas { try checkFed(area, count: count, unitBytes: unitBytes) }
            }
        } while compressor.helperUnits.load(ordering: .relaxed) == before && ContinuousClock.now < passDeadline
        #expect(moves >= 40)
        #expect(compressor.helperUnits.load(ordering: .relaxed) > before)
    }

    /// A stream that is not of the records written (another dictionary,
    /// another unit size, records that moved unannounced, a cancel) is not
    /// finished: `finish` answers nil, and the compressor goes on serving
    /// whole areas right.
    @Test func aStreamOfOtherRecordsIsNotFinished() throws {
        let areas = try Self.recordsAreas(Self.events(count: 1_000, seed: 5))
        let compressor = try #require(ParallelUnitCompressor.start())
        defer { compressor.stop() }
        let dictionary = try #require(areas[0].0.withUnsafeBytes { LZ4DictionaryCompressor(records: $0) })
        let other = try #require(areas[1].0.withUnsafeBytes { LZ4DictionaryCompressor(records: $0) })
        let (area, count) = areas[2]
        func feed(_ records: UnsafeRawBufferPointer) {
            var feed = UnitFeed(compressor: compressor, unitBytes: 512, dictionary: dictionary)
            var at = 0
            for _ in 0..<count {
                try? Record.skip(records, at: &at)
                feed.recordEncoded(area: records.baseAddress!, length: at)
            }
        }
        try area.withUnsafeBytes { records in
            var out = ByteBuffer(capacity: 0)
            feed(records)
            #expect(compressor.finish(records, recordCount: count, appendingTo: &out, unitBytes: 512, dictionary: other) == nil)
            feed(records)
            #expect(compressor.finish(records, recordCount: count, appendingTo: &out, unitBytes: 1024, dictionary: dictionary) == nil)
            feed(records)
            let copy = try #require(UnsafeMutableRawBufferPointer.allocate(byteCount: records.count, alignment: 16) as UnsafeMutableRawBufferPointer?)
            defer { copy.deallocate() }
            copy.copyMemory(from: records)
            #expect(compressor.finish(UnsafeRawBufferPointer(copy), recordCount: count, appendingTo: &out, unitBytes: 512, dictionary: dictionary) == nil)
            feed(records)
            compressor.cancel()
            #expect(compressor.finish(records, recordCount: count, appendingTo: &out, unitBytes: 512, dictionary: dictionary) == nil)
            #expect(out.count == 0)
            // And then a whole area, as one thread gives it.
            var one = ByteBuffer(capacity: 0)
            _ = LZ4Units.compress(records, recordCount: count, appendingTo: &one, unitBytes: 512, dictionary: dictionary)
            #expect(compressor.compress(records, recordCount: count, appendingTo: &out, unitBytes: 512, dictionary: dictionary))
            #expect(Array(out.bytes) == Array(one.bytes))
        }
    }

    /// Through the writer, builds that the feed serves and some it must let
    /// go of: a build that throws after units were fed, a batch whose
    /// expectation fails, an event of 2 MiB that moves the writer's buffer
    /// mid-batch, batches that roll the segment (the first batch of a
    /// segment has no dictionary): the same stored batches with and without
    /// the helper, every event read back, the log sound.
    @Test func aLogFedUnitsWhileBuildingIsTheSameLog() throws {
        struct Stop: Error {}
        let events = Self.events(count: 3_000, seed: 31)
        var big = Array(repeating: UInt8(ascii: "a"), count: 2 << 20)
        for i in stride(from: 0, to: big.count, by: 97) { big[i] = UInt8(truncatingIfNeeded: i) }
        var frames: [[[UInt8]]] = []
        for parallel in [false, true] {
            let dir = TemporaryDirectory()
            var options = LogOptions(durability: .none, compression: .lz4)
            options.parallelCompression = parallel
            options.dictionaryUnitBytes = 512
            options.segmentBytes = 256 << 10
            let log = try Log.open(at: dir.path, options: options)
            var written: [NewEvent] = []
            var writtenBatches = 0
            var batch = 0
            for start in stride(from: 0, to: events.count, by: 100) {
                let slice = Array(events[start..<(start + 100)])
                batch += 1
                if batch % 7 == 3 {
                    // Throws after 60 events (units fed): nothing of it is written.
                    #expect(throws: Stop.self) {
                        try log.appendBatch { builder in
                            for event in slice.prefix(60) { _ = try builder.append(event) }
                            throw Stop()
                        }
                    }
                } else if batch % 7 == 5 {
                    #expect(throws: EventLogError.self) {
                        try log.appendBatch { builder in
                            try builder.expect("order-1", .exact(999_999))
                            for event in slice { _ = try builder.append(event) }
                        }
                    }
                } else if batch == 13 {
                    let large = NewEvent(stream: "large", type: "Blob", data: big, timestamp: 1_700_000_000_000_000)
                    try log.appendBatch { builder in
                        for event in slice.prefix(50) { _ = try builder.append(event) }
                        _ = try builder.append(large)
                        for event in slice.suffix(50) { _ = try builder.append(event) }
                    }
                    written += slice.prefix(50) + [large] + slice.suffix(50)
                    writtenBatches += 1
                } else {
                    try log.append(slice)
                    written += slice
                    writtenBatches += 1
                }
            }
            #expect(try log.events(from: 0).map(\.data) == written.map(\.data))
            if parallel {
                // Every batch written was laid out from the units fed while it was built, but
                // the log's first (no dictionary yet); a segment's first is compressed again
                // without one after the roll.
                let finished = try #require(log.batches.unitCompressor).finishedStreams.load(ordering: .relaxed)
                #expect(finished == writtenBatches - 1)
            }
            try log.close()
            frames.append(Self.storedAreas(dir))
            #expect(try Log.verify(at: dir.path).isSound)
            let reopened = try Log.open(at: dir.path, options: options)
            #expect(try reopened.events(from: 0).map(\.data) == written.map(\.data))
            try reopened.close()
        }
        #expect(frames[0].count >= 20)
        #expect(frames[0] == frames[1])
    }
}
