import EventLog

extension AggregateStore {
    /// The store's calls for Swift concurrency: each runs on the log's
    /// executor (`AsyncLog.perform`), never on the cooperative pool.
    public var async: AsyncAggregateStore<A> { AsyncAggregateStore(store: self) }
}

/// `AggregateStore`'s calls as `async` functions. Each call is one job on
/// the log's executor: the load, `decide` and the append run there, on one
/// of the log's threads, so `decide` must be quick and must not wait for
/// other tasks. Cancelling the task does not stop a command that started.
public struct AsyncAggregateStore<A: Aggregate>: Sendable {
    /// The store these calls go to.
    public let store: AggregateStore<A>

    /// `AggregateStore.load(_:)` on the log's executor.
    public func load(_ stream: String) async throws -> LoadedAggregate<A> {
        let store = self.store
        return try await store.log.async.perform { _ in try store.load(stream) }
    }

    /// `AggregateStore.handledCommand(_:)` on the log's executor.
    public func handledCommand(_ commandID: String) async throws -> CommandResult? {
        let store = self.store
        return try await store.log.async.perform { _ in try store.handledCommand(commandID) }
    }

    /// `AggregateStore.execute(_:commandID:expecting:metadata:retry:decide:)`
    /// on the log's executor (one try by default).
    public func execute(
        _ stream: String, commandID: String? = nil, expecting: ExpectedVersion? = nil, metadata: EventMetadata = EventMetadata(),
        retry: RetryPolicy = RetryPolicy(maxAttempts: 1), decide: @escaping @Sendable (LoadedAggregate<A>) throws -> Decision<A.Event>
    ) async throws -> CommandResult {
        let store = self.store
        return try await store.log.async.perform { _ in
            try store.execute(stream, commandID: commandID, expecting: expecting, metadata: metadata, retry: retry, decide: decide)
        }
    }
}
