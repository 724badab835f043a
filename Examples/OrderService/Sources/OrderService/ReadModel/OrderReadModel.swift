import EventLog
import EventLogSourcing
import Synchronization

/// The read model of `GET /orders/{id}`: every order as its events left it, in memory. EventLogSourcing's
/// `StoreProjectionRunner` feeds it (`OrderProjection`): it hands each batch of the orders' events to `commit`
/// with the position after them, and the batch and that checkpoint change together under one lock, so a query
/// never sees half a batch. Being in memory, it starts empty (no checkpoint) and is rebuilt from the start of
/// the log on every start of the service; it lags the write side by a moment.
///
/// Thread-safe: the projection's thread commits, any number of request handlers read.
final class OrderReadModel: ProjectionStore {
    private struct State {
        var orders: [String: OrderView] = [:]
        /// The position after the last event committed (nil: nothing committed yet).
        var checkpoint: UInt64?
    }

    private let state = Mutex(State())

    /// The order `id` as the last commit left it; nil when there is none.
    func order(_ id: String) -> OrderView? {
        state.withLock { $0.orders[id] }
    }

    /// Orders in the model.
    var count: Int { state.withLock { $0.orders.count } }

    // MARK: ProjectionStore

    func checkpoint() -> UInt64? {
        state.withLock { $0.checkpoint }
    }

    /// Applies `events` (the orders' domain events, in position order) and moves the checkpoint, under one lock.
    /// Decodes them all first: an event it cannot decode fails the commit with nothing changed.
    func commit(_ events: [Event], checkpoint: UInt64) throws {
        var decoded: [(id: String, version: UInt64, event: OrderEvent)] = []
        decoded.reserveCapacity(events.count)
        for event in events where event.stream.hasPrefix(OrderEvent.streamPrefix) {
            guard let domainEvent = try OrderEvent.registry.decode(
                type: event.type, schemaVersion: event.metadata.schemaVersion, data: event.data, position: event.position)
            else { continue }
            decoded.append((String(event.stream.dropFirst(OrderEvent.streamPrefix.count)), event.version, domainEvent))
        }
        state.withLock { state in
            for (id, version, event) in decoded { Self.apply(event, version: version, to: &state.orders[id]) }
            state.checkpoint = checkpoint
        }
    }

    func reset(checkpoint: UInt64) {
        state.withLock { state in
            state.orders.removeAll()
            state.checkpoint = checkpoint
        }
    }

    /// The order after `event` (the stream's event at `version`).
    static func apply(_ event: OrderEvent, version: UInt64, to order: inout OrderView?) {
        switch event {
        case .placed(let placed):
            order = OrderView(orderID: placed.orderID, customer: placed.customer, status: "placed", items: [], version: version)
        case .itemAdded(let added):
            order?.items.append(OrderView.Item(sku: added.sku, quantity: added.quantity))
            order?.version = version
        case .cancelled:
            order?.status = "cancelled"
            order?.version = version
        }
    }
}

/// `GET /orders/{id}`'s body.
struct OrderView: Codable, Sendable, Equatable {
    struct Item: Codable, Sendable, Equatable {
        var sku: String
        var quantity: Int
    }

    var orderID: String
    var customer: String
    /// `placed` or `cancelled`.
    var status: String
    var items: [Item]
    /// The version of the order's last event the model applied.
    var version: UInt64

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case customer, status, items, version
    }
}
