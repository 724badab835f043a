import EventLog
import EventLogSourcing
import Foundation
import Testing

/// Snapshots: taken by policy in the command's batch, read backward with
/// count 1, with their own schema version; an optimisation only.
@Suite struct SnapshotTests {
    static func store<A: Aggregate>(_ log: Log, _ type: A.Type, snapshots: SnapshotPolicy) -> AggregateStore<A>
    where A.Event == OrderEvent {
        AggregateStore<A>(log: log, registry: orderRegistry(), options: AggregateStoreOptions(snapshots: snapshots))
    }

    @discardableResult
    /// Seeded random commands of 1 to 3 events on a few aggregates.
    static func runCommands(_ store: AggregateStore<Order>, seed: UInt64, count: Int, streams: Int) throws -> [String] {
        var random = SeededRandom(seed: seed)
        let names = (0..<streams).map { "order-\($0)" }
        for _ in 0..<count {
            let stream = names[Int(random.next() % UInt64(streams))]
            let events = Int(random.next() % 3) + 1
            let sku = "sku-\(random.next() % 5)"
            try store.execute(stream) { loaded in
                var decided: [OrderEvent] = loaded.version == nil ? [.placed(OrderPlaced(customer: stream))] : []
                while decided.count < events { decided.append(.itemAdded(ItemAdded(sku: sku, quantity: decided.count + 1))) }
                return Decision(decided)
            }
        }
        return names
    }

    @Test func snapshotsEveryNEventsAndLoadsFromTheLatest() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log, Order.self, snapshots: .every(100))
        for n in 0..<250 {
            try store.execute("order-1") { _ in [n == 0 ? OrderEvent.placed(OrderPlaced(customer: "c")) : OrderEvent.itemAdded(ItemAdded(sku: "A", quantity: 1))] }
        }
        let snapshots = try log.events(inStream: ReservedStreams.snapshots(of: "order-1"))
        #expect(snapshots.map { $0.metadata[header: "aggregate-version"] } == ["99", "199"])
        #expect(snapshots.allSatisfy { $0.type == AggregateStore<Order>.snapshotType && $0.metadata.schemaVersion == 1 })
        // Each snapshot is in its command's batch: right after the event it follows.
        let lastEvent199 = try log.events(inStream: "order-1", from: 199, maxCount: 1)[0]
        #expect(snapshots[1].position == lastEvent199.position + 1)
        let loaded = try store.load("order-1")
        #expect(loaded.snapshotVersion == 199 && loaded.replayedEvents == 50 && loaded.version == 249)
        #expect(loaded.state.applied == 250 && loaded.state.items == ["A": 249])
        try log.close()
    }

    @Test func deletingEverySnapshotChangesNoLoadedState() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log, Order.self, snapshots: .every(7))
        let names = try Self.runCommands(store, seed: 0x5EED_0001, count: 400, streams: 5)
        let withSnapshots = try names.map { try store.load($0) }
        #expect(withSnapshots.contains { $0.snapshotVersion != nil })
        for (name, loaded) in zip(names, withSnapshots) {
            let replayed = try store.load(name, useSnapshots: false)
            #expect(replayed.state == loaded.state && replayed.version == loaded.version)
            try log.deleteStream(ReservedStreams.snapshots(of: name))
        }
        for (name, loaded) in zip(names, withSnapshots) {
            let after = try store.load(name)
            #expect(after.snapshotVersion == nil)
            #expect(after.state == loaded.state && after.version == loaded.version)
        }
        // The next command snapshots again (the deleted stream is recreated).
        try Self.runCommands(store, seed: 0x5EED_0002, count: 40, streams: 5)
        #expect(try names.contains { try store.load($0).snapshotVersion != nil })
        try log.close()
    }

    @Test func aSnapshotOfAnotherSchemaVersionIsIgnored() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let v1 = Self.store(log, Order.self, snapshots: .every(10))
        for _ in 0..<3 { try Self.runCommands(v1, seed: 0x5EED_0003, count: 20, streams: 1) }
        #expect(try v1.load("order-0").snapshotVersion != nil)
        // A build whose aggregate's Codable form changed (snapshot schema version 2): a full replay.
        let v2 = Self.store(log, OrderV2.self, snapshots: .every(10))
        let loaded = try v2.load("order-0")
        let v1State = try v1.load("order-0").state
        #expect(loaded.snapshotVersion == nil && loaded.state.order == v1State)
        // Its next command writes a version 2 snapshot, which version 1 ignores in turn.
        try v2.execute("order-0") { _ in [.itemAdded(ItemAdded(sku: "v2", quantity: 1))] }
        #expect(try v2.load("order-0").snapshotVersion != nil)
        let v1After = try v1.load("order-0")
        let v2State = try v2.load("order-0").state.order
        #expect(v1After.snapshotVersion == nil && v1After.state == v2State)
        try log.close()
    }

    @Test func aPolicyClosureDecidesAndSnapshotsOfAnEarlierIncarnationAreIgnored() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log, Order.self, snapshots: .when { $0.version % 5 == 4 })
        for _ in 0..<10 { try store.execute("order-1") { _ in [.itemAdded(ItemAdded(sku: "old", quantity: 1))] } }
        #expect(try log.events(inStream: ReservedStreams.snapshots(of: "order-1")).count == 2)
        #expect(try store.load("order-1").snapshotVersion == 9)
        // Soft-deleted, then written again: the stream continues its versions, the old snapshot must not leak in.
        try log.deleteStream("order-1")
        #expect(try store.load("order-1").version == nil)
        try store.execute("order-1") { _ in [.placed(OrderPlaced(customer: "new"))] }
        let loaded = try store.load("order-1")
        #expect(loaded.snapshotVersion == nil && loaded.version == 10)
        #expect(loaded.state.items.isEmpty && loaded.state.customer == "new" && loaded.state.applied == 1)
        try log.close()
    }
}
