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

    /// Both ways, straight from the compressors: every batch, with and
    /// without a dictionary, at three unit sizes; and the helper took part.
    @Test func theSameBytesAsOneThread() throws {
        let areas = try Self.recordsAreas(Self.events(count: 3_000, seed: 7))
        try #require(areas.count >= 20)
        let compressor = try #require(ParallelUnitCompressor.start())
        defer { compressor.stop() }
        let dictionary = try #require(areas[0].0.withUnsafeBytes { LZ4DictionaryCompressor(records: $0) })
        var shared = 0
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
            // Each batch's stored area (its header holds, besides, how far
            // syncs had come when it was written, which differs run to run).
            var stored: [[UInt8]] = []
            for segment in Fixtures.segments(dir) {
                let bytes = Damage.read(segment)
                for batch in Fixtures.batches(in: segment) {
                    stored.append(Array(bytes[(batch.offset + BatchHeader.size)..<(batch.offset + batch.length)]))
                }
            }
            frames.append(stored)
            #expect(try Log.verify(at: dir.path).isSound)
        }
        #expect(frames[0].count == 20)
        #expect(frames[0] == frames[1])
    }
}
