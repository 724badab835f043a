import Foundation
import Testing
@testable import EventLog

/// `Log.readBatches(from:_:)` and its overload with events: every stored
/// batch as the segment files hold it, and the events `read(from:)` lends.
@Suite struct ReadBatchesTests {
    /// A scavenged log (rewritten segments with gaps between batches), plain and LZ4.
    @Test(arguments: [Compression.none, .lz4])
    func batchesAreWhatTheSegmentFilesHold(compression: Compression) throws {
        let dir = TemporaryDirectory()
        let log = try ScavengingTests.prepared(dir, compression: compression)
        #expect(try log.compact().segmentsRewritten > 0)

        var listed: [BatchInfo] = []
        try log.readBatches { listed.append($0) }
        // The same frames, in the same order, as a walk of the files' headers finds.
        var walked: [(segment: String, offset: Int, length: Int, base: UInt64, count: Int)] = []
        for path in Fixtures.segments(dir) {
            let name = URL(fileURLWithPath: path).lastPathComponent
            walked += Fixtures.batches(in: path).map { (name, $0.offset, $0.length, $0.base, $0.count) }
        }
        #expect(listed.map(\.segment) == walked.map(\.segment))
        #expect(listed.map(\.offset) == walked.map(\.offset))
        #expect(listed.map(\.length) == walked.map(\.length))
        #expect(listed.map(\.basePosition) == walked.map(\.base))
        #expect(listed.map(\.recordCount) == walked.map(\.count))
        // Each CRC32C is the one stored in the frame.
        for batch in listed {
            let bytes = Damage.read(dir.sub(batch.segment))
            let stored = bytes[(batch.offset + 4)..<(batch.offset + 8)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            #expect(batch.crc == stored, "\(batch)")
        }
        #expect(zip(listed, listed.dropFirst()).allSatisfy { $0.endPosition <= $1.basePosition })
        #expect(listed.contains { $0.compression == .lz4 } == (compression == .lz4))
        #expect(listed.allSatisfy { $0.compression == .lz4 ? $0.length < $0.uncompressedLength : $0.length == $0.uncompressedLength })

        // The events overload lends what read(from:) lends, from any position (a gap's too).
        let positions = try log.events(from: 0).map(\.position)
        let gap = zip(positions, positions.dropFirst()).first { $1 > $0 + 1 }.map { $0.0 + 1 }
        let middle = listed.first { $0.recordCount > 2 }.map { $0.basePosition + 1 }
        let starts: [UInt64] = [0, try #require(gap), try #require(middle), log.endPosition - 1, log.endPosition]
        for from in starts {
            var expected: [Event] = []
            try log.read(from: from) { expected.append(try $0.event()) }
            var lent: [Event] = []
            var batchesLent: [BatchInfo] = []
            try log.readBatches(from: from) { batchesLent.append($0) } events: { lent.append(try $0.event()) }
            #expect(lent == expected, "from \(from)")
            #expect(batchesLent == listed.filter { $0.endPosition > from }, "from \(from)")
        }
        try log.close()
    }

    @Test func aDamagedBatchIsAnErrorNamingItsFileAndOffset() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(segmentBytes: 4096, durability: .none))
        try Fixtures.append(log, 0..<200, batch: 10)
        try log.close()
        let segment = try #require(Fixtures.segments(dir).first)
        let batches = Fixtures.batches(in: segment)
        try #require(batches.count >= 3)
        Damage.flipBit(segment, at: batches[1].offset + BatchHeader.size + 1)
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        defer { try? reader.close() }
        var seen = 0
        #expect {
            try reader.readBatches { _ in seen += 1 }
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _) = error else { return false }
            return file == segment && offset == Int64(batches[1].offset)
        }
        #expect(seen == 1)
        // From past it, the walk passes the damaged batch on its header.
        var after = 0
        try reader.readBatches(from: batches[2].base) { _ in after += 1 }
        #expect(after > 0)
    }
}
