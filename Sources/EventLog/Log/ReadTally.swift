import Synchronization

/// How many events a log's reads lent, and their data bytes: the count
/// behind the read-throughput metrics (`eventlog_read_events_total` and
/// `eventlog_read_bytes_total`, which `MetricsReporter` reports on its timer).
///
/// Counted once per read call, never per event: a `LogReader` made with a
/// tally sums what it lends in fields of its own and adds the sums here
/// when it ends (two relaxed atomic adds). Which reads count: those whose
/// events reach a caller (`Log.read`, `events`, `withEvent`, `event(at:)`,
/// filtered reads, stream reads, `readBatches(from:_:events:)`,
/// subscriptions' polls, the live sequence, consumer groups' deliveries);
/// a read through a filter counts every event the filter was shown. The
/// library's own reads (stream info, retry detection, a consumer group's
/// scan ahead, index rebuilds, cursor lag) do not.
///
/// Thread-safe; the totals only grow (wrapping at 2^64).
final class ReadTally: Sendable {
    private let events = Atomic<UInt64>(0)
    private let bytes = Atomic<UInt64>(0)

    init() {}

    /// Adds one read call's events and data bytes.
    func add(events: Int, bytes: Int) {
        self.events.wrappingAdd(UInt64(truncatingIfNeeded: events), ordering: .relaxed)
        self.bytes.wrappingAdd(UInt64(truncatingIfNeeded: bytes), ordering: .relaxed)
    }

    /// The events and data bytes lent since the log opened. The two are read
    /// one after the other: a read ending in between shows in one of them
    /// first (the next report catches up).
    var totals: (events: UInt64, bytes: UInt64) {
        (events.load(ordering: .relaxed), bytes.load(ordering: .relaxed))
    }
}
