import EventLog
import Synchronization

/// A read model kept outside the log (a database, a file) that stores its
/// checkpoint in the same transaction as the events' effect: the hook
/// `StoreProjectionRunner` commits through. Exactly-once effect follows
/// from that transaction: the runner resumes from `checkpoint()`.
public protocol ProjectionStore: AnyObject, Sendable {
    /// The checkpoint of the last commit (the position to resume from); nil
    /// when nothing was ever committed.
    func checkpoint() throws -> UInt64?

    /// In one transaction: applies `events` (in position order; possibly
    /// none) and stores `checkpoint`. When it throws, none of it may persist.
    func commit(_ events: [Event], checkpoint: UInt64) throws

    /// In one transaction: forgets every effect and stores `checkpoint` (a rebuild).
    func reset(checkpoint: UInt64) throws
}

/// Feeds the log's events to a `ProjectionStore`, a batch at a time: the
/// events read since the last commit are handed to `ProjectionStore.commit`
/// with the position after them. The runner resumes from the store's
/// checkpoint, so a crash (of the runner or of the store's process) loses no
/// event's effect and applies none twice. A commit also moves the cursor
/// `ReservedStreams.projection(name)` (a mirror, for lag and retention).
///
/// One thread drives a runner (`step`, `catchUp`, `run`).
public final class StoreProjectionRunner<S: ProjectionStore>: Sendable {
    /// The log it reads.
    public let log: Log
    /// The projection's name (its cursor is named after it).
    public let name: String
    /// The store it commits to.
    public let store: S
    let driver: ProjectionDriver<StoreSink<S>>

    /// A runner of `store`, resumed from the store's checkpoint (or from
    /// `options.start` when it has none). Processes nothing yet.
    public init(log: Log, name: String, store: S, options: ProjectionOptions = ProjectionOptions()) throws {
        let cursor = ReservedStreams.projection(name)
        guard !name.isEmpty, cursor.utf8.count <= Limits.maxCursorNameBytes else {
            throw SourcingError.invalidArgument("projection name \(name) is empty or too long")
        }
        self.log = log
        self.name = name
        self.store = store
        driver = try ProjectionDriver(log: log, options: options, cursor: cursor, sink: StoreSink(store: store), checkpoint: try store.checkpoint())
    }

    /// The next position the runner reads.
    public var position: UInt64 { driver.position }
    /// The checkpoint of the last commit.
    public var committedPosition: UInt64 { driver.committedPosition }

    /// Reads one batch and buffers it; commits when due. Returns the events read for the store.
    @discardableResult
    public func step() throws -> Int { try driver.step().applied }

    /// Reads every event up to the end of the log, then commits. Returns the events read for the store.
    @discardableResult
    public func catchUp() throws -> Int { try driver.catchUp() }

    /// Commits the buffered events.
    public func commit() throws { try driver.commit() }

    /// Runs until `shouldStop` returns true, then commits. Blocks the calling thread.
    public func run(shouldStop: () -> Bool) throws { try driver.run(shouldStop: shouldStop) }

    /// Runs until the task is cancelled, on the log's executor, then commits.
    public func run() async throws { try await driver.run() }

    /// Starts anew from `start`: `ProjectionStore.reset` at once, then only
    /// events from there on. Call `catchUp` or `run` afterwards.
    public func rebuild(from start: StartPoint = .start) throws { try driver.rebuild(from: start) }
}

/// The events read since the last commit, for a `ProjectionStore`.
struct StoreSink<S: ProjectionStore>: ProjectionSink {
    let store: S
    var pending: [Event] = []
    var resetTo: UInt64?

    mutating func apply(_ event: EventView) throws { pending.append(try event.event()) }

    mutating func commit(checkpoint: UInt64) throws {
        if let position = resetTo {
            try store.reset(checkpoint: position)
            resetTo = nil
        }
        try store.commit(pending, checkpoint: checkpoint)
        pending.removeAll(keepingCapacity: true)
    }

    mutating func discard() { pending.removeAll(keepingCapacity: true) }

    mutating func reset(checkpoint: UInt64) throws {
        pending.removeAll()
        resetTo = checkpoint
    }
}
