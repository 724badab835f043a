import EventLogSourcing

/// The integration events this service publishes: contracts with other services, versioned apart from the
/// domain events (their type names carry the contract's major version; `schemaVersion` its revision). They go
/// to the outbox stream in the same atomic append as the domain events that cause them, and a relay delivers
/// them (to NATS JetStream, subjects `orders.outbox`, or to the log `DIR/outbox-delivered`).
enum IntegrationEvents {
    /// `orders.OrderPlaced.v1`: `{"order_id", "customer"}`.
    struct OrderPlacedV1: Codable, Sendable, Equatable {
        static let type = "orders.OrderPlaced.v1"
        var orderID: String
        var customer: String

        enum CodingKeys: String, CodingKey {
            case orderID = "order_id"
            case customer
        }
    }

    /// `orders.OrderCancelled.v1`: `{"order_id", "items"}` (the number of item lines the order had).
    struct OrderCancelledV1: Codable, Sendable, Equatable {
        static let type = "orders.OrderCancelled.v1"
        var orderID: String
        var items: Int

        enum CodingKeys: String, CodingKey {
            case orderID = "order_id"
            case items
        }
    }

    static func placed(_ event: OrderPlaced) throws -> OutgoingMessage {
        try OutgoingMessage(type: OrderPlacedV1.type, payload: OrderPlacedV1(orderID: event.orderID, customer: event.customer))
    }

    static func cancelled(_ orderID: String, items: Int) throws -> OutgoingMessage {
        try OutgoingMessage(type: OrderCancelledV1.type, payload: OrderCancelledV1(orderID: orderID, items: items))
    }
}
