import Foundation
import Testing
@testable import EventLog

/// A torn final batch (the one being written when the process died) is cut
/// on open; the events before it are all there.
@Suite struct TornTailTests {
    /// Writes `batches` batches of 3 events without closing (as after a crash).
    func crashedLog(_ dir: TemporaryDirectory, batches: Int) throws -> String {
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try Fixtures.append(log, 0..<(batches * 3), batch: 3)
        // Released without close(): no clean-shutdown marker, like a kill.
        return Fixtures.segments(dir)[0]
    }

    @Test func cutAtEveryByteOfTheLastBatch() throws {
        let dir = TemporaryDirectory()
        let segment = try crashedLog(dir, batches: 4)
        let original = Damage.read(segment)
        let batches = Fixtures.batches(in: segment)
        #expect(batches.count == 4)
        let last = batches[3]
        for cut in last.offset..<(last.offset + last.length) {
            Damage.write(segment, Array(original[0..<cut]))
            let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            #expect(log.endPosition == 9, "cut at \(cut)")
            #expect(try Fixtures.expectContent(log, count: 9))
            if cut > last.offset { #expect(log.recovery.tailCut?.offset == Int64(last.offset)) }
        }
    }

    @Test(arguments: [0, 1, 7])
    func zerosOrGarbageAfterTheData(seed: UInt64) throws {
        let dir = TemporaryDirectory()
        let segment = try crashedLog(dir, batches: 5)
        let end = Fixtures.batches(in: segment).last.map { $0.offset + $0.length } ?? 0
        var rng = SplitMix64(seed: seed)
        let tail: [UInt8] = seed == 0
            ? [UInt8](repeating: 0, count: 5000)
            : (0..<Int(100 + rng.next() % 4000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        Damage.overwrite(segment, at: end, with: tail)
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(log.endPosition == 15)
        #expect(try Fixtures.expectContent(log, count: 15))
        // Appending after the cut works, and the new events follow on.
        try Fixtures.append(log, 15..<21, batch: 2)
        try log.close()
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(try Fixtures.expectContent(reopened, count: 21))
        // The open zeroed the garbage after the cut: past the new batches
        // (15, 17, 19) only zeros are left of it, and verify, beside the open
        // writer, finds nothing.
        let batches = Fixtures.batches(in: segment)
        #expect(batches.map(\.base) == [0, 3, 6, 9, 12, 15, 17, 19])
        let dataEnd = batches.last.map { $0.offset + $0.length } ?? 0
        #expect(dataEnd < end + tail.count, "the new batches overwrote all of the garbage")
        if dataEnd < end + tail.count {
            #expect(Damage.read(segment)[dataEnd..<(end + tail.count)].allSatisfy { $0 == 0 })
        }
        #expect(try Log.verify(at: dir.path).isSound)
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func tornTailIsNotReportedAfterACleanClose() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try Fixtures.append(log, 0..<30, batch: 3)
        try log.close()
        let segment = Fixtures.segments(dir)[0]
        let last = Fixtures.batches(in: segment).last!
        // The last batch was acknowledged and the log closed: damage there is corruption, not a torn tail.
        Damage.flipBit(segment, at: last.offset + 60)
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: LogOptions(durability: .none)) }
    }
}
