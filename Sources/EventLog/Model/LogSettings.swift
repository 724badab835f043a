/// The settings a log keeps in its directory (`eventlog.settings`, Format.md
/// §3.2), as opposed to the `LogOptions` each open passes: what every
/// process opening the log must agree on. Today: retention.
///
/// Read with `Log.settings`, changed with `Log.updateSettings(_:)` (a
/// writer) or `eventlog config DIR set`.
public struct LogSettings: Sendable, Equatable {
    /// Retention by age: a sealed segment whose newest event is older than
    /// this is removed (nil: no limit by age). Whole seconds, 1 or more.
    public var retainAge: Duration?
    /// Retention by size: the oldest sealed segments are removed while the
    /// log's segments take more bytes than this (nil: no limit by size).
    public var retainBytes: UInt64?
    /// Cursors that hold retention back: no segment holding an event at or
    /// after one of these cursors' positions is removed (a cursor that does
    /// not exist yet holds everything back).
    public var retainCursors: [String]
    /// Key compaction: in sealed segments only the latest event of each key
    /// (`NewEvent.key`, else the stream name) survives a compaction, and a
    /// tombstone (`NewEvent.isTombstone`) removes its key's earlier events.
    public var keyCompaction: Bool
    /// How long a tombstone stays once it is its key's latest event, so that
    /// consumers see it (Kafka's `delete.retention.ms`); whole seconds, at
    /// most 2³² − 1. A tombstone that is its stream's last event stays.
    public var tombstoneRetention: Duration

    /// Settings; the defaults keep everything and do not compact by key.
    public init(
        retainAge: Duration? = nil, retainBytes: UInt64? = nil, retainCursors: [String] = [], keyCompaction: Bool = false,
        tombstoneRetention: Duration = .seconds(86_400)
    ) {
        self.retainAge = retainAge
        self.retainBytes = retainBytes
        self.retainCursors = retainCursors
        self.keyCompaction = keyCompaction
        self.tombstoneRetention = tombstoneRetention
    }

    /// `tombstoneRetention` in whole seconds (negative: 0).
    var tombstoneRetentionSeconds: UInt64 { UInt64(max(0, tombstoneRetention.components.seconds)) }

    /// True when no retention limit is set (nothing is ever removed).
    public var retainsEverything: Bool { retainAge == nil && retainBytes == nil }

    /// `retainAge` in whole microseconds (0: none).
    var retainAgeMicroseconds: UInt64 {
        guard let age = retainAge else { return 0 }
        let (seconds, attoseconds) = age.components
        guard seconds >= 0 else { return 0 }
        let micros = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000)
        return micros.overflow ? .max : micros.partialValue &+ UInt64(attoseconds / 1_000_000_000_000)
    }
}
