import EventLog
import Foundation

/// An event-sourced aggregate: a state that its events rebuild, one at a
/// time, from `init()`. `Codable` so that snapshots can store it.
///
/// `apply` must be deterministic and must not fail for events the
/// aggregate itself decided: a replay has to reach the same state every time.
public protocol Aggregate: Codable, Sendable {
    /// The domain event type (the `EventRegistry`'s).
    associatedtype Event: Sendable

    /// The state before the first event.
    init()

    /// The state after `event`.
    mutating func apply(_ event: Event) throws

    /// The schema version of the aggregate's `Codable` form, stored with
    /// each snapshot. Raise it when that form changes: snapshots of another
    /// version are then ignored (a full replay), and rewritten by the next command.
    static var snapshotSchemaVersion: UInt32 { get }
}

extension Aggregate {
    /// Version 1.
    public static var snapshotSchemaVersion: UInt32 { 1 }
}

/// An aggregate as loaded from its stream.
public struct LoadedAggregate<A: Aggregate>: Sendable {
    /// The stream it was loaded from.
    public var stream: String
    /// The state after its last event.
    public var state: A
    /// The version of its last event; nil when the stream has no events
    /// (never written, or soft-deleted).
    public var version: UInt64?
    /// The version of the snapshot the load started from (nil: it replayed from the start).
    public var snapshotVersion: UInt64?
    /// How many events the load applied after the snapshot (or from the start).
    public var replayedEvents: Int
    /// The first version a stream read returns (the stream's truncate-before point).
    var baseVersion: UInt64

    /// What an append after this load expects: `.exact(version)`, or `.noStream`.
    public var expectedVersion: ExpectedVersion { version.map { .exact($0) } ?? .noStream }
}

/// When to store a snapshot of an aggregate (in its own snapshot stream,
/// in the same atomic append as the command's events).
public struct SnapshotPolicy: Sendable {
    /// What the policy is asked after a command.
    public struct Context: Sendable {
        /// The aggregate's stream.
        public var stream: String
        /// Its version after the command.
        public var version: UInt64
        /// The version of the snapshot it was loaded from (nil: none).
        public var snapshotVersion: UInt64?
        /// Events since that snapshot (or since the start), the command's included.
        public var eventsSinceSnapshot: UInt64
    }

    let decide: @Sendable (Context) -> Bool

    /// A policy that decides with `decide`.
    public static func when(_ decide: @escaping @Sendable (Context) -> Bool) -> SnapshotPolicy {
        SnapshotPolicy(decide: decide)
    }

    /// A snapshot once `count` events (at least 1) followed the last one.
    public static func every(_ count: UInt64) -> SnapshotPolicy {
        let count = max(1, count)
        return SnapshotPolicy { $0.eventsSinceSnapshot >= count }
    }

    /// No snapshots: every load replays the whole stream.
    public static let never = SnapshotPolicy { _ in false }
}

/// How often a command is tried again after a version conflict (another
/// writer appended to the aggregate between its load and its append).
public struct RetryPolicy: Sendable {
    /// Tries in all, the first included (at least 1).
    public var maxAttempts: Int
    /// The pause before each new try (none by default).
    public var delay: Duration

    /// A policy of `maxAttempts` tries, `delay` apart.
    public init(maxAttempts: Int = 3, delay: Duration = .zero) {
        self.maxAttempts = max(1, maxAttempts)
        self.delay = delay
    }

    /// Runs `body` until it does not throw `SourcingError.versionConflict`,
    /// at most `maxAttempts` times; then rethrows the last conflict.
    /// Other errors are rethrown at once.
    public func run<T>(_ body: () throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try body()
            } catch let error as SourcingError {
                guard case .versionConflict = error, attempt < maxAttempts else { throw error }
                attempt += 1
                if delay > .zero { Thread.sleep(delay) }
            }
        }
    }
}

extension Thread {
    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
    }
}
