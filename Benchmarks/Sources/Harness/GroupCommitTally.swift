import CoreMetrics
import Foundation

/// Counts EventLog's segment syncs, the appends each covered, and their
/// duration, from the log's `eventlog_group_commit_writes` and
/// `eventlog_sync_duration` (README, "Metrics"): a `MetricsFactory` handed
/// to one log (`LogOptions.metricsFactory`). Every other metric goes nowhere.
///
/// Thread-safe.
public final class GroupCommitTally: MetricsFactory, @unchecked Sendable {
    private let lock = NSLock()
    private var syncs = 0
    private var appends = 0
    private var syncNanoseconds: Int64 = 0

    public init() {}

    /// Segment syncs led, the appends they covered, and their summed duration.
    public var totals: (syncs: Int, appends: Int, syncNanoseconds: Int64) {
        lock.lock()
        defer { lock.unlock() }
        return (syncs, appends, syncNanoseconds)
    }

    fileprivate func add(appends count: Int64) {
        lock.lock()
        syncs += 1
        appends += Int(count)
        lock.unlock()
    }

    fileprivate func add(nanoseconds: Int64) {
        lock.lock()
        syncNanoseconds += nanoseconds
        lock.unlock()
    }

    private static func isSegment(_ dimensions: [(String, String)]) -> Bool {
        dimensions.contains { $0.0 == "file" && $0.1 == "segment" }
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard label == "eventlog_group_commit_writes", Self.isSegment(dimensions) else { return NOOPMetricsHandler.instance }
        return AppendsPerSync(tally: self)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard label == "eventlog_sync_duration", Self.isSegment(dimensions) else { return NOOPMetricsHandler.instance }
        return SyncDuration(tally: self)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        NOOPMetricsHandler.instance
    }
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { NOOPMetricsHandler.instance }
    public func destroyCounter(_ handler: any CounterHandler) {}
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    public func destroyMeter(_ handler: any MeterHandler) {}
    public func destroyRecorder(_ handler: any RecorderHandler) {}
    public func destroyTimer(_ handler: any TimerHandler) {}
}

private final class AppendsPerSync: RecorderHandler, @unchecked Sendable {
    let tally: GroupCommitTally
    init(tally: GroupCommitTally) { self.tally = tally }
    func record(_ value: Int64) { tally.add(appends: value) }
    func record(_ value: Double) { tally.add(appends: Int64(value)) }
}

private final class SyncDuration: TimerHandler, @unchecked Sendable {
    let tally: GroupCommitTally
    init(tally: GroupCommitTally) { self.tally = tally }
    func recordNanoseconds(_ duration: Int64) { tally.add(nanoseconds: duration) }
}
