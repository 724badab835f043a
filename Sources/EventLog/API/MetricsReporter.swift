import Dispatch
import CoreMetrics
import Metrics
import Synchronization

/// Publishes a log's state to swift-metrics every `LogOptions.metricsInterval`
/// (README, "Metrics", names every metric): events and bytes appended (as
/// counters of what the log grew by since the last report), events and data
/// bytes read (what the log's `ReadTally` gained since), the segments
/// and their bytes, the start and end positions, each cursor's lag, and
/// each live consumer group's events in flight and parked.
///
/// Nothing here runs on an append or a read (a read adds to the tally once
/// per call, not per event): the state is read on a timer
/// of its own queue (GCD, not the cooperative pool; a report may block on
/// the disk to count a cursor's lag), so a log pays for metrics once per
/// interval, bootstrapped backend or not. Metrics objects are made from the
/// backend bootstrapped when the log opens: bootstrap before opening.
///
/// Thread-safe; `stop()` waits for a report under way.
final class MetricsReporter: Sendable {
    private struct State: Sendable {
        var lastEnd: UInt64?
        var lastWritten: UInt64?
        /// The read tally's totals at the last report.
        var lastRead: (events: UInt64, bytes: UInt64) = (0, 0)
        /// Cursor and group gauges by name, made once each.
        var cursorLag: [String: Gauge] = [:]
        var groupGauges: [String: (inFlight: Gauge, parked: Gauge)] = [:]
        var stopped = false
    }

    private let queue = DispatchQueue(label: "EventLog.metrics")
    /// GCD's timer, touched only under the mutex (cancel is thread-safe).
    private struct TimerSource: @unchecked Sendable { let source: any DispatchSourceTimer }
    private let timer = Mutex<TimerSource?>(nil)
    private let state = Mutex(State())
    private let dimensions: [(String, String)]
    private let appendedEvents: Counter
    private let appendedBytes: Counter
    private let readEvents: Counter
    private let readBytes: Counter
    private let segments: Gauge
    private let segmentBytes: Gauge
    private let startPosition: Gauge
    private let endPosition: Gauge

    private let factory: any MetricsFactory

    init(path: String, factory: any MetricsFactory) {
        self.factory = factory
        dimensions = [("log", path)]
        appendedEvents = Counter(label: "eventlog_appended_events_total", dimensions: dimensions, factory: factory)
        appendedBytes = Counter(label: "eventlog_appended_bytes_total", dimensions: dimensions, factory: factory)
        readEvents = Counter(label: "eventlog_read_events_total", dimensions: dimensions, factory: factory)
        readBytes = Counter(label: "eventlog_read_bytes_total", dimensions: dimensions, factory: factory)
        segments = Gauge(label: "eventlog_segments", dimensions: dimensions, factory: factory)
        segmentBytes = Gauge(label: "eventlog_segment_bytes", dimensions: dimensions, factory: factory)
        startPosition = Gauge(label: "eventlog_start_position", dimensions: dimensions, factory: factory)
        endPosition = Gauge(label: "eventlog_end_position", dimensions: dimensions, factory: factory)
    }

    /// Reports every `interval` (the first after one interval), while `log` lives and until `stop()`.
    func start(every interval: Duration, for log: Log) {
        let source = DispatchSource.makeTimerSource(queue: queue)
        let period = DispatchTimeInterval.nanoseconds(Int(max(interval.wholeNanoseconds, 1_000_000)))
        source.schedule(deadline: .now() + period, repeating: period)
        source.setEventHandler { [weak self, weak log] in
            guard let self, let log else { return }
            self.report(log)
        }
        let box = TimerSource(source: source)
        timer.withLock { $0 = box }
        box.source.resume()
    }

    /// Stops the timer; returns once a report under way is done.
    func stop() {
        state.withLock { $0.stopped = true }
        timer.withLock { timer in
            timer?.source.cancel()
            timer = nil
        }
        queue.sync {}
    }

    deinit {
        timer.withLock { $0?.source.cancel() }
    }

    /// One report (on `queue`).
    func report(_ log: Log) {
        if state.withLock({ $0.stopped }) { return }
        let snapshot = log.batches.snapshot()
        var bytes = 0
        for i in 0..<snapshot.count { bytes += snapshot[i].dataEnd }
        segments.record(snapshot.count)
        segmentBytes.record(bytes)
        startPosition.record(Int64(clamping: snapshot.startPosition))
        endPosition.record(Int64(clamping: snapshot.endPosition))
        let written = log.options.readOnly ? nil : log.batches.writer.withLock { $0.writtenSequence }
        let read = log.batches.readTally.totals
        let cursors = (try? log.cursors()) ?? []
        let groups = log.consumers.groups.withLock { $0.compactMapValues { $0.group } }
        state.withLock { state in
            if let last = state.lastEnd, snapshot.endPosition > last {
                appendedEvents.increment(by: Int64(clamping: snapshot.endPosition - last))
            }
            state.lastEnd = snapshot.endPosition
            if let written {
                if let last = state.lastWritten, written > last { appendedBytes.increment(by: Int64(clamping: written - last)) }
                state.lastWritten = written
            }
            // What the tally gained since the last report (from the open,
            // for the first); wrapping, as the totals do at 2^64.
            let newEvents = read.events &- state.lastRead.events
            let newBytes = read.bytes &- state.lastRead.bytes
            if newEvents > 0 { readEvents.increment(by: Int64(clamping: newEvents)) }
            if newBytes > 0 { readBytes.increment(by: Int64(clamping: newBytes)) }
            state.lastRead = read
            for cursor in cursors {
                let gauge = state.cursorLag[cursor.name] ?? Gauge(
                    label: "eventlog_cursor_lag_events", dimensions: dimensions + [("cursor", cursor.name)], factory: factory)
                state.cursorLag[cursor.name] = gauge
                gauge.record(Int64(clamping: cursor.lag.events))
            }
            for (name, group) in groups {
                let gauges = state.groupGauges[name] ?? (
                    Gauge(label: "eventlog_consumer_group_in_flight", dimensions: dimensions + [("group", name)], factory: factory),
                    Gauge(label: "eventlog_consumer_group_parked", dimensions: dimensions + [("group", name)], factory: factory))
                state.groupGauges[name] = gauges
                gauges.inFlight.record(group.inFlight)
                gauges.parked.record(group.parked().count)
            }
        }
    }
}
