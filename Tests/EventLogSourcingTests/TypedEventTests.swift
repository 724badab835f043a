import EventLog
import EventLogSourcing
import Foundation
import Testing

/// The registry: encoding records the schema version and content type,
/// decoding by type name, unknown types surfaced, upcaster chains.
@Suite struct TypedEventTests {
    @Test func encodeRecordsSchemaVersionAndContentTypeAndDecodesBack() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        var registry = orderRegistry()
        registry.register(
            [String].self, type: "Tagged", schemaVersion: 4,
            embed: { .cancelled(OrderCancelled(reason: $0.joined(separator: ","))) }, extract: { _ in nil })
        let events: [OrderEvent] = [.placed(OrderPlaced(customer: "c-1")), .itemAdded(ItemAdded(sku: "A-1", quantity: 2))]
        try log.append(try events.map { try registry.encode($0, stream: "order-1") })
        let stored = try log.events(inStream: "order-1")
        #expect(stored.map(\.type) == ["OrderPlaced", "ItemAdded"])
        #expect(stored.allSatisfy { $0.metadata.schemaVersion == 1 && $0.metadata.contentType == "application/json" })
        #expect(String(decoding: stored[1].data, as: UTF8.self) == #"{"quantity":2,"sku":"A-1"}"#)
        #expect(try stored.map { try registry.decodeKnown($0).event } == events)
        #expect(registry.types == ["OrderPlaced", "ItemAdded", "OrderCancelled", "Tagged"])
        #expect(registry.schemaVersion(of: "Tagged") == 4)
        // A value no registration extracts is refused by name.
        var partial = EventRegistry<OrderEvent>()
        partial.register(OrderPlaced.self, type: "OrderPlaced", embed: OrderEvent.placed) {
            if case .placed(let e) = $0 { return e }
            return nil
        }
        #expect(throws: SourcingError.self) { try partial.encode(.cancelled(OrderCancelled(reason: "x")), stream: "s") }
        try log.close()
    }

    @Test func unknownTypesAreSurfacedNotDropped() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let registry = orderRegistry()
        try log.append([
            try registry.encode(.placed(OrderPlaced(customer: "c")), stream: "order-1"),
            NewEvent(stream: "order-1", type: "Mystery", data: Array("{}".utf8)),
        ])
        let stored = try log.events(inStream: "order-1")
        guard case .unknown(let raw) = try registry.decode(stored[1]) else {
            Issue.record("a Mystery event decoded")
            return
        }
        #expect(raw == stored[1])
        #expect(throws: SourcingError.unknownEventType(type: "Mystery", stream: "order-1", position: 1)) {
            try registry.decodeKnown(stored[1])
        }
        // The same through a lent view.
        try log.readStream("order-1", from: 1) { view in
            guard case .unknown(let raw) = try registry.decode(view) else { Issue.record("decoded"); return }
            #expect(raw.type == "Mystery")
        }
        // An aggregate fails on it by default, and passes over it when told to.
        let strict = AggregateStore<Order>(log: log, registry: registry)
        #expect(throws: SourcingError.unknownEventType(type: "Mystery", stream: "order-1", position: 1)) { try strict.load("order-1") }
        let lenient = AggregateStore<Order>(log: log, registry: registry, options: AggregateStoreOptions(unknownEvents: .skip))
        let loaded = try lenient.load("order-1")
        #expect(loaded.state.customer == "c" && loaded.state.applied == 1 && loaded.version == 1)
        try log.close()
    }

    /// Version 1 had `sku` only; version 2 added `qty`; version 3 (current) renamed it `quantity`.
    struct ItemV2: Codable { var sku: String; var qty: Int }

    static func upcastingRegistry(withLinkFrom2: Bool = true) -> EventRegistry<ItemAdded> {
        var registry = EventRegistry<ItemAdded>()
        registry.register(ItemAdded.self, type: "ItemAdded", schemaVersion: 3)
        registry.upcast(type: "ItemAdded", from: 1) { bytes in
            // On the raw JSON: add the field version 2 introduced.
            var object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] ?? [:]
            object["qty"] = 1
            return Array(try JSONSerialization.data(withJSONObject: object))
        }
        if withLinkFrom2 {
            registry.upcast(type: "ItemAdded", from: 2, ItemV2.self, to: ItemAdded.self) { ItemAdded(sku: $0.sku, quantity: $0.qty) }
        }
        return registry
    }

    @Test func upcastersChainOldPayloadsToTheCurrentVersion() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let registry = Self.upcastingRegistry()
        try log.append([
            NewEvent(stream: "s", type: "ItemAdded", data: Array(#"{"sku":"v1"}"#.utf8), metadata: EventMetadata(schemaVersion: 1)),
            NewEvent(stream: "s", type: "ItemAdded", data: Array(#"{"sku":"v2","qty":5}"#.utf8), metadata: EventMetadata(schemaVersion: 2)),
            try registry.encode(ItemAdded(sku: "v3", quantity: 7), stream: "s"),
            // No schema version at all: version 1.
            NewEvent(stream: "s", type: "ItemAdded", data: Array(#"{"sku":"none"}"#.utf8)),
        ])
        let stored = try log.events(inStream: "s")
        #expect(stored[2].metadata.schemaVersion == 3)
        #expect(try stored.map { try registry.decodeKnown($0).event } == [
            ItemAdded(sku: "v1", quantity: 1), ItemAdded(sku: "v2", quantity: 5), ItemAdded(sku: "v3", quantity: 7),
            ItemAdded(sku: "none", quantity: 1),
        ])
        // The recorded event keeps the stored metadata (its schema version before upcasting).
        #expect(try registry.decodeKnown(stored[0]).metadata.schemaVersion == 1)

        // A missing link is a typed error naming where the chain stops.
        let broken = Self.upcastingRegistry(withLinkFrom2: false)
        #expect(throws: SourcingError.missingUpcaster(type: "ItemAdded", from: 2, current: 3)) { try broken.decode(stored[0]) }
        #expect(throws: SourcingError.missingUpcaster(type: "ItemAdded", from: 2, current: 3)) { try broken.decode(stored[1]) }
        #expect(try broken.decodeKnown(stored[2]).event == ItemAdded(sku: "v3", quantity: 7))
        // A newer version than this build knows is refused, not misread.
        let future = NewEvent(stream: "s", type: "ItemAdded", data: Array(#"{"sku":"x","quantity":1}"#.utf8), metadata: EventMetadata(schemaVersion: 4))
        try log.append(future)
        #expect(throws: SourcingError.schemaVersionTooNew(type: "ItemAdded", version: 4, current: 3)) {
            try registry.decode(try log.events(inStream: "s", from: 4)[0])
        }
        // A payload that does not decode names the type and position.
        try log.append(NewEvent(stream: "s", type: "ItemAdded", data: Array("not json".utf8), metadata: EventMetadata(schemaVersion: 3)))
        do {
            _ = try registry.decode(try log.events(inStream: "s", from: 5)[0])
            Issue.record("garbage decoded")
        } catch SourcingError.undecodable(let type, let position, _) {
            #expect(type == "ItemAdded" && position == 5)
        }
        try log.close()
    }

    @Test func deterministicIDsAreVersion5UUIDs() {
        // RFC 9562's name-based UUID: Python's uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
        let dns = UUID(uuidString: "6ba7b810-9dad-11d1-80b4-00c04fd430c8")!
        #expect(DeterministicID.uuid(namespace: dns, name: Array("python.org".utf8))
            == UUID(uuidString: "886313e1-3b8a-5372-9b90-0c9aee199e5d")!)
        #expect(DeterministicID.eventID(commandID: "k", index: 0) == DeterministicID.eventID(commandID: "k", index: 0))
        #expect(DeterministicID.eventID(commandID: "k", index: 0) != DeterministicID.eventID(commandID: "k", index: 1))
        #expect(DeterministicID.eventID(commandID: "k1", index: 0) != DeterministicID.eventID(commandID: "k", index: 10))
    }
}
