import EventLog
import EventLogSourcing

/// What a command did, in the terms the HTTP layer answers with.
enum CommandOutcome: Sendable, Equatable {
    /// Done (now, or before under the same idempotency key: then this is the original result); the order's
    /// version after it.
    case done(version: UInt64)
    /// The order was not at the expected version (nil: there is no such order); nothing appended.
    case conflict(current: UInt64?)
    /// No such order.
    case unknownOrder
    /// The order is cancelled (at this version); nothing appended.
    case cancelled(version: UInt64)
    /// The idempotency key was used by a command on another order (named).
    case keyReused(originalOrder: String)
}

/// The order service's write side: each command loads the order through EventLogSourcing's `AggregateStore`
/// (snapshot, then the events after it), decides, and appends the domain events, the outbox's integration events
/// and the command's record in one atomic batch, expecting the version the client named (`If-Match`). A command
/// with an `Idempotency-Key` is done once: a repeat returns the recorded result, after a restart too.
///
/// Idempotency keys are scoped by command kind (the command id is `place:K`, `items:K` or `cancel:K`), so a key
/// reused on another endpoint is another command; reused on another order, it is refused (`keyReused`).
///
/// Safe to share; each call runs on the log's executor (`AggregateStore.async`), never on the cooperative pool.
struct OrderCommands: Sendable {
    let store: AggregateStore<Order>

    init(log: Log) {
        store = AggregateStore<Order>(
            log: log, registry: OrderEvent.registry, options: AggregateStoreOptions(snapshots: .every(100)))
    }

    func place(orderID: String, customer: String, idempotencyKey: String?) async throws -> CommandOutcome {
        let placed = OrderPlaced(orderID: orderID, customer: customer)
        return try await run(orderID, kind: "place", key: idempotencyKey, expecting: .noStream) { _ in
            Decision([.placed(placed)], outgoing: [try IntegrationEvents.placed(placed)])
        }
    }

    func addItem(orderID: String, sku: String, quantity: Int, expected: UInt64, idempotencyKey: String?) async throws -> CommandOutcome {
        try await run(orderID, kind: "items", key: idempotencyKey, expecting: .exact(expected)) { loaded in
            try Self.checkOpen(loaded)
            return Decision([.itemAdded(ItemAdded(sku: sku, quantity: quantity))])
        }
    }

    func cancel(orderID: String, expected: UInt64, idempotencyKey: String?) async throws -> CommandOutcome {
        try await run(orderID, kind: "cancel", key: idempotencyKey, expecting: .exact(expected)) { loaded in
            try Self.checkOpen(loaded)
            return Decision(
                [.cancelled(OrderCancelled(orderID: orderID))],
                outgoing: [try IntegrationEvents.cancelled(orderID, items: loaded.state.items.count)])
        }
    }

    /// Throws the rule a command on `loaded` breaks: no such order, or a cancelled one.
    static func checkOpen(_ loaded: LoadedAggregate<Order>) throws {
        guard loaded.state.orderID != nil, let version = loaded.version else { throw OrderRuleViolation.unknownOrder }
        if loaded.state.status == .cancelled { throw OrderRuleViolation.cancelled(version: version) }
    }

    private func run(
        _ orderID: String, kind: String, key: String?, expecting: ExpectedVersion,
        decide: @escaping @Sendable (LoadedAggregate<Order>) throws -> Decision<OrderEvent>
    ) async throws -> CommandOutcome {
        let stream = OrderEvent.stream(of: orderID)
        do {
            let result = try await store.async.execute(
                stream, commandID: key.map { "\(kind):\($0)" }, expecting: expecting,
                metadata: EventMetadata(correlationID: key), decide: decide)
            guard let version = result.version else { return .unknownOrder }
            return .done(version: version)
        } catch SourcingError.versionConflict(_, _, let actual) {
            return .conflict(current: actual)
        } catch SourcingError.commandIDReused(_, _, let originalStream) {
            return .keyReused(originalOrder: String(originalStream.dropFirst(OrderEvent.streamPrefix.count)))
        } catch OrderRuleViolation.unknownOrder {
            return .unknownOrder
        } catch OrderRuleViolation.cancelled(let version) {
            return .cancelled(version: version)
        }
    }
}
