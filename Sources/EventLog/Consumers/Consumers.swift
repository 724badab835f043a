import Synchronization
import struct Foundation.Date

/// Where a cursor or a subscription starts.
public enum StartPoint: Sendable, Hashable {
    /// The first event still in the log.
    case start
    /// After the last event: only events appended from now on.
    case end
    /// This position (the next event to consume).
    case position(UInt64)
    /// The first event at or after this time.
    case timestamp(Timestamp)
}

/// How far a consumer is behind the end of the log.
public struct Lag: Sendable, Hashable {
    /// Events between the consumer's position and the end (those still in
    /// the log: not the positions scavenging removed).
    public var events: UInt64
    /// Bytes of log between them (batch-exact: counted from the batch holding the position).
    public var bytes: UInt64
    /// Age of the oldest event not yet consumed, in microseconds (nil when caught up).
    public var oldestUnconsumedAgeMicroseconds: Int64?
}

/// A named cursor (`Log.cursors()`).
public struct CursorInfo: Sendable, Hashable {
    /// The cursor's name (a consumer group's: `group:` + the group's name).
    public var name: String
    /// The next position to consume: every event before it was processed.
    public var position: UInt64
    /// When it was last set.
    public var updatedAt: Timestamp
    /// How far it is behind the end of the log, when `Log.cursors()` was called.
    public var lag: Lag
}

/// A cursor that damaged records of the cursor journal name
/// (`Log.damagedCursors()`, Format.md §15): its position is unknown, so it
/// is not used (`EventLogError.cursorDamaged`) until it is reset, deleted,
/// or `Log.repair` settles it.
public struct DamagedCursor: Sendable, Hashable {
    /// The cursor's name.
    public var name: String
    /// The cursor journal's path.
    public var file: String
    /// The byte offset in `file` where the damaged region starts.
    public var offset: Int64
    /// Where the records before the damage had it; nil when they did not
    /// name it. The damaged records may have moved it since, either way.
    public var positionBeforeDamage: UInt64?
}

/// The consumer layer over the ordered log: named cursors (a durable
/// position each), consumer groups and subscriptions. It owns the cursor
/// journal (`store`) and the log's consumer groups; `Log` forwards to it.
final class Consumers: Sendable {
    let log: BatchLog
    /// Named cursors and consumer groups' parked events (Format.md §15).
    let store: ConsumerStore
    /// Consumer groups of this log, by name (one shared instance each while
    /// anyone holds it). Weak: a group holds its log, and a log released
    /// without close() must be freed (its lock released) like after a crash.
    let groups = Mutex<[String: WeakConsumerGroup]>([:])
    /// A read-only log's watch for another process's appends.
    let appendWatch: AppendWatch
    /// The log's threads for the blocking work of its `async` calls.
    let executor: LogExecutor
    /// A read-only log's one thread that watches for appends while tasks wait.
    let asyncWaitWatcher = AsyncWaitWatcher()

    init(log: BatchLog, store: ConsumerStore, executor: LogExecutor) {
        self.log = log
        self.store = store
        self.executor = executor
        self.appendWatch = AppendWatch(directory: log.path, disabled: !log.options.watchesDirectory, logger: log.options.logger)
    }

    var isClosed: Bool { log.isClosed }
    var notifier: AppendNotifier { log.segments.notifier }
    var startPosition: UInt64 { log.snapshot().startPosition }
    var endPosition: UInt64 { log.snapshot().endPosition }
    func snapshot() -> LogSnapshot { log.snapshot() }
    func event(at position: UInt64) throws(EventLogError) -> Event { try log.event(at: position) }
}

extension Consumers {
    // MARK: Waiting for appends

    /// `Log.refresh()`: for a read-only log, reads what other processes
    /// appended and committed since; true when new events appeared.
    @discardableResult
    func refreshFromDisk() throws(EventLogError) -> Bool {
        guard log.options.readOnly else { return false }
        try store.refreshFromDisk()
        let (path, options) = (log.path, log.options)
        return try log.segments.refresh { Opener(path: path, options: options) }
    }

    /// Blocks until `ready()` holds or `deadline` passes; returns `ready()`.
    /// A writable log is woken by its own appends (`notifier`); a read-only
    /// one by another process's, through `appendWatch` (refreshing on each).
    /// `ready` must also hold once the log is closed or the waiter cancelled.
    func waitForChange(until ready: () -> Bool, deadline: Date?) throws(EventLogError) -> Bool {
        guard log.options.readOnly else { return notifier.wait(until: ready, deadline: deadline) }
        return try appendWatch.wait(until: ready, deadline: deadline, notifier: notifier) { () throws(EventLogError) in
            try self.refreshFromDisk()
        }
    }

    /// `waitForChange` for a task; cancelling the task ends it. The task
    /// suspends on the notifier and holds no thread: a writable log's own
    /// appends wake it; for a read-only log, one thread of the log's
    /// (`asyncWaitWatcher`) watches the directory for all its waiting tasks.
    func waitForChange(until ready: @escaping @Sendable () -> Bool, deadline: Date?) async throws(EventLogError) -> Bool {
        let watcher = log.options.readOnly ? asyncWaitWatcher : nil
        let failures = watcher?.enter(self) ?? 0
        defer { watcher?.leave(self) }
        let over: @Sendable () -> Bool = { ready() || watcher?.failure(since: failures) != nil }
        if let deadline {
            _ = await notifier.wait(until: over, deadline: deadline)
        } else {
            await notifier.wait(until: over)
        }
        if ready() { return true }
        if let failure = watcher?.failure(since: failures) { throw failure }
        return false
    }

    /// Wakes every waiter, including one waiting on the watch (cancel, close).
    func wakeWaiters() {
        notifier.wakeAll()
        appendWatch.interrupt()
    }
}

extension Consumers {
    /// `Log.createCursor(_:at:)`.
    @discardableResult
    func createCursor(_ name: String, at start: StartPoint = .start) throws(EventLogError) -> UInt64 {
        try Self.checkCursorName(name)
        let position = try resolve(start)
        var result = position
        try store.write { (state) throws(EventLogError) -> [CursorRecord] in
            try store.checkUsable(name, in: state)
            if let existing = state.cursors[name] {
                result = existing.position
                return []
            }
            return [CursorRecord(kind: .set, name: name, position: position, timestamp: currentTimestamp())]
        }
        return result
    }

    /// The position of cursor `name` (the next event to consume), nil when it does not exist.
    func cursorPosition(_ name: String) throws(EventLogError) -> UInt64? {
        try store.state.withLock { (state) throws(EventLogError) -> UInt64? in
            try store.checkUsable(name, in: state)
            return state.cursors[name]?.position
        }
    }

    /// The cursors that damaged records of the journal name (`Log.damagedCursors()`).
    func damagedCursors() -> [DamagedCursor] {
        let path = store.path
        return store.state.withLock { state in
            state.damagedCursors.sorted { $0.key < $1.key }.map {
                DamagedCursor(name: $0.key, file: path, offset: $0.value, positionBeforeDamage: state.cursors[$0.key]?.position)
            }
        }
    }

    /// Commits that every event before `position` was processed. A cursor is
    /// created by its first commit. A commit never moves a cursor backwards
    /// (that is `resetCursor`) nor past the end of the log. Cheap: one small
    /// journal write; under `.always` durable on return (sharing syncs).
    func commitCursor(_ name: String, position: UInt64) throws(EventLogError) {
        try Self.checkCursorName(name)
        let end = endPosition
        guard position <= end else {
            throw .positionOutOfRange(position: position, start: startPosition, end: end)
        }
        try store.write { (state) throws(EventLogError) -> [CursorRecord] in
            try store.checkUsable(name, in: state)
            if let current = state.cursors[name]?.position {
                if position == current { return [] }
                guard position > current else {
                    throw .invalidArgument("cursor \(name) is at \(current); a commit cannot move it back to \(position) (use resetCursor)")
                }
            }
            return [CursorRecord(kind: .set, name: name, position: position, timestamp: currentTimestamp())]
        }
    }

    /// Moves cursor `name` to `start`, backwards or forwards (creating it when missing).
    @discardableResult
    func resetCursor(_ name: String, to start: StartPoint) throws(EventLogError) -> UInt64 {
        try Self.checkCursorName(name)
        let position = try resolve(start)
        try store.write { _ in [CursorRecord(kind: .set, name: name, position: position, timestamp: currentTimestamp())] }
        return position
    }

    /// Deletes cursor `name` (and, for a consumer group, its parked events). Deleting a missing cursor does nothing.
    func deleteCursor(_ name: String) throws(EventLogError) {
        try store.write { state in
            state.cursors[name] == nil && state.parked[name] == nil && state.damagedCursors[name] == nil
                ? [] : [CursorRecord(kind: .delete, name: name, position: 0, timestamp: currentTimestamp())]
        }
    }

    /// Every cursor with its lag, sorted by name.
    func cursors() throws(EventLogError) -> [CursorInfo] {
        let (cursors, damaged) = store.state.withLock { ($0.cursors, $0.damagedCursors) }
        var infos: [CursorInfo] = []
        for (name, cursor) in cursors.sorted(by: { $0.key < $1.key }) where damaged[name] == nil {
            infos.append(CursorInfo(name: name, position: cursor.position, updatedAt: cursor.updatedAt, lag: try lag(from: cursor.position)))
        }
        return infos
    }

    /// How far cursor `name` is behind; nil when it does not exist.
    func lag(ofCursor name: String) throws(EventLogError) -> Lag? {
        guard let position = try cursorPosition(name) else { return nil }
        return try lag(from: position)
    }

    /// How far a consumer at `position` is behind the end of the log.
    func lag(from position: UInt64) throws(EventLogError) -> Lag {
        let snapshot = log.snapshot()
        let end = snapshot.endPosition
        let from = max(position, snapshot.startPosition)
        guard from < end else { return Lag(events: 0, bytes: 0, oldestUnconsumedAgeMicroseconds: nil) }
        var bytes: UInt64 = 0
        var events: UInt64 = 0
        for i in 0..<snapshot.count {
            let segment = snapshot[i]
            guard segment.endPosition > from else { continue }
            let startOffset = segment.basePosition >= from ? SegmentHeader.size : segment.batchOffset(atOrBefore: from)
            bytes += UInt64(max(0, segment.dataEnd - startOffset))
            // Scavenging may have removed some: only the events still there count.
            events += try segment.eventCount(from: from)
        }
        var age: Int64?
        do {
            // The first event still there at or after `from` (it may have been scavenged).
            var reader = LogReader(snapshot: snapshot)
            _ = try reader.read(from: from, maxCount: 1) { view in age = max(0, currentTimestamp() - view.timestamp) }
        } catch {
            throw .wrapping(error)
        }
        return Lag(events: events, bytes: bytes, oldestUnconsumedAgeMicroseconds: events == 0 ? nil : age)
    }

    /// The lowest position retention must keep: the position of each of
    /// the cursors named (a missing cursor needs everything), and every
    /// event a consumer group parked (it may be replayed). Segments wholly
    /// below it may be removed without losing an unconsumed event.
    func retentionFloor(keepingCursors names: [String]) -> UInt64 {
        retentionHold(keepingCursors: names).position
    }

    /// `retentionFloor`, and what sets it ("cursor relay at position 12"),
    /// for reports.
    func retentionHold(keepingCursors names: [String]) -> (position: UInt64, reason: String) {
        let (cursors, parked, damaged) = store.state.withLock { ($0.cursors, $0.parked, $0.damagedCursors) }
        var hold = (position: endPosition, reason: "the end of the log")
        for name in names {
            // A damaged cursor's position is unknown: it holds everything, like a missing one.
            let known = damaged[name] == nil ? cursors[name]?.position : nil
            let position = known ?? startPosition
            if position < hold.position {
                hold = (position, damaged[name] != nil ? "cursor \(name), which is damaged"
                    : known == nil ? "cursor \(name), which does not exist yet" : "cursor \(name) at position \(position)")
            }
        }
        for (group, events) in parked {
            if let lowest = events.keys.min(), lowest < hold.position {
                hold = (lowest, "an event consumer group \(group) parked at position \(lowest)")
            }
        }
        return hold
    }

    /// The position a start point means now.
    func resolve(_ start: StartPoint) throws(EventLogError) -> UInt64 {
        switch start {
        case .start: return startPosition
        case .end: return endPosition
        case .position(let p):
            let end = endPosition
            guard p <= end else { throw .positionOutOfRange(position: p, start: startPosition, end: end) }
            return max(p, startPosition)
        case .timestamp(let t): return try log.position(atOrAfter: t)
        }
    }

    static func checkCursorName(_ name: String) throws(EventLogError) {
        let count = name.utf8.count
        guard count >= 1 else { throw .invalidArgument("a cursor name is empty") }
        guard count <= Limits.maxCursorNameBytes else {
            throw .limitExceeded(limit: "cursor name bytes", value: count, maximum: Limits.maxCursorNameBytes)
        }
    }
}
