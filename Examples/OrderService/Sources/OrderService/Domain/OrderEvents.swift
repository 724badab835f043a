import EventLogSourcing

/// The order aggregate's domain events: what happened to one order, in its stream `order-<id>`. Internal to
/// this service; the outbox's integration events (`IntegrationEvents`) are the contract with other services.
enum OrderEvent: Sendable, Equatable {
    case placed(OrderPlaced)
    case itemAdded(ItemAdded)
    case cancelled(OrderCancelled)

    /// The registry that maps each event to its stored type name and JSON payload, and back.
    static let registry: EventRegistry<OrderEvent> = {
        var registry = EventRegistry<OrderEvent>()
        registry.register(
            OrderPlaced.self, type: "OrderPlaced", embed: { .placed($0) },
            extract: { if case .placed(let event) = $0 { event } else { nil } })
        registry.register(
            ItemAdded.self, type: "ItemAdded", embed: { .itemAdded($0) },
            extract: { if case .itemAdded(let event) = $0 { event } else { nil } })
        registry.register(
            OrderCancelled.self, type: "OrderCancelled", embed: { .cancelled($0) },
            extract: { if case .cancelled(let event) = $0 { event } else { nil } })
        return registry
    }()

    /// The stream of order `id`.
    static func stream(of id: String) -> String { streamPrefix + id }
    /// Every order stream starts with this (the projection's filter).
    static let streamPrefix = "order-"
}

/// An order was placed: the stream's first event (version 0).
struct OrderPlaced: Codable, Sendable, Equatable {
    var orderID: String
    var customer: String

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
        case customer
    }
}

/// A line was added to an order.
struct ItemAdded: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int
}

/// An order was cancelled: nothing can be added after it.
struct OrderCancelled: Codable, Sendable, Equatable {
    var orderID: String

    enum CodingKeys: String, CodingKey {
        case orderID = "order_id"
    }
}
