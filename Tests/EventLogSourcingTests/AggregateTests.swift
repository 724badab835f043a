import EventLog
import EventLogSourcing
import Foundation
import Testing

/// Aggregates: load, decide, append with the expected version; conflicts,
/// the retry policy, and commands idempotent by command id.
@Suite struct AggregateTests {
    static func store(_ log: Log, snapshots: SnapshotPolicy = .never) -> AggregateStore<Order> {
        AggregateStore<Order>(log: log, registry: orderRegistry(), options: AggregateStoreOptions(snapshots: snapshots))
    }

    @Test func executeAppendsWithTheLoadedVersionAndLoadReplays() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        let placed = try store.execute("order-1", expecting: .noStream) { loaded in
            #expect(loaded.version == nil && loaded.state == Order())
            return [.placed(OrderPlaced(customer: "c-1"))]
        }
        #expect(placed.version == 0 && placed.versions == 0...0 && !placed.wasDuplicate)
        let added = try store.execute("order-1") { loaded in
            #expect(loaded.version == 0 && loaded.state.customer == "c-1")
            return [.itemAdded(ItemAdded(sku: "A", quantity: 2)), .itemAdded(ItemAdded(sku: "A", quantity: 1))]
        }
        #expect(added.version == 2 && added.versions == 1...2)
        let loaded = try store.load("order-1")
        #expect(loaded.version == 2 && loaded.state.items == ["A": 3] && loaded.replayedEvents == 3)
        #expect(try store.load("order-9").version == nil)
        // Events carry the command's metadata: schema version, content type, causation defaulting to nothing without an id.
        let stored = try log.events(inStream: "order-1")
        #expect(stored.allSatisfy { $0.metadata.eventID != nil && $0.metadata.schemaVersion == 1 })
        try log.close()
    }

    @Test func aStaleVersionIsATypedConflictAndWritesNothing() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        try store.execute("order-1") { _ in [.placed(OrderPlaced(customer: "c"))] }
        // The caller's version (If-Match) is stale: no decision, nothing written.
        var decided = false
        #expect(throws: SourcingError.versionConflict(stream: "order-1", expected: .exact(5), actual: 0)) {
            try store.execute("order-1", expecting: .exact(5)) { _ in
                decided = true
                return [.cancelled(OrderCancelled(reason: "x"))]
            }
        }
        #expect(!decided)
        // Another writer appends between load and append: the append's expectation fails.
        let end = log.endPosition
        #expect(throws: SourcingError.versionConflict(stream: "order-1", expected: .exact(0), actual: 1)) {
            try store.execute("order-1") { _ in
                try store.execute("order-1") { _ in [.itemAdded(ItemAdded(sku: "B", quantity: 1))] }
                return [.cancelled(OrderCancelled(reason: "late"))]
            }
        }
        #expect(log.endPosition == end + 1)
        #expect(try store.load("order-1").state.cancelled == false)
        try log.close()
    }

    @Test func theRetryPolicyDecidesAgainAfterAConflict() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        try store.execute("order-1") { _ in [.placed(OrderPlaced(customer: "c"))] }
        // Two conflicts, then a clean try: three attempts are enough, two are not.
        for (maxAttempts, succeeds) in [(3, true), (2, false)] {
            var attempts = 0
            do {
                try store.execute("order-1", retry: RetryPolicy(maxAttempts: maxAttempts)) { loaded in
                    attempts += 1
                    if attempts <= 2 { try store.execute("order-1") { _ in [.itemAdded(ItemAdded(sku: "race", quantity: 1))] } }
                    return [.itemAdded(ItemAdded(sku: "mine", quantity: loaded.state.items["race", default: 0]))]
                }
                #expect(succeeds)
            } catch SourcingError.versionConflict {
                #expect(!succeeds)
            }
            #expect(attempts == (succeeds ? 3 : 2))
        }
        #expect(try store.load("order-1").state.items == ["race": 4, "mine": 2])
        // With the caller's version given, a conflict is final: one try.
        var attempts = 0
        #expect(throws: SourcingError.self) {
            try store.execute("order-1", expecting: .exact(0), retry: RetryPolicy(maxAttempts: 5)) { _ in
                attempts += 1
                return []
            }
        }
        #expect(attempts == 0)
        try log.close()
    }

    @Test func aCommandIDIsHandledOnceEvenAfterLaterCommands() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        let first = try store.execute("order-1", commandID: "place-1") { _ in [.placed(OrderPlaced(customer: "c"))] }
        #expect(!first.wasDuplicate && first.version == 0)
        // The event ids derive from the command id.
        let stored = try log.events(inStream: "order-1")
        #expect(stored[0].metadata.eventID == DeterministicID.eventID(commandID: "place-1", index: 0))
        #expect(stored[0].metadata.causationID == "place-1")
        let end = log.endPosition
        var decided = 0
        let again = try store.execute("order-1", commandID: "place-1") { _ in
            decided += 1
            return [.placed(OrderPlaced(customer: "other"))]
        }
        #expect(decided == 0 && again.wasDuplicate && log.endPosition == end)
        #expect(again.version == first.version && again.versions == first.versions && again.positions == first.positions)
        // Later commands do not make the log forget it (the engine alone recognises only the last append).
        try store.execute("order-1", commandID: "add-1") { _ in [.itemAdded(ItemAdded(sku: "A", quantity: 1))] }
        try store.execute("order-1", commandID: "add-2") { _ in [.itemAdded(ItemAdded(sku: "B", quantity: 1))] }
        let late = try store.execute("order-1", commandID: "add-1") { _ in [.itemAdded(ItemAdded(sku: "A", quantity: 1))] }
        #expect(late.wasDuplicate && late.version == 1)
        #expect(try store.load("order-1").state.items == ["A": 1, "B": 1])
        // The same id for another aggregate is refused.
        #expect(throws: SourcingError.commandIDReused(commandID: "add-1", stream: "order-2", originalStream: "order-1")) {
            try store.execute("order-2", commandID: "add-1") { _ in [.placed(OrderPlaced(customer: "x"))] }
        }
        // A command that decided nothing is remembered too.
        let nothing = try store.execute("order-1", commandID: "noop") { _ in [] }
        #expect(nothing.version == 2 && nothing.versions == nil && !nothing.wasDuplicate)
        #expect(try store.execute("order-1", commandID: "noop") { _ in [.cancelled(OrderCancelled(reason: "x"))] }.wasDuplicate)
        #expect(try store.load("order-1").state.cancelled == false)
        try log.close()
    }

    @Test func concurrentDuplicatesOfOneCommandAppendOnce() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        try store.execute("order-1") { _ in [.placed(OrderPlaced(customer: "c"))] }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var all: [CommandResult] = []
        }
        let results = Results()
        let threads = 4
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            let result = try? store.execute("order-1", commandID: "same", retry: RetryPolicy(maxAttempts: 10)) { _ in
                [.itemAdded(ItemAdded(sku: "A", quantity: 1))]
            }
            if let result { results.lock.withLock { results.all.append(result) } }
        }
        let all = results.lock.withLock { results.all }
        #expect(all.count == threads)
        #expect(all.filter { !$0.wasDuplicate }.count == 1)
        #expect(Set(all.map(\.positions)).count == 1 && Set(all.map(\.version)).count == 1)
        #expect(try store.load("order-1").state.items == ["A": 1])
        try log.close()
    }

    @Test func theLogRecognisesARepeatedAppendOfACommand() throws {
        // A command whose append reached the log but whose answer was lost, repeated
        // with the same batch: the log's own idempotency (wasRetry), reported as a duplicate.
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        let first = try store.execute("order-1", commandID: "k") { _ in [.placed(OrderPlaced(customer: "c"))] }
        let batch = try log.events(from: first.positions.lowerBound, maxCount: first.positions.count).map {
            NewEvent(stream: $0.stream, type: $0.type, data: $0.data, metadata: $0.metadata)
        }
        let repeated = try log.append(batch, expecting: ["order-1": .noStream, ReservedStreams.command("k"): .noStream])
        #expect(repeated.wasRetry && repeated.positions == first.positions)
        try log.close()
    }

    @Test func asyncExecuteRunsOnTheLogsExecutor() async throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let store = Self.store(log)
        let result = try await store.async.execute("order-1", commandID: "a") { _ in [.placed(OrderPlaced(customer: "c"))] }
        #expect(result.version == 0)
        #expect(try await store.async.execute("order-1", commandID: "a") { _ in [] }.wasDuplicate)
        #expect(try await store.async.load("order-1").state.customer == "c")
        #expect(try await store.async.handledCommand("a")?.version == 0)
        try log.close()
    }
}
