import EventLog
import Synchronization

/// Where a projection driver puts what it reads: it applies events, and
/// makes their effect durable together with a checkpoint (`commit`), or
/// forgets what it applied since the last commit (`discard`).
protocol ProjectionSink: SendableMetatype {
    /// Applies one event (not a marker, not of a reserved stream).
    mutating func apply(_ event: EventView) throws
    /// Makes the effect of every event applied since the last commit, and
    /// `checkpoint` (the position to resume from), durable together.
    mutating func commit(checkpoint: UInt64) throws
    /// Back to the state of the last commit.
    mutating func discard()
    /// Forgets everything; the next commit starts the state anew at `checkpoint`.
    mutating func reset(checkpoint: UInt64) throws
}

/// How a projection runner reads and commits.
public struct ProjectionOptions: Sendable {
    /// The events fed to the projection (default: all). Events of reserved
    /// streams (`ReservedStreams`) and stream markers are never fed.
    public var filter: EventFilter
    /// Most events read at a time (at least 1).
    public var batchSize: Int
    /// Commit once this many events were applied since the last commit (at least 1).
    public var commitEvery: Int
    /// Commit once this long passed since the last commit with events applied.
    public var commitInterval: Duration
    /// Where a projection with no checkpoint starts.
    public var start: StartPoint
    /// The coder of checkpoints kept in the log (JSON by default).
    public var coder: any PayloadCoder

    /// Options; every argument has a default: all events, 4096 per read,
    /// a commit every 10,000 events or 500 ms (and whenever the runner
    /// caught up), from the start of the log, JSON.
    public init(
        filter: EventFilter = EventFilter(), batchSize: Int = 4096, commitEvery: Int = 10_000,
        commitInterval: Duration = .milliseconds(500), start: StartPoint = .start, coder: any PayloadCoder = JSONPayloadCoder()
    ) {
        self.filter = filter
        self.batchSize = max(1, batchSize)
        self.commitEvery = max(1, commitEvery)
        self.commitInterval = commitInterval
        self.start = start
        self.coder = coder
    }

    var filters: Bool { filter.streamPrefix != nil || filter.types != nil }
}

/// The loop every runner shares: read from its position, apply, commit
/// when due. One thread drives it at a time; the mutex lets other threads
/// read the sink (a projection's state) between batches.
final class ProjectionDriver<Sink: ProjectionSink>: @unchecked Sendable {
    struct State {
        var sink: Sink
        /// The next position to read.
        var position: UInt64
        /// The checkpoint of the last commit.
        var committedPosition: UInt64
        /// Events applied since the last commit.
        var pending = 0
        /// A commit is due even with nothing applied (after a rebuild).
        var mustCommit = false
        var lastCommit = ContinuousClock.now
    }

    let log: Log
    let options: ProjectionOptions
    /// The cursor the driver mirrors each commit's checkpoint to, for
    /// `Log.lag(ofCursor:)` and retention (`LogSettings` cursors).
    let cursor: String
    let state: Mutex<State>

    init(log: Log, options: ProjectionOptions, cursor: String, sink: sending Sink, checkpoint: UInt64?) throws {
        self.log = log
        self.options = options
        self.cursor = cursor
        let position = try checkpoint ?? Self.resolve(options.start, in: log)
        self.state = Mutex(State(sink: sink, position: position, committedPosition: position))
    }

    static func resolve(_ start: StartPoint, in log: Log) throws -> UInt64 {
        switch start {
        case .start: return log.startPosition
        case .end: return log.endPosition
        case .position(let position): return position
        case .timestamp(let timestamp): return try log.position(atOrAfter: timestamp)
        }
    }

    var position: UInt64 { state.withLock { $0.position } }
    var committedPosition: UInt64 { state.withLock { $0.committedPosition } }

    /// Reads one batch, applies it, commits when due. Returns the events
    /// applied and whether the read reached the end of the log.
    func step(forceCommit: Bool = false) throws -> (applied: Int, atEnd: Bool) {
        let log = self.log
        let options = self.options
        return try state.withLock { s in
            let from = s.position
            var applied = 0
            var read = 0
            let next: UInt64
            do {
                if options.filters {
                    next = try log.read(from: from, maxCount: options.batchSize, filter: options.filter) { view in
                        read += 1
                        if ReservedStreams.isReserved(view) { return }
                        try s.sink.apply(view)
                        applied += 1
                    }
                } else {
                    next = try log.read(from: from, maxCount: options.batchSize) { view in
                        read += 1
                        if view.isMarker || ReservedStreams.isReserved(view) { return }
                        try s.sink.apply(view)
                        applied += 1
                    }
                }
            } catch {
                // What was applied since the last commit is dropped: the next step reads it again.
                s.sink.discard()
                s.position = s.committedPosition
                s.pending = 0
                throw error
            }
            s.position = next
            s.pending += applied
            let atEnd = read < options.batchSize || next >= log.endPosition
            let due = s.mustCommit || (s.pending > 0 && (forceCommit || atEnd || s.pending >= options.commitEvery
                || ContinuousClock.now - s.lastCommit >= options.commitInterval))
            if due { try commitLocked(&s) }
            return (applied, atEnd)
        }
    }

    /// Commits what was applied since the last commit (if anything).
    func commit() throws {
        try state.withLock { s in
            if s.pending > 0 || s.mustCommit { try commitLocked(&s) }
        }
    }

    private func commitLocked(_ s: inout State) throws {
        do {
            try s.sink.commit(checkpoint: s.position)
        } catch {
            s.sink.discard()
            s.position = s.committedPosition
            s.pending = 0
            throw error
        }
        s.committedPosition = s.position
        s.pending = 0
        s.mustCommit = false
        s.lastCommit = .now
        try mirror(s.position)
    }

    /// Moves the cursor to `position`: only a mirror of the checkpoint (which the sink holds), so it
    /// follows it back too (after a rebuild, or a power loss that kept the cursor journal's last
    /// write but not the log's).
    private func mirror(_ position: UInt64) throws {
        if let current = try log.cursorPosition(cursor), current > position {
            try log.resetCursor(cursor, to: .position(position))
        } else {
            try log.commitCursor(cursor, position: position)
        }
    }

    /// Processes every event up to the end of the log as it is now, then commits.
    func catchUp() throws -> Int {
        var total = 0
        while true {
            let (applied, atEnd) = try step()
            total += applied
            if atEnd { break }
        }
        try commit()
        return total
    }

    /// Starts anew at `start`: the sink forgets everything, and the empty
    /// state is committed at once (so a crash does not bring the old one back).
    func rebuild(from start: StartPoint) throws {
        let position = try Self.resolve(start, in: log)
        try state.withLock { s in
            try s.sink.reset(checkpoint: position)
            s.position = position
            s.committedPosition = position
            s.pending = 0
            s.mustCommit = true
            try commitLocked(&s)
        }
    }

    /// Steps until `shouldStop` returns true (checked at least every 100 ms), then commits.
    func run(shouldStop: () -> Bool) throws {
        while !shouldStop() {
            let (_, atEnd) = try step()
            if atEnd, !shouldStop() {
                try log.waitForAppends(after: position, timeout: .milliseconds(100))
                try commit()
            }
        }
        try commit()
    }

    /// `run(shouldStop:)` for a task: steps on the log's executor, waits for
    /// appends without holding a thread, and ends (after a commit) when the task is cancelled.
    func run() async throws {
        while !Task.isCancelled {
            let (_, atEnd) = try await log.async.perform { _ in try self.step() }
            if atEnd, !Task.isCancelled {
                _ = try await log.async.waitForAppends(after: position, timeout: .milliseconds(500))
            }
        }
        try await log.async.perform { _ in try self.commit() }
    }
}
