import Synchronization
import struct Foundation.Date

/// Settings of a consumer group.
public struct ConsumerGroupOptions: Sendable {
    /// Deliveries of one event before it is parked (a dead letter).
    public var maxDeliveries: Int = 5
    /// An event not acknowledged within this time is handed out again.
    public var ackTimeout: Duration = .seconds(30)
    /// Hand out an event only when no earlier event of its stream is out or waiting.
    public var orderedByStream: Bool = false
    /// Only events this filter accepts are handed out; the others are
    /// passed over (and count as consumed for the group's cursor).
    public var filter: EventFilter = EventFilter()
    /// Where a new group starts.
    public var start: StartPoint = .start

    /// Settings as the properties describe them; `maxDeliveries` below 1
    /// counts as 1.
    public init(
        maxDeliveries: Int = 5, ackTimeout: Duration = .seconds(30), orderedByStream: Bool = false,
        filter: EventFilter = EventFilter(), start: StartPoint = .start
    ) {
        self.maxDeliveries = max(1, maxDeliveries)
        self.ackTimeout = ackTimeout
        self.orderedByStream = orderedByStream
        self.filter = filter
        self.start = start
    }
}

/// One event handed to one worker of a group.
public struct Delivery: Sendable {
    /// The event, owned (a copy of its bytes).
    public let event: Event
    /// 1 for the first delivery, 2 for the first redelivery, …
    public let deliveryCount: Int
}

/// An event a group parked after too many deliveries.
public struct ParkedEvent: Sendable, Hashable {
    /// The event's position.
    public var position: UInt64
    /// How many times it was handed out before it was parked.
    public var deliveries: Int
}

/// Competing consumers: several workers share one group; each event is
/// handed to one worker at a time and acknowledged on its own. A `nack` or
/// a missed ack timeout hands it out again; after `maxDeliveries` it is
/// parked, listed by `parked()` and handed out again by `replayParked`.
///
/// The group's durable state is a cursor (every event before it was
/// acknowledged or parked) and its parked events, in the cursor journal:
/// after a crash, what was out but not acknowledged is handed out again
/// (at least once). Thread-safe; `receive` blocks; from a task, use
/// `group.async` (`AsyncConsumerGroup`).
public final class ConsumerGroup: Sendable {
    /// The group's name; its cursor is `group:` + this name (`Log.cursors()`).
    public let name: String
    /// The settings the group was first made with in this process
    /// (`Log.consumerGroup(_:options:)` returns the same instance after).
    public let options: ConsumerGroupOptions
    let consumers: Consumers
    let cursorName: String
    /// A consumer group's cursor is named by this prefix and the group's name (Format.md §15).
    static let cursorPrefix = "group:"
    private let state: Mutex<GroupState>
    /// Bumped whenever events may have become ready (ack, nack, replay), so waiting workers look again.
    private let changes = Atomic<UInt64>(0)

    struct Pending: Sendable {
        var deliveries: Int
        /// When the current delivery times out (nil: waiting to be handed out).
        var deadline: Timestamp?
        var stream: String
    }

    struct GroupState: Sendable {
        /// The next position not yet read from the log.
        var frontier: UInt64
        /// The durable cursor: every event before it is acknowledged or parked.
        var committed: UInt64
        var pending: [UInt64: Pending] = [:]
    }

    init(consumers: Consumers, name: String, options: ConsumerGroupOptions) throws(EventLogError) {
        self.consumers = consumers
        self.name = name
        self.options = options
        self.cursorName = Self.cursorPrefix + name
        let position = try consumers.createCursor(cursorName, at: options.start)
        state = Mutex(GroupState(frontier: position, committed: position))
    }

    /// Hands out up to `maxCount` events, waiting up to `timeout` (nil:
    /// forever) for at least one. Returns [] after a timeout or when the log closes.
    ///
    /// Each event handed out must be acknowledged (`ack`) or handed back
    /// (`nack`) within `ConsumerGroupOptions.ackTimeout`, or it goes out
    /// again. Blocks the calling thread (reading the log, and waiting); from
    /// a task, use `group.async.receive`.
    ///
    /// - Throws: `EventLogError.corruption` for a damaged batch;
    ///   `cursorDamaged`, `writerStopped` or `io` when the group's cursor
    ///   cannot be moved (then nothing is handed out).
    public func receive(maxCount: Int = 1, timeout: Duration? = nil) throws -> [Delivery] {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.timeInterval) }
        while !consumers.isClosed {
            let seen = changeCount
            let deliveries = try handOut(maxCount: maxCount)
            if !deliveries.isEmpty { return deliveries }
            let (wake, ready) = waitPlan(seen: seen, deadline: deadline)
            let woken = try consumers.waitForChange(until: ready, deadline: wake)
            if !woken, let deadline, Date() >= deadline { return [] }
        }
        return []
    }

    /// Bumped whenever events may have become ready (what `waitPlan` watches).
    var changeCount: UInt64 { changes.load(ordering: .sequentiallyConsistent) }

    /// How a worker that found nothing to hand out waits: until an append,
    /// an ack, nack or replay (`changeCount` moved past `seen`) or the log
    /// closes (`ready`), and no later than the next ack timeout or `deadline` (`wake`).
    func waitPlan(seen: UInt64, deadline: Date?) -> (wake: Date?, ready: @Sendable () -> Bool) {
        let (nextTimeout, frontier) = state.withLock { s in (s.pending.values.compactMap(\.deadline).min(), s.frontier) }
        var wake = deadline
        if let nextTimeout {
            let at = Date(timeIntervalSince1970: Double(nextTimeout) / 1_000_000)
            wake = min(wake ?? at, at)
        }
        let ready: @Sendable () -> Bool = {
            self.consumers.isClosed || self.consumers.endPosition > frontier || self.changeCount != seen
        }
        return (wake, ready)
    }

    /// Acknowledges an event: it is done and never handed out again. The
    /// group's cursor moves past every event acknowledged or parked before
    /// the first still out, with a cursor journal write (synced under
    /// `.always`). A position that is not out (acknowledged already, or
    /// never handed out) is ignored. Blocks on the disk.
    ///
    /// - Throws: `EventLogError.writerStopped`, `readOnly` or `io` when the
    ///   cursor cannot be written; the event then stays out.
    public func ack(_ position: UInt64) throws {
        try state.withLock { (s) throws(EventLogError) in
            guard let done = s.pending.removeValue(forKey: position) else { return }
            try advanceCursor(&s)
            if options.orderedByStream && s.pending.values.contains(where: { $0.stream == done.stream }) { signal() }
        }
    }

    /// Wakes workers waiting in `receive`.
    private func signal() {
        changes.add(1, ordering: .sequentiallyConsistent)
        // Also the worker waiting on a read-only log's directory watch.
        consumers.wakeWaiters()
    }

    /// Hands an event back: it goes out again (or is parked after
    /// `maxDeliveries`, a cursor journal write). A position that is not out
    /// is ignored. Wakes a worker waiting in `receive`.
    ///
    /// - Throws: as `ack(_:)`, when parking it cannot be written.
    public func nack(_ position: UInt64) throws {
        try state.withLock { (s) throws(EventLogError) in
            guard var pending = s.pending[position] else { return }
            if pending.deliveries >= options.maxDeliveries {
                try park(position, deliveries: pending.deliveries, in: &s)
            } else {
                pending.deadline = nil
                s.pending[position] = pending
            }
        }
        signal()
    }

    /// The parked events, by position.
    public func parked() -> [ParkedEvent] {
        let parked = consumers.store.state.withLock { $0.parked[cursorName] ?? [:] }
        return parked.map { ParkedEvent(position: $0.key, deliveries: Int($0.value)) }.sorted { $0.position < $1.position }
    }

    /// Hands parked events out again (all of them, or those of `positions`
    /// that are parked: other positions are ignored), with a fresh delivery
    /// count.
    ///
    /// Until they are acknowledged the group's durable cursor must not be
    /// past them, or a crash would lose them: one journal record unparks
    /// them and moves the cursor back to the lowest of them (when it is
    /// past it), so a crash keeps either all of that or none of it. (What
    /// lies between is handed out again after a crash: at least once.) A
    /// replay of more than `CursorRecord.maxReplayPositions` events is
    /// written as several such records, each whole on its own.
    ///
    /// - Throws: when a chosen parked event cannot be read (then nothing is
    ///   replayed), or the journal write fails.
    public func replayParked(_ positions: [UInt64]? = nil) throws {
        try state.withLock { (s) throws(EventLogError) in
            let parked = consumers.store.state.withLock { $0.parked[cursorName] ?? [:] }
            let chosen = Set(positions ?? Array(parked.keys)).filter { parked[$0] != nil }.sorted()
            guard !chosen.isEmpty else { return }
            // Each event's stream (for `orderedByStream`), read before anything changes.
            var events: [(position: UInt64, stream: String)] = []
            events.reserveCapacity(chosen.count)
            for position in chosen { events.append((position, try consumers.event(at: position).stream)) }
            var start = 0
            while start < events.count {
                let part = events[start..<min(start + CursorRecord.maxReplayPositions, events.count)]
                start = part.endIndex
                var written: [(position: UInt64, stream: String)] = []
                try consumers.store.write { (state) throws(EventLogError) -> [CursorRecord] in
                    // Under the journal's lock: only what is still parked.
                    written = part.filter { state.parked[self.cursorName]?[$0.position] != nil }
                    guard let lowest = written.first?.position else { return [] }
                    let cursor = min(state.cursors[self.cursorName]?.position ?? lowest, lowest)
                    return [CursorRecord(
                        kind: .replay, name: self.cursorName, position: cursor, timestamp: currentTimestamp(),
                        positions: written.map(\.position))]
                }
                for event in written {
                    s.pending[event.position] = Pending(deliveries: 0, deadline: nil, stream: event.stream)
                }
                if let lowest = written.first?.position, lowest < s.committed { s.committed = lowest }
            }
        }
        signal()
    }

    /// How far the group is behind (from its cursor).
    public func lag() throws -> Lag {
        try consumers.lag(from: state.withLock { $0.committed })
    }

    /// Events handed out and not yet acknowledged.
    public var inFlight: Int { state.withLock { s in s.pending.values.filter { $0.deadline != nil }.count } }

    // MARK: - Handing out

    /// Hands out up to `maxCount` events that are ready now, without waiting.
    func handOut(maxCount: Int) throws(EventLogError) -> [Delivery] {
        try state.withLock { (s) throws(EventLogError) -> [Delivery] in
            let now = currentTimestamp()
            // Timed-out deliveries wait to go out again.
            for (position, pending) in s.pending where pending.deadline.map({ $0 <= now }) == true {
                s.pending[position]?.deadline = nil
            }
            try readNewEvents(&s, wanted: maxCount)
            var chosen: [(UInt64, Int)] = []
            var blocked = Set<String>()
            if options.orderedByStream {
                for (_, p) in s.pending where p.deadline != nil { blocked.insert(p.stream) }
            }
            for position in s.pending.keys.sorted() where chosen.count < maxCount {
                guard var pending = s.pending[position], pending.deadline == nil else { continue }
                if options.orderedByStream {
                    if blocked.contains(pending.stream) { continue }
                    blocked.insert(pending.stream)
                }
                if pending.deliveries >= options.maxDeliveries {
                    try park(position, deliveries: pending.deliveries, in: &s)
                    continue
                }
                pending.deliveries += 1
                pending.deadline = now + options.ackTimeout.wholeMicroseconds
                s.pending[position] = pending
                chosen.append((position, pending.deliveries))
            }
            var deliveries: [Delivery] = []
            deliveries.reserveCapacity(chosen.count)
            for (position, count) in chosen {
                do throws(EventLogError) {
                    deliveries.append(Delivery(event: try consumers.event(at: position), deliveryCount: count))
                } catch {
                    guard case .positionRemoved = error else { throw error }
                    // Compaction removed it after it entered the pending set (an
                    // event of a deleted or truncated stream, or below the log's
                    // new start): there is nothing left to deliver.
                    s.pending[position] = nil
                }
            }
            return deliveries
        }
    }

    /// Reads events past the frontier into the pending set (skipping
    /// filtered-out and parked ones), enough to hand out `wanted`.
    private func readNewEvents(_ s: inout GroupState, wanted: Int) throws(EventLogError) {
        let waiting = s.pending.values.filter { $0.deadline == nil }.count
        guard waiting < wanted, s.frontier < consumers.endPosition else { return }
        let parked = consumers.store.state.withLock { $0.parked[cursorName] ?? [:] }
        var found: [(UInt64, String)] = []
        let filter = options.filter
        do {
            var reader = LogReader(snapshot: consumers.snapshot())
            s.frontier = try reader.read(from: s.frontier, maxCount: max(wanted * 4, 64)) { view in
                if filter.matches(view), parked[view.position] == nil { found.append((view.position, view.stream)) }
            }
        } catch {
            throw .wrapping(error)
        }
        for (position, stream) in found {
            s.pending[position] = Pending(deliveries: 0, deadline: nil, stream: stream)
        }
        try advanceCursor(&s)
    }

    private func park(_ position: UInt64, deliveries: Int, in s: inout GroupState) throws(EventLogError) {
        s.pending.removeValue(forKey: position)
        let record = CursorRecord(
            kind: .park, name: cursorName, position: position, timestamp: currentTimestamp(), deliveries: UInt32(deliveries))
        try consumers.store.write { _ in [record] }
        try advanceCursor(&s)
    }

    /// Moves the durable cursor up to the lowest event still pending.
    private func advanceCursor(_ s: inout GroupState) throws(EventLogError) {
        let lowest = s.pending.keys.min() ?? s.frontier
        guard lowest > s.committed else { return }
        s.committed = lowest
        try consumers.commitCursor(cursorName, position: lowest)
    }
}

extension Consumers {
    /// The consumer group `name` (one shared instance per log and name while
    /// any worker holds it: give it to every worker).
    func consumerGroup(_ name: String, options: ConsumerGroupOptions = ConsumerGroupOptions()) throws(EventLogError) -> ConsumerGroup {
        try Consumers.checkCursorName(ConsumerGroup.cursorPrefix + name)
        return try groups.withLock { (groups) throws(EventLogError) -> ConsumerGroup in
            if let existing = groups[name]?.group { return existing }
            let group = try ConsumerGroup(consumers: self, name: name, options: options)
            groups[name] = WeakConsumerGroup(group: group)
            return group
        }
    }
}

/// A consumer group the log does not keep alive.
struct WeakConsumerGroup: Sendable {
    weak var group: ConsumerGroup?
}
