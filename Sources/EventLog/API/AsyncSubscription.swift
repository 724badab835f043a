import struct Foundation.Date

/// A subscription's calls for Swift concurrency (`subscription.async`):
/// reads run on the log's executor (`AsyncLog`), never on the cooperative
/// pool; a caught-up poll suspends until an append wakes it, holding no
/// thread of the executor. One consumer at a time, as for `Subscription`.
public struct AsyncSubscription: Sendable {
    /// The subscription these calls go to.
    public let subscription: Subscription

    /// `Subscription.poll(maxCount:timeout:_:)` for a task, with owned
    /// events: up to `maxCount` new events that pass the filter, waiting up
    /// to `timeout` (nil: forever) for at least one. [] after a
    /// timeout, on `cancel()`, when the log closes, or when the task is
    /// cancelled (which ends the wait at once; the position stays after
    /// the last event returned). Auto-commits as `poll` does.
    public func poll(maxCount: Int = 1024, timeout: Duration? = nil) async throws -> [Event] {
        let subscription = self.subscription
        let consumers = subscription.consumers
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0.timeInterval) }
        while !subscription.isCancelled && !consumers.isClosed && !Task.isCancelled {
            let read: [Event]?
            do {
                read = try await consumers.executor.run { () throws -> [Event]? in
                    var events: [Event] = []
                    let lent = try subscription.readAvailable(maxCount: maxCount) { events.append(try $0.event()) }
                    return lent == nil ? nil : events
                }
            } catch EventLogError.closed {
                return []
            }
            if let read {
                if !read.isEmpty { return read }
                continue
            }
            let position = subscription.position
            let ready = try await consumers.waitForChange(until: { subscription.isWaitOver(after: position) }, deadline: deadline)
            if !ready { return [] }
        }
        return []
    }

    /// `Subscription.commit()`.
    public func commit() async throws {
        let subscription = self.subscription
        try await subscription.consumers.executor.run { try subscription.commit() }
    }
}

extension Subscription {
    /// This subscription's calls for Swift concurrency (`AsyncSubscription`).
    public var async: AsyncSubscription { AsyncSubscription(subscription: self) }
}
