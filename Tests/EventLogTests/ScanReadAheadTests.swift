import Foundation
import Testing
@testable import EventLog

/// A long scan's read-ahead thread (`ScanReadAhead`, `LogOptions.scanReadAhead`):
/// it starts only for long scans (and filtered reads past their second
/// chunk), reads every segment ahead of the scan,
/// changes nothing the scan lends or reports, and a damaged or truncated
/// segment is reported by the scan exactly as without it.
@Suite struct ScanReadAheadTests {
    static let events = 80_000

    /// About 20 MiB of events (250 bytes each) in segments of 4 MiB.
    static func longLog(_ dir: TemporaryDirectory) throws {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 4 << 20
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<events, batch: 100, size: 200)
        try log.close()
    }

    static func open(_ dir: TemporaryDirectory, readAhead: Bool) throws -> Log {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 4 << 20
        options.scanReadAhead = readAhead
        return try Log.open(at: dir.path, options: options)
    }

    /// How far each segment's mapping was read ahead, and where its data ends.
    static func readAhead(_ log: Log) -> [(readAheadEnd: Int, dataEnd: Int)] {
        let snapshot = log.batches.snapshot()
        return (0..<snapshot.count).map { (snapshot[$0].mapping.readAheadEnd.load(ordering: .relaxed), snapshot[$0].dataEnd) }
    }

    /// FNV-1a over every event's position and data: what a scan lent.
    static func digest(_ log: Log, from position: UInt64 = 0, maxCount: Int = .max) throws -> (count: Int, hash: UInt64) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var count = 0
        try log.read(from: position, maxCount: maxCount) { view in
            withUnsafeBytes(of: view.position.littleEndian) { for byte in $0 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 } }
            for byte in view.data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            count += 1
        }
        return (count, hash)
    }

    @Test func aLongScanReadsEverySegmentAheadAndLendsTheSameEvents() throws {
        let dir = TemporaryDirectory()
        try Self.longLog(dir)

        let plain = try Self.open(dir, readAhead: false)
        let alone = try Self.digest(plain)
        #expect(alone.count == Self.events)
        #expect(Self.readAhead(plain).allSatisfy { $0.readAheadEnd == 0 })
        try plain.close()

        let log = try Self.open(dir, readAhead: true)
        let segments = Self.readAhead(log)
        #expect(segments.count >= 5)
        #expect(segments.allSatisfy { $0.readAheadEnd == 0 })
        let ahead = try Self.digest(log)
        #expect(ahead.count == alone.count)
        #expect(ahead.hash == alone.hash)
        // The thread went through every segment (it runs ahead of the scan,
        // so it was past the start of the last one before the scan was).
        let after = Self.readAhead(log)
        #expect(after.allSatisfy { $0.readAheadEnd > 0 }, "\(after)")
        #expect(after.dropLast().allSatisfy { $0.readAheadEnd == $0.dataEnd }, "\(after)")
        // Read ahead once: a second scan starts no thread (nothing moves), and lends the same.
        #expect(try Self.digest(log).hash == alone.hash)
        #expect(Self.readAhead(log).map(\.readAheadEnd) == after.map(\.readAheadEnd))
        try log.close()
    }

    @Test func aFilteredReadOfTheWholeLogReadsAheadOnceItGoesOnPastTwoChunks() throws {
        let dir = TemporaryDirectory()
        try Self.longLog(dir)
        let filter = EventFilter(streamPrefix: "stream-3")
        func filtered(_ log: Log, maxCount: Int = .max) throws -> [UInt64] {
            var positions: [UInt64] = []
            try log.read(from: 0, maxCount: maxCount, filter: filter) { positions.append($0.position) }
            return positions
        }
        let plain = try Self.open(dir, readAhead: false)
        let alone = try filtered(plain)
        try plain.close()
        #expect(alone.count == (0..<Self.events).filter { $0 % 7 == 3 }.count)

        let log = try Self.open(dir, readAhead: true)
        // Ended within its first chunk of 4,096 events: no thread.
        #expect(try filtered(log, maxCount: 10) == Array(alone.prefix(10)))
        #expect(Self.readAhead(log).allSatisfy { $0.readAheadEnd == 0 })
        // The whole log: the same events, every segment read ahead.
        #expect(try filtered(log) == alone)
        let after = Self.readAhead(log)
        #expect(after.allSatisfy { $0.readAheadEnd > 0 }, "\(after)")
        try log.close()
    }

    @Test func aShortScanStartsNoThread() throws {
        let dir = TemporaryDirectory()
        try Self.longLog(dir)
        let log = try Self.open(dir, readAhead: true)
        // Too few events asked for.
        #expect(try Self.digest(log, maxCount: ScanReadAhead.minimumEvents - 1).count == ScanReadAhead.minimumEvents - 1)
        // Too few bytes left: the last 10,000 events (about 2.5 MiB).
        #expect(try Self.digest(log, from: UInt64(Self.events - 10_000)).count == 10_000)
        #expect(Self.readAhead(log).allSatisfy { $0.readAheadEnd == 0 })
        try log.close()
    }

    @Test func damageIsReportedAsWithoutReadAheadAndAgainOnARetry() throws {
        let dir = TemporaryDirectory()
        try Self.longLog(dir)
        let target = Fixtures.segments(dir)[2]
        let batch = Fixtures.batches(in: target)[5]
        Damage.flipBit(target, at: Fixtures.firstRecord(in: target, batchAt: batch.offset) + 30, bit: 2)

        func failure(readAhead: Bool) throws -> (file: String, offset: Int64, lent: Int) {
            let log = try Self.open(dir, readAhead: readAhead)
            defer { try? log.close() }
            var lent = 0
            do {
                try log.read(from: 0) { _ in lent += 1 }
                Issue.record("a damaged batch was read")
                return ("", -1, lent)
            } catch let EventLogError.corruption(file, offset, _) {
                return (file, offset, lent)
            }
        }
        let alone = try failure(readAhead: false)
        #expect(alone.file == target)
        #expect(alone.offset == Int64(batch.offset))
        for _ in 0..<2 {
            let ahead = try failure(readAhead: true)
            #expect(ahead.file == alone.file)
            #expect(ahead.offset == alone.offset)
            #expect(ahead.lent == alone.lent)
        }
    }

    @Test func aSegmentTruncatedUnderTheMappingStopsTheThreadAndTheScanSaysSo() throws {
        let dir = TemporaryDirectory()
        try Self.longLog(dir)
        let log = try Self.open(dir, readAhead: true)
        defer { try? log.close() }
        // Another program cuts a sealed segment in half under the mapping:
        // the thread meets SIGBUS there first (under the guard), and stops.
        let target = Fixtures.segments(dir)[1]
        let length = Damage.read(target).count
        Damage.truncate(target, to: length / 2)
        do {
            try log.read(from: 0) { _ in }
            Issue.record("a truncated segment was read")
        } catch let EventLogError.corruption(file, offset, reason) {
            #expect(file == target)
            #expect(offset >= Int64(length / 2 - (1 << 16)))
            #expect(reason == MappedBytes.unreadableReason)
        }
        // The thread stopped where it could not read: not past the cut.
        let segments = Self.readAhead(log)
        #expect(segments[1].readAheadEnd <= length / 2 + ScanReadAhead.chunk)
    }

    @Test func aScanStoppedByItsCallerReturnsWithTheThreadStopped() throws {
        let dir = TemporaryDirectory()
        try Self.longLog(dir)
        let log = try Self.open(dir, readAhead: true)
        struct Enough: Error {}
        var lent = 0
        #expect(throws: Enough.self) {
            try log.read(from: 0) { _ in
                lent += 1
                guard lent == 1_000 else { return }
                // Stopped once the thread is under way.
                let deadline = Date().addingTimeInterval(10)
                while Self.readAhead(log)[0].readAheadEnd == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
                throw Enough()
            }
        }
        #expect(lent == 1_000)
        // Joined before the scan returned: nothing moves after it.
        let ends = Self.readAhead(log).map(\.readAheadEnd)
        #expect(ends[0] > 0)
        Thread.sleep(forTimeInterval: 0.05)
        #expect(Self.readAhead(log).map(\.readAheadEnd) == ends)
        try log.close()
    }
}
