import Foundation
import Synchronization
import Testing
@testable import EventLog

/// `Log.verify(at:progress:)` tells its progress after each segment (what
/// `eventlog verify` draws on a terminal).
@Suite struct VerifyProgressTests {
    @Test func progressComesOncePerSegmentAndEndsWithTheReport() throws {
        let dir = TemporaryDirectory()
        let log = try RetentionTests.filledLog(dir)
        try log.close()
        var seen: [VerificationProgress] = []
        let report = try Log.verify(at: dir.path) { seen.append($0) }
        #expect(report.isSound && report.segments > 5)
        #expect(seen.count == report.segments)
        #expect(seen.map(\.segmentsChecked) == Array(1...report.segments))
        #expect(seen.allSatisfy { $0.segmentCount == report.segments })
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.eventsChecked <= $1.eventsChecked })
        #expect(seen.last?.eventsChecked == report.events)
    }

    /// A clean-shutdown marker that names another end than the log's is a
    /// finding. One that a writer removed by opening the log while verify
    /// ran describes the log no longer: verify checks the log once more
    /// (without it), and the writer's appends and the index files its close
    /// left behind them are no finding. The writer opens from the progress
    /// callback after the first segment, once verify has read the marker and
    /// before it reads the last segment.
    @Test func theMarkerIsJudgedAsItIsWhenVerifyEnds() throws {
        let dir = TemporaryDirectory()
        let marker = dir.sub(FileNames.cleanShutdown)
        try RetentionTests.filledLog(dir).close()
        let closedAt600 = Damage.read(marker)
        let reopened = try Log.open(at: dir.path, options: RetentionTests.options())
        try reopened.append((600..<603).map(RetentionTests.event))
        try reopened.close()

        // The marker of the earlier close, put back: still there, and wrong.
        Damage.write(marker, closedAt600)
        let stale = try Log.verify(at: dir.path)
        #expect(stale.problems.map(\.file) == [marker])
        #expect(stale.problems.first?.reason == "the log ends at 603 but was closed at 600")

        // The right marker; a writer opens (removing it) and appends while verify runs.
        try Log.open(at: dir.path, options: RetentionTests.options()).close()
        var writer: Log?
        var appended = false
        var calls = 0
        defer { try? writer?.close() }
        let raced = try Log.verify(at: dir.path) { progress in
            calls += 1
            guard progress.segmentsChecked == 1, writer == nil else { return }
            writer = try? Log.open(at: dir.path, options: RetentionTests.options())
            appended = (try? writer?.append((603..<605).map(RetentionTests.event))) != nil
        }
        #expect(appended && !FileManager.default.fileExists(atPath: marker))
        #expect(raced.events == 605, "verify read the writer's new events")
        #expect(raced.isSound, "\(raced.problems)")
        #expect(calls == 2 * raced.segments, "checked twice: progress started again")
        #expect(raced.notes == [LogVerifier.markerChangedNote])
    }

    /// The last segment's index file beside a live writer (or after a crash)
    /// may hold fewer entries than verify rebuilds (a checkpoint lags) or
    /// more (the writer appended and checkpointed after verify read the
    /// data): only where both go must they agree.
    @Test func aLastSegmentsIndexFileAgreesAsFarAsBothGo() {
        #expect(LogVerifier.agree([1, 2], [1, 2, 3]))
        #expect(LogVerifier.agree([1, 2, 3], [1, 2]))
        #expect(LogVerifier.agree([Int](), [1]))
        #expect(!LogVerifier.agree([1, 4, 3], [1, 2]))
        #expect(!LogVerifier.agree([1, 2], [1, 3, 3]))
    }

    /// `verify` beside a live writer (`.always`) whose batch at the scan's
    /// stop lands after the scan: here the third batch is zeros while verify
    /// scans and is written back when it reads the segment's index
    /// checkpoint (after the look past the stop, before the judgement).
    /// The later batches record that the stop was synced; the batch standing
    /// there when judged makes it the end of the data verify read, not
    /// damage. The same zeros left in place are reported at their offset.
    @Test func aWriterRacingVerifyAtTheStopIsNotDamage() throws {
        let dir = TemporaryDirectory()
        let live = try Fixtures.liveWriter(dir)
        defer { try? live.log.close() }
        let (segment, third, written) = (live.segment, live.third, live.thirdBytes)
        let zeros = [UInt8](repeating: 0, count: written.count)
        let index = dir.sub(FileNames.offsetIndex(0))
        let faults = StorageFaults { operation, path in
            if operation == .open, path == index { Damage.overwrite(segment, at: third.offset, with: written) }
            return nil
        }
        Damage.overwrite(segment, at: third.offset, with: zeros)
        let raced = try Log.verify(at: dir.path, progress: nil, faults: faults)
        #expect(raced.isSound, "\(raced.problems)")
        #expect(raced.events == 6, "the data verify read ends at the stop")

        Damage.overwrite(segment, at: third.offset, with: zeros)
        let damaged = try Log.verify(at: dir.path)
        #expect(damaged.problems.map(\.offset) == [Int64(third.offset)])
        #expect(damaged.problems.first?.file == segment)
    }

    /// A stream table run that a live writer merged away between verify's
    /// listing and its open (here: removed by a fault hook as the check of
    /// the runs opens it, the second open of the file) is gone, not
    /// damaged: no "does not open".
    @Test func aRunMergedAwayWhileVerifyListsIsNoFinding() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try Fixtures.append(log, 0..<30, batch: 3)
        try log.batches.checkpointNow()
        try log.close()
        let runs = dir.files().filter { $0.hasSuffix(".streamtable") }
        try #require(!runs.isEmpty)
        let victim = dir.sub(runs[0])
        let opens = Mutex(0)
        let faults = StorageFaults { operation, path in
            guard operation == .open, path == victim else { return nil }
            if opens.withLock({ $0 += 1; return $0 }) == 2 { try? FileManager.default.removeItem(atPath: path) }
            return nil
        }
        let report = try Log.verify(at: dir.path, progress: nil, faults: faults)
        #expect(opens.withLock { $0 } == 2 && !FileManager.default.fileExists(atPath: victim))
        #expect(!report.problems.contains { $0.reason.contains("does not open") }, "\(report.problems)")
    }
}
