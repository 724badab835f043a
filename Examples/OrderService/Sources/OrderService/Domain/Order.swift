import EventLogSourcing

/// An order as its events left it: the aggregate's state, which the commands decide on. `Codable` for the
/// aggregate store's snapshots.
struct Order: Aggregate, Equatable {
    typealias Event = OrderEvent

    enum Status: String, Sendable, Codable {
        case placed
        case cancelled
    }

    struct Item: Sendable, Equatable, Codable {
        var sku: String
        var quantity: Int
    }

    /// Nil before the first event (no such order).
    var orderID: String?
    var customer = ""
    var status = Status.placed
    var items: [Item] = []

    init() {}

    mutating func apply(_ event: OrderEvent) {
        switch event {
        case .placed(let placed):
            orderID = placed.orderID
            customer = placed.customer
            status = .placed
        case .itemAdded(let added):
            items.append(Item(sku: added.sku, quantity: added.quantity))
        case .cancelled:
            status = .cancelled
        }
    }
}

/// Why a command was refused by the order's rules (nothing appended).
enum OrderRuleViolation: Error, Sendable, Equatable {
    /// No such order.
    case unknownOrder
    /// The order is cancelled (at this version): nothing can be added, it cannot be cancelled again.
    case cancelled(version: UInt64)
}
