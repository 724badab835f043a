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

    /// Read throughput: every event a read lends to its caller is counted once
    /// in `eventlog_read_events_total`, its data bytes in
    /// `eventlog_read_bytes_total`, whichever read lent it (a filtered one
    /// counts each event its filter was shown); the library's own reads (a
    /// cursor's lag, a consumer group's scan ahead) are not. With LZ4, a
    /// stream read finds its records through the point-read path: still
    /// counted once.
    @Test(arguments: [Compression.none, .lz4])
    func readsAreCountedOnceEach(compression: Compression) async throws {
        let dir = TemporaryDirectory()
        let metrics = TestMetrics()
        var options = LogOptions(segmentBytes: 1 << 16, durability: .none, compression: compression)
        options.metricsFactory = metrics
        options.metricsInterval = .seconds(3600)  // reports are made by hand below
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<700, batch: 50, size: 60)
        try log.commitCursor("relay", position: 100)
        let dims = [("log", dir.path)]
        let events = { try metrics.expectCounter("eventlog_read_events_total", dims).totalValue }
        let bytes = { try metrics.expectCounter("eventlog_read_bytes_total", dims).totalValue }
        log.metricsReporter.report(log)  // reads the cursor's lag, which is not counted
        #expect(try events() == 0)
        #expect(try bytes() == 0)

        // What the callers were lent, counted on their side.
        var lent = (events: 0, bytes: 0)
        func take(_ view: EventView) { lent = (lent.events + 1, lent.bytes + view.data.count) }
        func takeOwned(_ event: Event) { lent = (lent.events + 1, lent.bytes + event.data.count) }
        var allBytes = 0
        try log.read(from: 0) { view in
            take(view)
            allBytes += view.data.count
        }
        try log.events(from: 100, maxCount: 10).forEach { takeOwned($0) }
        try log.withEvent(at: 5) { take($0) }
        takeOwned(try log.event(at: 6))
        try log.readStream("stream-3") { take($0) }
        try log.events(inStream: "stream-2", from: 4, maxCount: 5, direction: .backward).forEach { takeOwned($0) }
        try log.readBatches(from: 650, { _ in }, events: { take($0) })
        let subscription = try log.subscribe(from: .position(690))
        try subscription.poll(maxCount: 100, timeout: .zero) { take($0) }
        for try await event in try log.liveEvents(from: .position(695)) {
            takeOwned(event)
            if event.position == 699 { break }
        }
        let group = try log.consumerGroup("workers")
        for delivery in try group.receive(maxCount: 3, timeout: .seconds(1)) { takeOwned(delivery.event) }
        // A filtered read shows every event to its filter: all 700 count.
        var matched = 0
        try log.read(from: 0, filter: EventFilter(types: ["Type1"])) { _ in matched += 1 }
        lent = (lent.events + 700, lent.bytes + allBytes)
        #expect(matched == 233 && lent.events == 700 + 10 + 2 + 100 + 5 + 50 + 10 + 5 + 3 + 700)
        log.metricsReporter.report(log)
        #expect(try events() == Int64(lent.events))
        #expect(try bytes() == Int64(lent.bytes))

        // The next report adds what was read since.
        _ = try log.cursors()  // the library's own read: not counted
        try log.read(from: 10, maxCount: 4) { take($0) }
        log.metricsReporter.report(log)
        #expect(try events() == Int64(lent.events) && lent.events == 1589)
        #expect(try bytes() == Int64(lent.bytes))
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
