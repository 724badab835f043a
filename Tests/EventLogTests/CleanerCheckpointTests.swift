import Foundation
import Testing
@testable import EventLog

/// The cleaner checkpoint `eventlog.cleaner` (Format.md §3.4): a writer's
/// first scavenging pass after a restart reads only what came since its
/// last pass, unless a stream marker came since; a damaged checkpoint is
/// judged again and reported by `verify`.
@Suite struct CleanerCheckpointTests {
    static func sealedCount(_ log: Log) -> Int { log.maintenance.log.snapshot().sealed.count }

    static func pass(_ log: Log) throws -> Scavenger.Outcome { try log.maintenance.scavenger.run(dryRun: false) }

    static func reopened(_ log: Log, _ dir: TemporaryDirectory) throws -> Log {
        try log.close()
        return try Log.open(at: dir.path, options: RetentionTests.options())
    }

    @Test func theFirstPassAfterARestartReadsOnlyWhatCameSince() throws {
        let dir = TemporaryDirectory()
        var log = try RetentionTests.filledLog(dir)
        let sealed = Self.sealedCount(log)
        try #require(sealed > 5)
        // Nothing is dead: every sealed segment is judged once, and found clean.
        let first = try Self.pass(log)
        #expect(first.segmentsJudged == sealed && first.segmentsRewritten == 0)
        #expect(try Self.pass(log).segmentsJudged == 0)

        log = try Self.reopened(log, dir)
        #expect(try Self.pass(log).segmentsJudged == 0, "a restart forgot the segments found clean")

        // More events, no marker: only the segments sealed since are judged.
        for first in stride(from: 600, to: 900, by: 10) { try log.append((first..<(first + 10)).map(RetentionTests.event)) }
        let sealedAfter = Self.sealedCount(log)
        try #require(sealedAfter > sealed)
        log = try Self.reopened(log, dir)
        #expect(try Self.pass(log).segmentsJudged == sealedAfter - sealed)

        // A marker since the checkpoint, of a stream with events in every segment: every segment is judged again.
        _ = try log.truncateStream("order-3", before: 1)
        log = try Self.reopened(log, dir)
        let afterMarker = try Self.pass(log)
        #expect(afterMarker.segmentsJudged == Self.sealedCount(log))
        try log.close()
    }

    /// A log whose stream `lone` has 10 events, all in the first segment or
    /// two, then 600 events of 23 other streams (every segment holds them);
    /// a first pass found every sealed segment clean. Returns the log and
    /// how many sealed segments hold events of `lone`.
    static func loneStreamLog(_ dir: TemporaryDirectory) throws -> (Log, holdingLone: Int) {
        let log = try Log.open(at: dir.path, options: RetentionTests.options())
        try log.append((0..<10).map { i in NewEvent(stream: "lone", type: "Placed", data: Array(repeating: UInt8(i), count: 90)) })
        for first in stride(from: 0, to: 600, by: 10) { try log.append((first..<(first + 10)).map(RetentionTests.event)) }
        let first = try Self.pass(log)
        #expect(first.segmentsJudged == Self.sealedCount(log) && first.segmentsRewritten == 0)
        let lonePositions = try log.events(inStream: "lone").map(\.position)
        let holding = log.maintenance.log.snapshot().sealed.filter { segment in
            lonePositions.contains { $0 >= segment.basePosition && $0 < segment.endPosition }
        }.count
        return (log, holding)
    }

    @Test func aMarkerMakesTheNextPassJudgeOnlyTheSegmentsOfItsStream() throws {
        let dir = TemporaryDirectory()
        let (log, holdingLone) = try Self.loneStreamLog(dir)
        try #require(holdingLone >= 1 && holdingLone < Self.sealedCount(log) / 2)
        _ = try log.truncateStream("lone", before: 1)
        #expect(try Self.pass(log).segmentsJudged == holdingLone)
        #expect(try Self.pass(log).segmentsJudged == 0)
        try log.close()
    }

    @Test func aMarkerBeforeARestartMakesTheFirstPassJudgeOnlyTheSegmentsOfItsStream() throws {
        let dir = TemporaryDirectory()
        var (log, holdingLone) = try Self.loneStreamLog(dir)
        try #require(holdingLone >= 1 && holdingLone < Self.sealedCount(log) / 2)
        _ = try log.truncateStream("lone", before: 1)
        log = try Self.reopened(log, dir)
        #expect(try Self.pass(log).segmentsJudged == holdingLone)
        try log.close()
    }

    @Test func aDamagedCheckpointIsJudgedAgainAndReported() throws {
        let dir = TemporaryDirectory()
        var log = try RetentionTests.filledLog(dir)
        _ = try Self.pass(log)
        let sealed = Self.sealedCount(log)
        try log.close()
        let path = dir.sub(FileNames.cleanerCheckpoint)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[20] ^= 0x40  // the judged-to position
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let report = try Log.verify(at: dir.path)
        let problem = try #require(report.problems.first { $0.file == path }, "\(report.problems)")
        #expect(problem.offset == Int64(bytes.count - 4), "\(problem)")  // the checksum's offset

        log = try Log.open(at: dir.path, options: RetentionTests.options())
        #expect(try Self.pass(log).segmentsJudged == sealed)
        try log.close()
        // The pass wrote it again.
        #expect(try Log.verify(at: dir.path).problems.isEmpty)
    }

    @Test func decodeRefusesWhatDoesNotHold() throws {
        let checkpoint = CleanerCheckpoint(
            judgedTo: 900, sealedEnd: 0, tombstoneRetention: -1, keyWindowStart: 0,
            segments: [.init(basePosition: 0, endPosition: 40, dataEnd: 4000, recheckAt: .max),
                       .init(basePosition: 40, endPosition: 90, dataEnd: 4090, recheckAt: 12)])
        let bytes = checkpoint.encode()
        #expect(try CleanerCheckpoint.decode(bytes, file: "f") == checkpoint)
        #expect(throws: EventLogError.self) { try CleanerCheckpoint.decode(Array(bytes.dropLast(32)), file: "f") }

        // A count that does not fill the file (checksum recomputed): corruption at the count.
        var wrongCount = Array(bytes.dropLast(4))
        wrongCount[48] = 3
        wrongCount += withUnsafeBytes(of: CRC32C.checksum(wrongCount).littleEndian, Array.init)
        #expect(Self.corruptionOffset { _ = try CleanerCheckpoint.decode(wrongCount, file: "f") } == 48)
        // Segments out of order: corruption at the second.
        var disordered = checkpoint
        disordered.segments.swapAt(0, 1)
        #expect(
            Self.corruptionOffset { _ = try CleanerCheckpoint.decode(disordered.encode(), file: "f") }
                == Int64(CleanerCheckpoint.headerSize + CleanerCheckpoint.segmentSize))
    }

    /// The offset of the corruption `body` throws; nil when it throws nothing or another error.
    static func corruptionOffset(_ body: () throws -> Void) -> Int64? {
        do {
            try body()
            return nil
        } catch {
            if case .corruption(_, let offset, _)? = error as? EventLogError { return offset }
            return nil
        }
    }
}
