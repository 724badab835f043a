import Foundation
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
}
