/// A point in time, in microseconds since 1970-01-01T00:00:00Z (UTC).
public typealias Timestamp = Int64

/// The current time as a `Timestamp`.
public func currentTimestamp() -> Timestamp {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An event to append: everything but its position and its version in its
/// stream, which the log assigns.
public struct NewEvent: Sendable, Hashable {
    /// The stream (aggregate) it belongs to, e.g. `order-42`; 1 to
    /// `Limits.maxStreamNameBytes` UTF-8 bytes.
    public var stream: String
    /// Its type, e.g. `OrderPlaced`; at most `Limits.maxTypeBytes` UTF-8 bytes.
    public var type: String
    /// The payload, opaque to the log.
    public var data: [UInt8]
    /// Its metadata (ids, schema version, content type, headers); empty when none was given.
    public var metadata: EventMetadata
    /// When it happened; the append time when nil.
    public var timestamp: Timestamp?
    /// The key key compaction keeps the latest event of (`LogSettings.keyCompaction`);
    /// nil: the stream name. 1 to `Limits.maxKeyBytes` UTF-8 bytes.
    public var key: String?
    /// A tombstone: key compaction removes the earlier events of its key,
    /// then, after `LogSettings.tombstoneRetention`, the tombstone itself.
    public var isTombstone: Bool

    /// A new event, to pass to `Log.append`.
    ///
    /// - Parameters:
    ///   - stream: the stream it belongs to, 1 to `Limits.maxStreamNameBytes` UTF-8 bytes.
    ///   - type: must not start with `$` (reserved for stream markers).
    ///   - data: the payload, opaque to the log.
    ///   - metadata: its metadata (ids, correlation, schema version, headers).
    ///   - timestamp: when it happened; nil: the append time.
    ///   - key: the key key compaction keeps the latest event of; nil: the stream name.
    ///   - isTombstone: a tombstone for its key (key compaction).
    public init(
        stream: String, type: String, data: [UInt8], metadata: EventMetadata = EventMetadata(), timestamp: Timestamp? = nil,
        key: String? = nil, isTombstone: Bool = false
    ) {
        self.stream = stream
        self.type = type
        self.data = data
        self.metadata = metadata
        self.timestamp = timestamp
        self.key = key
        self.isTombstone = isTombstone
    }
}

/// An event read from the log, with its own copy of every field.
///
/// For reads that allocate nothing per event, use `Log.read(from:maxCount:_:)`,
/// which lends an `EventView` of the stored bytes instead.
public struct Event: Sendable, Hashable {
    /// The global position: assigned at append, strictly increasing, never reused.
    public var position: UInt64
    /// The stream it belongs to.
    public var stream: String
    /// The place within its stream (0, 1, 2, …).
    public var version: UInt64
    /// Its type, e.g. `OrderPlaced`.
    public var type: String
    /// The payload, as appended.
    public var data: [UInt8]
    /// Its metadata; empty when none was given.
    public var metadata: EventMetadata
    /// When it happened: the one given at append, else the append time (microseconds since 1970).
    public var timestamp: Timestamp
    /// The event's explicit key (nil: its key is the stream name), `NewEvent.key`.
    public var key: String?
    /// True for a tombstone, `NewEvent.isTombstone`.
    public var isTombstone: Bool
    /// True when its data key was forgotten (`Log.forgetStream(_:)`): `data`
    /// and `metadata` are empty, for good.
    public var isForgotten = false

    /// An event with every field given (tests, importers).
    public init(
        position: UInt64, stream: String, version: UInt64, type: String, data: [UInt8],
        metadata: EventMetadata, timestamp: Timestamp, key: String? = nil, isTombstone: Bool = false
    ) {
        self.position = position
        self.stream = stream
        self.version = version
        self.type = type
        self.data = data
        self.metadata = metadata
        self.timestamp = timestamp
        self.key = key
        self.isTombstone = isTombstone
    }
}
