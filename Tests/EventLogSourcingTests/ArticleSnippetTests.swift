import EventLog
import EventLogSourcing
import Foundation
import Testing

/// The code of the DocC article EventSourcingWithTypes.md, as written there
/// (inside a namespace, with the names it takes from the application
/// declared), compiled and run once: the article's snippets stay valid.
/// Keep the two in step by hand.
enum Article {
    struct OrderPlaced: Codable, Sendable { var customer: String }
    struct ItemAdded: Codable, Sendable { var sku: String; var quantity: Int }
    enum OrderEvent: Sendable { case placed(OrderPlaced), itemAdded(ItemAdded) }
    struct ItemAddedV1: Codable { var sku: String }
    enum OrderError: Error { case unknown }

    struct Order: Aggregate {
        typealias Event = OrderEvent
        var customer: String?
        var items: [String: Int] = [:]
        init() {}
        mutating func apply(_ event: OrderEvent) {
            switch event {
            case .placed(let e): customer = e.customer
            case .itemAdded(let e): items[e.sku, default: 0] += e.quantity
            }
        }
    }

    struct OrderSummaries: Projection {
        var byID: [String: Int] = [:]
        init() {}
        mutating func apply(_ event: EventView) throws {
            if event.type == "ItemAdded" { byID[event.stream, default: 0] += 1 }
        }
    }

    static func registry() -> EventRegistry<OrderEvent> {
        var registry = EventRegistry<OrderEvent>()
        registry.register(OrderPlaced.self, type: "OrderPlaced", embed: OrderEvent.placed) {
            if case .placed(let e) = $0 { return e } else { return nil }
        }
        registry.register(ItemAdded.self, type: "ItemAdded", schemaVersion: 2, embed: OrderEvent.itemAdded) {
            if case .itemAdded(let e) = $0 { return e } else { return nil }
        }
        // Version 1 had no quantity.
        registry.upcast(type: "ItemAdded", from: 1, ItemAddedV1.self, to: ItemAdded.self) {
            ItemAdded(sku: $0.sku, quantity: 1)
        }
        return registry
    }
}

@Suite struct ArticleSnippetTests {
    @Test func theArticlesCodeRuns() async throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let registry = Article.registry()
        let orders = AggregateStore<Article.Order>(log: log, registry: registry,
                                                   options: AggregateStoreOptions(snapshots: .every(100)))
        try orders.execute("order-1") { _ in [.placed(Article.OrderPlaced(customer: "c"))] }
        let idempotencyKey = "key-1"
        let ifMatch: UInt64 = 0
        let result = try orders.execute("order-1", commandID: idempotencyKey, expecting: .exact(ifMatch)) { order in
            guard order.state.customer != nil else { throw Article.OrderError.unknown }
            return Decision([.itemAdded(Article.ItemAdded(sku: "A-1", quantity: 2))],
                            outgoing: [try OutgoingMessage(type: "ItemAdded.v1", payload: ["sku": "A-1"])])
        }
        #expect(result.version == 1 && !result.wasDuplicate)
        // An event of schema version 1, upcast on load.
        try log.append(NewEvent(stream: "order-1", type: "ItemAdded", data: Array(#"{"sku":"B"}"#.utf8),
                                metadata: EventMetadata(schemaVersion: 1)))
        #expect(try orders.load("order-1").state.items == ["A-1": 2, "B": 1])

        let summaries = try ProjectionRunner<Article.OrderSummaries>(
            log: log, name: "summaries", options: ProjectionOptions(filter: EventFilter(streamPrefix: "order-")))
        let task = Task { try await summaries.run() }   // until cancelled
        var waited = 0
        while summaries.state.byID["order-1"] != 2 && waited < 500 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        task.cancel()
        try await task.value
        #expect(summaries.state.byID == ["order-1": 2])

        try log.append(NewEvent(stream: "inbox", type: "Paid", data: [], metadata: EventMetadata(eventID: UUID())))
        let billing = try IdempotentConsumer(log: log, name: "billing",
            options: IdempotentConsumerOptions(projection: ProjectionOptions(filter: EventFilter(streamPrefix: "inbox")))) { message in
            [NewEvent(stream: "invoice-\(message.stream)", type: "InvoiceRequested", data: message.data)]
        }
        var rounds = 0
        try billing.run(shouldStop: {
            rounds += 1
            return rounds > 3
        })
        #expect(try log.events(inStream: "invoice-inbox").count == 1)
        try log.close()
    }
}
