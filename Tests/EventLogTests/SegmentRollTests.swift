import Foundation
import Testing
@testable import EventLog

/// Segments roll by size and by age; recovery scans only from the last checkpoint.
@Suite struct SegmentRollTests {
    @Test func rollsByAge() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.segmentMaxAge = .seconds(1)
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<10, batch: 5)
        #expect(Fixtures.segments(dir).count == 1)
        usleep(1_100_000)
        try Fixtures.append(log, 10..<20, batch: 5)
        #expect(Fixtures.segments(dir).count == 2)
        #expect(try Fixtures.expectContent(log, count: 20))
        try log.close()
    }

    @Test func aBatchLargerThanASegmentGetsASegmentOfItsOwn() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.segmentBytes = 4096
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<3, batch: 3, size: 100)
        try Fixtures.append(log, 3..<103, batch: 100, size: 200)  // ~25 KB in one batch
        try Fixtures.append(log, 103..<106, batch: 3, size: 100)
        #expect(try Fixtures.expectContent(log, count: 106))
        try log.close()
        let reopened = try Log.open(at: dir.path, options: options)
        #expect(try Fixtures.expectContent(reopened, count: 106))
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func recoveryScansOnlyFromTheLastCheckpoint() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.checkpointBytes = 64 << 10
        var dataEnd = 0
        do {
            let log = try Log.open(at: dir.path, options: options)
            try Fixtures.append(log, 0..<10_000, batch: 50, size: 100)  // ~1.2 MB in one segment
            log.batches.segments.waitForIndexWrites()  // the background checkpoints have landed
            dataEnd = log.batches.snapshot().active?.dataEnd ?? 0
            // A crash: no close.
        }
        let reopened = try Log.open(at: dir.path, options: options)
        #expect(reopened.recovery.previousShutdown == .unclean)
        #expect(reopened.recovery.scannedBytes > 0)
        #expect(reopened.recovery.scannedBytes <= 64 << 10 + 16 << 10, "scanned \(reopened.recovery.scannedBytes) of \(dataEnd)")
        #expect(try Fixtures.expectContent(reopened, count: 10_000))
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
