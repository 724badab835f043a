import struct Foundation.Date

/// A consumer group's calls for Swift concurrency (`group.async`): the work
/// runs on the log's executor (`AsyncLog`), never on the cooperative pool;
/// a worker with nothing to receive suspends until an append, an ack, a
/// nack or an ack timeout, holding no thread of the executor. Any number
/// of tasks may share the group, as threads may.
public struct AsyncConsumerGroup: Sendable {
    /// The group these calls go to.
    public let group: ConsumerGroup

    private func run<T: Sendable>(_ body: @escaping @Sendable (ConsumerGroup) throws -> T) async throws -> T {
        let group = self.group
        return try await group.consumers.executor.run { try body(group) }
    }

    /// `ConsumerGroup.receive(maxCount:timeout:)` for a task: up to
    /// `maxCount` events, waiting up to `timeout` (nil: forever) for
    /// at least one. [] after a timeout, when the log closes, or when the
    /// task is cancelled (which ends the wait at once).
    public func receive(maxCount: Int = 1, timeout: Duration? = nil) async throws -> [Delivery] {
        let group = self.group
        let consumers = group.consumers
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.timeInterval) }
        while !consumers.isClosed && !Task.isCancelled {
            let seen = group.changeCount
            let deliveries: [Delivery]
            do {
                deliveries = try await run { try $0.handOut(maxCount: maxCount) }
            } catch EventLogError.closed {
                return []
            }
            if !deliveries.isEmpty { return deliveries }
            let (wake, ready) = group.waitPlan(seen: seen, deadline: deadline)
            let woken = try await consumers.waitForChange(until: ready, deadline: wake)
            if !woken, let deadline, Date() >= deadline { return [] }
        }
        return []
    }

    /// `ConsumerGroup.ack(_:)`.
    public func ack(_ position: UInt64) async throws {
        try await run { try $0.ack(position) }
    }

    /// `ConsumerGroup.nack(_:)`.
    public func nack(_ position: UInt64) async throws {
        try await run { try $0.nack(position) }
    }

    /// `ConsumerGroup.replayParked(_:)`.
    public func replayParked(_ positions: [UInt64]? = nil) async throws {
        try await run { try $0.replayParked(positions) }
    }

    /// `ConsumerGroup.lag()`.
    public func lag() async throws -> Lag {
        try await run { try $0.lag() }
    }
}

extension ConsumerGroup {
    /// This group's calls for Swift concurrency (`AsyncConsumerGroup`).
    public var async: AsyncConsumerGroup { AsyncConsumerGroup(group: self) }
}
