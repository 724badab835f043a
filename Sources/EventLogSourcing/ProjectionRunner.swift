import EventLog
import Synchronization

/// A read model built from the log's events, one at a time, from `init()`.
/// Its state lives in the log: `ProjectionRunner` stores it, `Codable`,
/// together with its checkpoint.
///
/// It is fed the events its runner's filter passes, as `EventView`s (no
/// copy; decode them with an `EventRegistry` when needed), never the
/// events of reserved streams (`ReservedStreams`) nor stream markers.
public protocol Projection: Codable, Sendable {
    /// The state before any event.
    init()

    /// The state after `event`. Throwing stops the runner's step: what was
    /// applied since the last commit is dropped, and read again next time.
    mutating func apply(_ event: EventView) throws

    /// The schema version of the projection's `Codable` form. A checkpoint
    /// of another version is not used: the projection is rebuilt from its
    /// start point.
    static var stateSchemaVersion: UInt32 { get }
}

extension Projection {
    /// Version 1.
    public static var stateSchemaVersion: UInt32 { 1 }
}

/// Feeds the log's events to a projection whose state lives in the log:
/// every commit appends one event to `ReservedStreams.projection(name)`
/// holding the state and the checkpoint (the position to resume from), so
/// the two are durable together, in one atomic append. After a crash the
/// runner resumes from the last commit: no event's effect is lost or counted
/// twice. A commit also moves the cursor of the same name (a mirror, for
/// `Log.lag(ofCursor:)` and retention), which may lag after a crash.
///
/// The state is written whole at each commit, so it suits read models of
/// up to a few MB (at most `Limits.maxRecordBytes` encoded); bigger ones
/// belong in a store of their own (`StoreProjectionRunner`). The checkpoint
/// stream keeps its last 16 commits (`Log.setStreamLimits`).
///
/// One thread drives a runner (`step`, `catchUp`, `run`); any thread may
/// read `state` (it waits for the batch being applied). Two runners of the
/// same name in one log refuse each other's commits (`SourcingError.concurrentRunner`).
public final class ProjectionRunner<P: Projection>: Sendable {
    /// The log it reads and commits to.
    public let log: Log
    /// The projection's name: its checkpoint stream and cursor are named after it.
    public let name: String
    let driver: ProjectionDriver<LogStateSink<P>>

    /// The event type of checkpoints.
    public static var checkpointType: String { "ProjectionCheckpoint" }
    /// A checkpoint's header: the position to resume from.
    static var checkpointHeader: String { "checkpoint" }

    /// A runner of the projection `name`, resumed from its last checkpoint
    /// (a checkpoint of another `stateSchemaVersion` is ignored: it starts
    /// anew at `options.start`). Reads the checkpoint; processes nothing yet.
    ///
    /// - Throws: `SourcingError.invalidArgument` for an empty or too long
    ///   name; `undecodable` for a checkpoint its coder cannot read; `EventLogError`.
    public init(log: Log, name: String, options: ProjectionOptions = ProjectionOptions()) throws {
        let stream = ReservedStreams.projection(name)
        guard !name.isEmpty, stream.utf8.count <= Limits.maxStreamNameBytes else {
            throw SourcingError.invalidArgument("projection name \(name) is empty or too long")
        }
        self.log = log
        self.name = name
        var sink = LogStateSink<P>(log: log, stream: stream, coder: options.coder)
        var checkpoint: UInt64?
        let info = try log.streamInfo(stream)
        sink.streamVersion = info?.currentVersion
        try log.readStream(stream, maxCount: 1, direction: .backward) { view in
            let metadata = try view.metadata()
            guard metadata.schemaVersion == P.stateSchemaVersion,
                  let position = metadata[header: ProjectionRunner<P>.checkpointHeader].flatMap(UInt64.init)
            else { return }
            do { sink.committed = try options.coder.decode(P.self, from: Array(view.data)) } catch {
                throw SourcingError.undecodable(type: ProjectionRunner<P>.checkpointType, position: view.position, reason: "\(error)")
            }
            sink.current = sink.committed
            checkpoint = position
        }
        if info?.limits.maxCount == nil { try log.setStreamLimits(stream, StreamLimits(maxCount: 16)) }
        driver = try ProjectionDriver(log: log, options: options, cursor: stream, sink: sink, checkpoint: checkpoint)
    }

    /// The projection's state: every event before `position` applied (some
    /// of them perhaps not committed yet).
    public var state: P { driver.state.withLock { $0.sink.current } }
    /// The next position the runner reads.
    public var position: UInt64 { driver.position }
    /// The checkpoint of the last commit: where a new runner would resume.
    public var committedPosition: UInt64 { driver.committedPosition }

    /// Reads one batch (up to `options.batchSize` events) and applies it;
    /// commits when due (`ProjectionOptions`). Returns the events applied.
    @discardableResult
    public func step() throws -> Int { try driver.step().applied }

    /// Applies every event up to the end of the log (as it is when each
    /// read starts), then commits. Returns the events applied.
    @discardableResult
    public func catchUp() throws -> Int { try driver.catchUp() }

    /// Commits what was applied since the last commit.
    public func commit() throws { try driver.commit() }

    /// Runs until `shouldStop` returns true (asked at least every 100 ms):
    /// catches up, then waits for appends. Commits before returning.
    /// Blocks the calling thread.
    public func run(shouldStop: () -> Bool) throws { try driver.run(shouldStop: shouldStop) }

    /// Runs until the task is cancelled, on the log's executor (waiting
    /// for appends holds no thread). Commits before returning.
    public func run() async throws { try await driver.run() }

    /// Starts the projection anew from `start` (the start of the log, a
    /// position, or the first event at or after a time): the state becomes
    /// `init()` and only events from there on are applied. The empty state
    /// is committed at once. Call `catchUp` or `run` afterwards.
    public func rebuild(from start: StartPoint = .start) throws { try driver.rebuild(from: start) }
}

/// The state of a projection kept in the log (`ProjectionRunner`).
struct LogStateSink<P: Projection>: ProjectionSink {
    let log: Log
    let stream: String
    let coder: any PayloadCoder
    /// The version of the checkpoint stream's last event (for the expected version of the next commit).
    var streamVersion: UInt64?
    var committed = P()
    var current = P()

    init(log: Log, stream: String, coder: any PayloadCoder) {
        self.log = log
        self.stream = stream
        self.coder = coder
    }

    mutating func apply(_ event: EventView) throws { try current.apply(event) }

    mutating func commit(checkpoint: UInt64) throws {
        let data: [UInt8]
        do { data = try coder.encode(current) } catch {
            throw SourcingError.undecodable(type: ProjectionRunner<P>.checkpointType, position: nil, reason: "\(error)")
        }
        let event = NewEvent(
            stream: stream, type: ProjectionRunner<P>.checkpointType, data: data,
            metadata: EventMetadata(
                schemaVersion: P.stateSchemaVersion, contentType: coder.contentType,
                headers: [.init(ProjectionRunner<P>.checkpointHeader, String(checkpoint))]))
        let result: AppendResult
        do {
            result = try log.append(to: stream, expectedVersion: streamVersion.map { .exact($0) } ?? .noStream, [event])
        } catch EventLogError.wrongExpectedVersion {
            throw SourcingError.concurrentRunner(name: stream)
        }
        streamVersion = result.versions(of: stream)?.upperBound
        committed = current
    }

    mutating func discard() { current = committed }

    mutating func reset(checkpoint: UInt64) throws {
        current = P()
        committed = P()
    }
}
