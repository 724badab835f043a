import Foundation
import Metrics
import MetricsTestKit
import Testing

@testable import EventLog

/// What a log reports to swift-metrics (README, "Metrics"), through a
/// factory given in `LogOptions.metricsFactory`.
@Suite struct MetricsTests {
    @Test func aLogReportsItsStateSyncsCursorsAndGroups() throws {
        let dir = TemporaryDirectory()
        let metrics = TestMetrics()
        var options = LogOptions(segmentBytes: 1 << 16, durability: .always)
        options.metricsFactory = metrics
        options.metricsInterval = .seconds(3600)  // reports are made by hand below
        let log = try Log.open(at: dir.path, options: options)
        let dims = [("log", dir.path)]
        #expect(try metrics.expectTimer("eventlog_open_duration", dims).values.count == 1)
        log.metricsReporter.report(log)  // the first report sets the baseline
        try Fixtures.append(log, 0..<3000, batch: 100)
        try log.commitCursor("relay", position: 1000)
        let group = try log.consumerGroup("workers")
        _ = try group.receive(maxCount: 5, timeout: .seconds(1))
        log.metricsReporter.report(log)

        #expect(try metrics.expectCounter("eventlog_appended_events_total", dims).totalValue == 3000)
        #expect(try metrics.expectCounter("eventlog_appended_bytes_total", dims).totalValue > 3000 * 40)
        let segments = try Log.inspect(at: dir.path).segments
        #expect(try metrics.expectGauge("eventlog_segments", dims).lastValue == Double(segments.count))
        #expect(try metrics.expectGauge("eventlog_end_position", dims).lastValue == 3000)
        #expect(try metrics.expectGauge("eventlog_cursor_lag_events", dims + [("cursor", "relay")]).lastValue == 2000)
        #expect(try metrics.expectGauge("eventlog_consumer_group_in_flight", dims + [("group", "workers")]).lastValue == 5)
        #expect(try metrics.expectGauge("eventlog_consumer_group_parked", dims + [("group", "workers")]).lastValue == 0)
        // Every append under .always waited for a sync: each was timed, with the writes it covered.
        let syncs = try metrics.expectTimer("eventlog_sync_duration", dims + [("file", "segment")]).values
        let writes = try metrics.expectRecorder("eventlog_group_commit_writes", dims + [("file", "segment")]).values
        #expect(syncs.count >= 30 && syncs.count == writes.count)
        #expect(writes.reduce(0, +) >= 30)
        _ = group
        try log.close()
    }

    /// The timer reports on its own: nothing needs calling.
    @Test func theTimerReports() throws {
        let dir = TemporaryDirectory()
        let metrics = TestMetrics()
        var options = LogOptions(durability: .none)
        options.metricsFactory = metrics
        options.metricsInterval = .milliseconds(10)
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<10, batch: 10)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? metrics.expectGauge("eventlog_end_position", [("log", dir.path)]).lastValue) != 10 {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(try metrics.expectGauge("eventlog_end_position", [("log", dir.path)]).lastValue == 10)
        try log.close()
    }
}
