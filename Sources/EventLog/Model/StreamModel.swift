/// What an append expects of a stream's version before it (optimistic concurrency).
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// No check.
    case any
    /// The stream has no events (never written, or soft-deleted).
    case noStream
    /// The stream has at least one event.
    case streamExists
    /// The stream's last event has exactly this version.
    case exact(UInt64)

    /// The expectation as error messages and the tool print it (`any`, `no stream`, `stream exists`, or the version).
    public var description: String {
        switch self {
        case .any: return "any"
        case .noStream: return "no stream"
        case .streamExists: return "stream exists"
        case .exact(let v): return "\(v)"
        }
    }
}

/// Whether a stream was deleted, and how.
public enum StreamDeletion: UInt8, Sendable, Hashable {
    /// Not deleted.
    case none = 0
    /// Soft-deleted: reads as empty; the next append recreates it and continues its version numbers.
    case soft = 1
    /// Hard-deleted: reads fail with `streamDeleted` and it can never be written again.
    case hard = 2
}

/// A stream's state (`Log.streamInfo(_:)`).
public struct StreamInfo: Sendable, Hashable {
    /// The stream's name.
    public var name: String
    /// The version of the stream's last event (nil when it never had one).
    public var currentVersion: UInt64?
    /// Events that a stream read returns: from `truncateBefore` (or, with a max count, the first of the last
    /// `limits.maxCount` versions) to the current one, less those older than `limits.maxAge`.
    public var count: UInt64
    /// Position of the first readable event (nil when none).
    public var firstPosition: UInt64?
    /// Position of the stream's last event (nil when none).
    public var lastPosition: UInt64?
    /// Whether the stream is deleted, softly or for good.
    public var deletion: StreamDeletion
    /// Versions below this are hidden from stream reads (0: none).
    public var truncateBefore: UInt64
    /// The stream's max age and max count (`Log.setStreamLimits(_:_:)`).
    public var limits: StreamLimits = StreamLimits()
}

/// How much of a stream to keep, as EventStoreDB's `$maxAge` and
/// `$maxCount`: events beyond the limits are hidden from stream reads at
/// once, and scavenging (`Log.compact()`) removes them from disk, except the
/// stream's last event, which keeps its version (Format.md §13.1).
/// Set with `Log.setStreamLimits(_:_:)` or `eventlog streams DIR set NAME`.
public struct StreamLimits: Sendable, Hashable {
    /// Events older than this (by their timestamp) are hidden (nil: no limit).
    /// At least one microsecond; kept in whole microseconds.
    public var maxAge: Duration?
    /// Only the last `maxCount` events are kept (nil: no limit). At least 1.
    public var maxCount: UInt64?

    /// Limits as given (nil: none); `Log.setStreamLimits(_:_:)` checks them.
    public init(maxAge: Duration? = nil, maxCount: UInt64? = nil) {
        self.maxAge = maxAge
        self.maxCount = maxCount
    }

    /// True when neither limit is set.
    public var isEmpty: Bool { maxAge == nil && maxCount == nil }

    /// The limits as a `$limits` marker stores them (0: none).
    init(maxAgeMicroseconds: UInt64, maxCount: UInt64) {
        self.maxAge = maxAgeMicroseconds == 0 ? nil : Duration.microseconds(Int64(clamping: maxAgeMicroseconds))
        self.maxCount = maxCount == 0 ? nil : maxCount
    }

    /// `maxAge` in whole microseconds, rounded up (0: none); nil when it is
    /// not positive.
    var maxAgeMicroseconds: UInt64? {
        guard let maxAge else { return 0 }
        let (seconds, attoseconds) = maxAge.components
        guard seconds > 0 || (seconds == 0 && attoseconds > 0) else { return nil }
        let micros = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000)
        let fraction = UInt64((attoseconds + 999_999_999_999) / 1_000_000_000_000)
        return micros.overflow ? .max : micros.partialValue.addingReportingOverflow(fraction).overflow ? .max : micros.partialValue + fraction
    }
}

/// The versions an append gave one stream.
public struct StreamVersions: Sendable, Hashable {
    /// The stream's name.
    public var stream: String
    /// Version of the stream's first event in the append.
    public var firstVersion: UInt64
    /// Version of its last event: what the next append expects (`.exact(lastVersion)`).
    public var lastVersion: UInt64
}

/// What an append with expectations did.
public struct AppendResult: Sendable, Hashable {
    /// Positions of the appended events (all of them, in append order).
    public var positions: Range<UInt64>
    /// Per stream, in the order each first appeared in the append.
    public var streams: [StreamVersions]
    /// True when the append repeated the previous one to its streams (same
    /// event ids, same expectations): nothing was written, and these are the
    /// positions and versions the original append got.
    public var wasRetry: Bool

    /// The versions of `stream` in this append.
    public func versions(of stream: String) -> ClosedRange<UInt64>? {
        streams.first { $0.stream == stream }.map { $0.firstVersion...$0.lastVersion }
    }
}
