import Synchronization
import struct Foundation.Date

/// Commit a subscription's position to its cursor every `events` events or
/// every `interval`, whichever comes first (checked after each poll).
public struct AutoCommit: Sendable, Hashable {
    /// Commit once this many events were lent since the last commit (at least 1).
    public var events: Int
    /// Commit once this long passed since the last commit (a negative value counts as zero).
    public var interval: Duration
    /// A policy; `events` below 1 counts as 1.
    public init(events: Int = 1000, interval: Duration = .seconds(1)) {
        self.events = max(1, events)
        self.interval = max(.zero, interval)
    }
}

/// A reader that catches up from a start point, then follows the log live:
/// a caught-up `poll` waits until an append wakes it (no polling; on a
/// read-only log, an append by another process: `Log.waitForAppends`).
///
/// One consumer at a time: do not call `poll` from two threads at once
/// (`cancel` may be called from any thread). Filtered-out events advance
/// the position. Bound to a cursor, it starts after the cursor's committed
/// position, and `commit()` (or `autoCommit`) records its progress: call it
/// after processing, for at-least-once delivery. `poll` blocks; from a
/// task, use `subscription.async.poll` (`AsyncSubscription`).
public final class Subscription: @unchecked Sendable {
    /// The events `poll` lends; the others are passed over.
    public let filter: EventFilter
    /// The cursor this subscription commits to (nil: none).
    public let cursor: String?
    /// When `poll` commits by itself (nil: only `commit()` does; always nil
    /// without a cursor).
    public let autoCommit: AutoCommit?
    let consumers: Consumers
    private let cancelled = Atomic<Bool>(false)
    private let state: Mutex<(position: UInt64, uncommitted: Int, lastCommit: Timestamp, committed: UInt64)>

    init(consumers: Consumers, position: UInt64, filter: EventFilter, cursor: String?, autoCommit: AutoCommit?) {
        self.consumers = consumers
        self.filter = filter
        self.cursor = cursor
        self.autoCommit = autoCommit
        self.state = Mutex((position, 0, currentTimestamp(), position))
    }

    /// The next position this subscription reads.
    public var position: UInt64 { state.withLock { $0.position } }

    /// Lends up to `maxCount` new events that pass the filter to `body`,
    /// waiting up to `timeout` (nil: forever) for at least one.
    /// Returns how many it lent: 0 after a timeout, on `cancel()`, or when the log closes.
    ///
    /// Each `EventView` is valid only during its `body` call. The position
    /// moves past what was read (filtered-out events included) even when
    /// `body` throws: the event that threw is not lent again. Blocks the
    /// calling thread while it reads and waits; from a task, use
    /// `subscription.async.poll` (which returns owned events).
    ///
    /// - Throws: what `body` throws; `EventLogError.corruption` for a
    ///   damaged batch; with `autoCommit`, what `commit()` throws.
    @discardableResult
    public func poll(maxCount: Int = 1024, timeout: Duration? = nil, _ body: (EventView) throws -> Void) throws -> Int {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.timeInterval) }
        while !isCancelled && !consumers.isClosed {
            if let lent = try readAvailable(maxCount: maxCount, body) {
                if lent > 0 { return lent }
                continue
            }
            let position = self.position
            // A read-only log refreshes when another process appends (`AppendWatch`).
            let ready = try consumers.waitForChange(until: { self.isWaitOver(after: position) }, deadline: deadline)
            if !ready { return 0 }
        }
        return 0
    }

    /// True once the subscription is cancelled, the log closed, or events past `position` appeared.
    func isWaitOver(after position: UInt64) -> Bool {
        isCancelled || consumers.isClosed || consumers.endPosition > position
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// One read without waiting: lends up to `maxCount` events that pass the
    /// filter, from the next position on, and moves the position past what
    /// it read (filtered-out events included). Nil when the log holds
    /// nothing new; 0 when everything it read was filtered out (read on).
    func readAvailable(maxCount: Int, _ body: (EventView) throws -> Void) throws -> Int? {
        var position = state.withLock { $0.position }
        guard position < consumers.endPosition else { return nil }
        var lent = 0
        var reader = LogReader(snapshot: consumers.snapshot(), tally: consumers.log.readTally, cache: consumers.log.batchCache)
        // At most `maxCount` events are read, so none is skipped unlent.
        position = try reader.read(from: position, maxCount: maxCount) { view in
            if filter.matches(view) {
                try body(view)
                lent += 1
            }
        }
        state.withLock { $0.position = position }
        if lent > 0 { try noteProcessed(lent) }
        return lent
    }

    /// Commits the position to the cursor (every event before it is processed).
    /// Does nothing for a subscription without a cursor. One cursor journal
    /// write; under `.always` durable on return. Blocks on the disk.
    ///
    /// - Throws: `EventLogError.readOnly`, `writerStopped`, `cursorDamaged`
    ///   or `io` when the cursor cannot be written.
    public func commit() throws {
        guard let cursor else { return }
        let position = state.withLock { $0.position }
        try consumers.commitCursor(cursor, position: position)
        state.withLock {
            $0.uncommitted = 0
            $0.lastCommit = currentTimestamp()
            $0.committed = position
        }
    }

    private func noteProcessed(_ count: Int) throws {
        guard let autoCommit, cursor != nil else { return }
        let due = state.withLock { s -> Bool in
            s.uncommitted += count
            return s.uncommitted >= autoCommit.events || currentTimestamp() - s.lastCommit >= autoCommit.interval.wholeMicroseconds
        }
        if due { try commit() }
    }

    /// Ends the subscription: a waiting `poll` returns 0 at once.
    public func cancel() {
        cancelled.store(true, ordering: .relaxed)
        consumers.wakeWaiters()
    }
}

extension Consumers {
    /// A subscription from `start`, catching up then following the log.
    func subscribe(from start: StartPoint = .start, filter: EventFilter = EventFilter()) throws(EventLogError) -> Subscription {
        Subscription(consumers: self, position: try resolve(start), filter: filter, cursor: nil, autoCommit: nil)
    }

    /// A subscription bound to cursor `name`: it starts at the cursor's
    /// committed position (creating the cursor at `createAt` when missing)
    /// and commits its progress there.
    func subscribe(
        cursor name: String, createAt: StartPoint = .start, filter: EventFilter = EventFilter(), autoCommit: AutoCommit? = nil
    ) throws(EventLogError) -> Subscription {
        let position = try createCursor(name, at: createAt)
        return Subscription(consumers: self, position: position, filter: filter, cursor: name, autoCommit: autoCommit)
    }

    /// `Log.liveEvents(from:filter:bufferSize:)`.
    func liveEvents(from start: StartPoint = .start, filter: EventFilter = EventFilter(), bufferSize: Int = 256) throws(EventLogError) -> EventSequence {
        EventSequence(consumers: self, start: try resolve(start), filter: filter, bufferSize: max(1, bufferSize))
    }
}

/// Live events as an `AsyncSequence` (`Log.liveEvents(from:filter:bufferSize:)`):
/// it catches up from its start, then waits for appends, and never ends on
/// its own (it ends, returning nil, when the task is cancelled or the log
/// closes).
///
/// Each read runs on the log's executor (`LogOptions.asyncThreadCount`),
/// never on the cooperative pool; a caught-up iterator suspends until an
/// append wakes it and holds no thread meanwhile (on a read-only log, the
/// log's one watching thread wakes it: `AsyncWaitWatcher`). It reads only as the
/// consumer asks, at most `bufferSize` events at a time, so a slow consumer
/// never makes anything grow. One iterator per task.
public struct EventSequence: AsyncSequence, Sendable {
    /// Owned events (copies of their bytes), in position order.
    public typealias Element = Event
    let consumers: Consumers
    let start: UInt64
    let filter: EventFilter
    let bufferSize: Int

    /// An iterator from the sequence's start. Each iterator reads on its
    /// own: two iterators of one sequence both see every event.
    public func makeAsyncIterator() -> Iterator {
        Iterator(consumers: consumers, position: start, filter: filter, bufferSize: bufferSize)
    }

    /// Reads the sequence's events a buffer at a time (`bufferSize`) on the
    /// log's executor; use it from one task.
    public struct Iterator: AsyncIteratorProtocol {
        let consumers: Consumers
        /// The next position to read.
        public private(set) var position: UInt64
        let filter: EventFilter
        let bufferSize: Int
        private var buffer: [Event] = []
        private var index = 0

        init(consumers: Consumers, position: UInt64, filter: EventFilter, bufferSize: Int) {
            self.consumers = consumers
            self.position = position
            self.filter = filter
            self.bufferSize = bufferSize
        }

        /// The next event; nil when the task is cancelled or the log closes.
        /// Suspends (holding no thread) while the log holds nothing new.
        ///
        /// - Throws: `EventLogError.corruption` for a damaged batch or
        ///   damaged metadata.
        public mutating func next() async throws -> Event? {
            while true {
                if index < buffer.count {
                    defer { index += 1 }
                    return buffer[index]
                }
                if Task.isCancelled || consumers.isClosed { return nil }
                buffer.removeAll(keepingCapacity: true)
                index = 0
                if position < consumers.endPosition {
                    let (consumers, from, filter, limit) = (self.consumers, position, self.filter, bufferSize)
                    let read: (events: [Event], next: UInt64)
                    do {
                        read = try await consumers.executor.run {
                            var reader = LogReader(snapshot: consumers.snapshot(), tally: consumers.log.readTally, cache: consumers.log.batchCache)
                            var filled: [Event] = []
                            let next = try reader.read(from: from, maxCount: limit) { view in
                                if filter.matches(view) { filled.append(try view.event()) }
                            }
                            return (filled, next)
                        }
                    } catch EventLogError.closed {
                        return nil
                    }
                    buffer = read.events
                    position = read.next
                    continue
                }
                let target = position
                let consumers = self.consumers
                _ = try await consumers.waitForChange(until: { consumers.isClosed || consumers.endPosition > target }, deadline: nil)
            }
        }
    }
}
