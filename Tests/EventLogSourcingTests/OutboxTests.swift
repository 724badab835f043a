import EventLog
import EventLogSourcing
import Foundation
import Testing

/// The outbox: domain and integration events in one atomic append; the
/// consuming side idempotent by message id, durably.
@Suite struct OutboxTests {
    struct Confirmation: Codable, Equatable { var order: String }

    @Test func domainAndIntegrationEventsAreOneAtomicAppend() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = AggregateStore<Order>(log: log, registry: orderRegistry())
        let result = try store.execute("order-1", commandID: "place-1", metadata: EventMetadata(correlationID: "conv-1")) { _ in
            Decision(
                [.placed(OrderPlaced(customer: "c"))],
                outgoing: [try OutgoingMessage(type: "OrderPlaced.v1", payload: Confirmation(order: "order-1"))])
        }
        // The relay's selection: the outbox stream by prefix.
        let outbox = try log.events(from: 0, filter: EventFilter(streamPrefix: "outbox"))
        #expect(outbox.count == 1)
        let message = outbox[0]
        #expect(result.positions.contains(message.position) && result.positions.count == 3)  // event, message, record
        #expect(message.type == "OrderPlaced.v1" && message.metadata.schemaVersion == 1)
        #expect(message.metadata.contentType == "application/json" && message.metadata.correlationID == "conv-1")
        #expect(message.metadata.causationID == "place-1")
        #expect(message.metadata.eventID == DeterministicID.eventID(commandID: "place-1", index: 1))
        #expect(try JSONDecoder().decode(Confirmation.self, from: Data(message.data)) == Confirmation(order: "order-1"))
        // A conflicting command writes neither its events nor its messages.
        let end = log.endPosition
        #expect(throws: SourcingError.self) {
            try store.execute("order-1", expecting: .noStream) { _ in
                Decision([.cancelled(OrderCancelled(reason: "x"))], outgoing: [OutgoingMessage(type: "Cancelled", data: [1])])
            }
        }
        #expect(log.endPosition == end)
        // A message may name its own outbox stream.
        try store.execute("order-1") { _ in
            Decision([], outgoing: [OutgoingMessage(type: "Ping", data: [], stream: "outbox-audit")])
        }
        #expect(try log.events(inStream: "outbox-audit").count == 1)
        try log.close()
    }

    /// Messages as an inbox appends them: some delivered twice, by event id or by `Nats-Msg-Id`.
    static func deliver(_ log: Log, ids: [String]) throws {
        try log.append(ids.map { id in
            NewEvent(
                stream: "inbox", type: "PaymentReceived", data: Array(id.utf8),
                metadata: EventMetadata(headers: [.init(IdempotentConsumer.messageIDHeader, id)]))
        })
    }

    static func consumer(_ log: Log, remembered: Int = 1000, options: ProjectionOptions = ProjectionOptions()) throws -> IdempotentConsumer {
        var projection = options
        projection.filter = EventFilter(streamPrefix: "inbox")
        return try IdempotentConsumer(
            log: log, name: "billing", options: IdempotentConsumerOptions(projection: projection, rememberedIDs: remembered)
        ) { message in
            [NewEvent(stream: "billing-" + String(decoding: message.data, as: UTF8.self), type: "Billed", data: [])]
        }
    }

    static func effects(_ log: Log) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for event in try log.events(from: 0, filter: EventFilter(streamPrefix: "billing-")) { counts[event.stream, default: 0] += 1 }
        return counts
    }

    @Test func aConsumerHandlesEachMessageIDOnceAcrossRestarts() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        var random = SeededRandom(seed: 0x1D_0001)
        var sent: [String] = []
        for _ in 0..<20 {
            let batch = (0..<10).map { _ in "m-\(random.next() % 120)" }
            sent += batch
            try Self.deliver(log, ids: batch)
        }
        let consumer = try Self.consumer(log)
        try consumer.catchUp()
        let distinct = Set(sent)
        #expect(try Self.effects(log) == Dictionary(uniqueKeysWithValues: distinct.map { ("billing-" + $0, 1) }))
        #expect(consumer.duplicates == sent.count - distinct.count)
        // A new consumer remembers (from its records) what was handled: redeliveries are passed over.
        let restarted = try Self.consumer(log)
        #expect(distinct.allSatisfy { restarted.hasHandled($0) })
        try Self.deliver(log, ids: Array(distinct.prefix(5)) + ["m-new"])
        try restarted.catchUp()
        #expect(restarted.duplicates == 5)
        let effects = try Self.effects(log)
        #expect(effects["billing-m-new"] == 1 && effects.values.allSatisfy { $0 == 1 })
        try log.close()
    }

    @Test func aConsumerDroppedBeforeItsCommitHandlesAgainButAppendsOnce() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        try Self.deliver(log, ids: (0..<500).map { "m-\($0)" })
        let options = ProjectionOptions(batchSize: 50, commitEvery: 120, commitInterval: .seconds(3600))
        var handledBefore = 0
        for steps in [3, 5, 2, 3] {
            let consumer = try Self.consumer(log, options: options)
            for _ in 0..<steps { try consumer.step() }
            handledBefore = consumer.committedPosition > UInt64(handledBefore) ? Int(consumer.committedPosition) : handledBefore
        }
        #expect(handledBefore > 0 && handledBefore < 500)
        try Self.consumer(log, options: options).catchUp()
        let effects = try Self.effects(log)
        #expect(effects.count == 500 && effects.values.allSatisfy { $0 == 1 })
        try log.close()
    }

    @Test func onlyTheLatestIDsAreRemembered() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        try Self.deliver(log, ids: (0..<30).map { "m-\($0)" })
        try Self.consumer(log, remembered: 10, options: ProjectionOptions(commitEvery: 7)).catchUp()
        let restarted = try Self.consumer(log, remembered: 10)
        #expect((20..<30).allSatisfy { restarted.hasHandled("m-\($0)") })
        #expect(!restarted.hasHandled("m-0"))
        try log.close()
    }
}
