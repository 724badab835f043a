import EventLog
import EventLogSourcing

/// The projection that feeds the read model: EventLogSourcing's `StoreProjectionRunner` over the streams
/// `order-*`, committing to `OrderReadModel` (its `ProjectionStore`) every 256 events, every 50 ms, or when it
/// has caught up, whichever comes first. Runs on a thread of its own (`ThreadService`).
enum OrderProjection {
    /// The projection's name (its cursor is `$projection-orders`, whose lag `/metrics` shows).
    static let name = "orders"

    static func runner(log: Log, readModel: OrderReadModel) throws -> StoreProjectionRunner<OrderReadModel> {
        try StoreProjectionRunner(
            log: log, name: name, store: readModel,
            options: ProjectionOptions(
                filter: EventFilter(streamPrefix: OrderEvent.streamPrefix), batchSize: 1024, commitEvery: 256,
                commitInterval: .milliseconds(50)))
    }
}
