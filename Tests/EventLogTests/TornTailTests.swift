import Foundation
import Synchronization
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

    /// A read-only open beside a live writer (the writer here, `.always`):
    /// the writer's batch at the scan's stop lands after the scan and before
    /// the judgement, on every try, as when another process writes while a
    /// reader opens the log or a refresh opens a new segment. The look past
    /// the stop sees the later batches and the sync they record, which alone
    /// would read as damage; the batch standing at the stop when judged makes
    /// it the end of the data known. Without that, the open (and its one
    /// retry) fails with corruption.
    @Test func aWriterRacingTheReadOnlyOpenIsNotDamage() throws {
        let dir = TemporaryDirectory()
        let live = try Fixtures.liveWriter(dir)
        defer { try? live.log.close() }
        let (segment, third, written) = (live.segment, live.third, live.thirdBytes)
        let racing = Mutex(true)
        var options = LogOptions(createIfMissing: false, readOnly: true)
        options.tailRace = { point, path in
            guard path == segment, racing.withLock({ $0 }) else { return }
            switch point {
            case .beforeScan: Damage.overwrite(segment, at: third.offset, with: [UInt8](repeating: 0, count: written.count))
            case .afterLook: Damage.overwrite(segment, at: third.offset, with: written)
            }
        }
        let reader = try Log.open(at: dir.path, options: options)
        defer { try? reader.close() }
        #expect(reader.endPosition == 6, "the data known ends at the batch that arrived")
        #expect(reader.recovery.tailCut == nil)
        #expect(try Fixtures.expectContent(reader, count: 6))
        // The next refresh reads on from the stop (a scan, no judgement).
        racing.withLock { $0 = false }
        #expect(try reader.refresh())
        #expect(try Fixtures.expectContent(reader, count: 15))

        // Damage that stays is still damage: the same zeros, no writer filling them.
        Damage.overwrite(segment, at: third.offset, with: [UInt8](repeating: 0, count: written.count))
        for _ in 0..<2 {
            do {
                _ = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
                Issue.record("a read-only open accepted zeros under synced batches")
            } catch EventLogError.corruption(let file, let offset, _) {
                #expect(file == segment && offset == Int64(third.offset))
            }
        }
    }

    /// A read-only open beside a live writer that rolls to a new segment and
    /// writes a stream table run covering it while the reader opens (here,
    /// when the reader reads the log's metadata, after it listed the
    /// segments). Runs are evidence of synced data: read after the listing,
    /// that run covers positions past the last segment listed, and the open
    /// failed with corruption there. Read before it, they cover only what
    /// the listing holds: the reader opens with the segments it listed, and
    /// a refresh finds the new one.
    @Test func aRollAndARunWhileAReaderOpensAreNoDamage() throws {
        let dir = TemporaryDirectory()
        let writer = try Log.open(at: dir.path, options: LogOptions(segmentBytes: 65536, durability: .always))
        defer { try? writer.close() }
        try Fixtures.append(writer, 0..<30, batch: 3)
        try #require(Fixtures.segments(dir).count == 1)
        let metadata = dir.sub(FileNames.metadata)
        let directory = dir.path
        let fired = Mutex(false)
        let appended = Mutex(30)
        var options = LogOptions(createIfMissing: false, readOnly: true)
        options.storageFaults = StorageFaults { operation, path in
            let first = fired.withLock { (was: inout Bool) -> Bool in
                defer { was = true }
                return !was
            }
            guard operation == .open, path == metadata, first else { return nil }
            do {
                try appended.withLock { count in
                    while Self.segmentCount(directory) == 1 {
                        try Fixtures.append(writer, count..<(count + 30), batch: 3, size: 400)
                        count += 30
                    }
                }
                try writer.batches.checkpointNow()
            } catch {
                Issue.record("the writer failed: \(error)")
            }
            return nil
        }
        let reader = try Log.open(at: dir.path, options: options)
        defer { try? reader.close() }
        #expect(fired.withLock { $0 })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.hasSuffix(".streamtable") })
        let firstSegmentEnd = try #require(writer.batches.snapshot().sealed.first?.endPosition)
        #expect(reader.endPosition == firstSegmentEnd, "the log as listed: its first segment")
        #expect(try reader.refresh())
        #expect(reader.endPosition == writer.endPosition)
        #expect(try reader.events(from: 0, maxCount: 100_000).count == Int(writer.endPosition))
    }

    static func segmentCount(_ directory: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".segment") }.count
    }
}
