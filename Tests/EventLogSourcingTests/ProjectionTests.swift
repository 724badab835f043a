import EventLog
import EventLogSourcing
import Foundation
import Testing

/// Projection runners: state and checkpoint committed together (in the
/// log, or through a store's transaction), resumed after a drop, rebuilt
/// from the start, a position or a time.
@Suite struct ProjectionTests {
    static func fill(_ log: Log, seed: UInt64, count: Int, timestamp: ((Int) -> Timestamp)? = nil) throws -> (count: Int, sum: UInt64) {
        var random = SeededRandom(seed: seed)
        var sum: UInt64 = 0
        var n = 0
        while n < count {
            let size = min(count - n, Int(random.next() % 50) + 1)
            let first = log.endPosition
            try log.append((0..<size).map { i in plain("s-\(random.next() % 7)", n + i, timestamp: timestamp?(n + i)) })
            for p in first..<first + UInt64(size) { sum &+= p }
            n += size
        }
        return (count, sum)
    }

    @Test func aLogKeptProjectionCommitsStateAndCheckpointTogetherAndResumes() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let expected = try Self.fill(log, seed: 0xA11CE, count: 3000)
        let runner = try ProjectionRunner<Tally>(log: log, name: "tally", options: ProjectionOptions(batchSize: 256, commitEvery: 1000))
        #expect(try runner.catchUp() == 3000)
        #expect(runner.state.count == expected.count && runner.state.sum == expected.sum)
        #expect(runner.committedPosition == runner.position)
        // Each commit is one event holding the state and its checkpoint; the cursor mirrors it.
        let checkpoints = try log.events(inStream: ReservedStreams.projection("tally"))
        #expect(!checkpoints.isEmpty && checkpoints.allSatisfy { $0.type == ProjectionRunner<Tally>.checkpointType })
        #expect(checkpoints.last?.metadata[header: "checkpoint"] == String(runner.committedPosition))
        #expect(try log.cursorPosition(ReservedStreams.projection("tally")) == runner.committedPosition)
        // A new runner resumes: only events appended since are applied, its own checkpoints never.
        let more = try Self.fill(log, seed: 0xB0B, count: 500)
        let resumed = try ProjectionRunner<Tally>(log: log, name: "tally")
        #expect(resumed.state == runner.state)
        #expect(try resumed.catchUp() == 500)
        #expect(resumed.state.count == expected.count + more.count && resumed.state.sum == expected.sum &+ more.sum)
        #expect(resumed.state.streams.keys.allSatisfy { !$0.hasPrefix("$") })
        #expect(try resumed.catchUp() == 0)
        try log.close()
    }

    @Test func aRunnerDroppedMidBatchLosesNothingAndAppliesNothingTwice() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let expected = try Self.fill(log, seed: 0xD0D0, count: 2000)
        // Commits every 300 events; dropped with up to 299 applied and not committed.
        let options = ProjectionOptions(batchSize: 64, commitEvery: 300, commitInterval: .seconds(3600))
        var random = SeededRandom(seed: 0xFEED)
        var drops = 0
        // Bounded: a runner that does not resume from its checkpoint never gets to the end.
        while drops < 100 {
            let runner = try ProjectionRunner<Tally>(log: log, name: "tally", options: options)
            #expect(runner.position == runner.committedPosition)
            let steps = Int(random.next() % 12) + 1
            var atEnd = false
            for _ in 0..<steps where !atEnd {
                if try runner.step() == 0 { atEnd = true }
            }
            if atEnd || runner.position >= log.endPosition {
                try runner.catchUp()
                #expect(runner.state.count == expected.count && runner.state.sum == expected.sum)
                break
            }
            drops += 1
        }
        #expect(drops > 3 && drops < 100)
        try log.close()
    }

    struct Poison: Error {}

    struct Picky: Projection {
        var count = 0
        init() {}
        mutating func apply(_ event: EventView) throws {
            if String(decoding: event.data, as: UTF8.self) == "poison" { throw Poison() }
            count += 1
        }
    }

    @Test func aThrowingProjectionFallsBackToItsLastCommit() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        try log.append((0..<10).map { plain("s", $0) })
        let runner = try ProjectionRunner<Picky>(log: log, name: "picky", options: ProjectionOptions(batchSize: 4))
        try runner.catchUp()
        #expect(runner.state.count == 10)
        try log.append((0..<3).map { plain("s", $0) } + [NewEvent(stream: "s", type: "Happened", data: Array("poison".utf8))])
        #expect(throws: Poison.self) { try runner.catchUp() }
        #expect(runner.state.count == 10 && runner.position == runner.committedPosition)
        // Every try stops at the same event: the events before it are applied again, never twice.
        #expect(throws: Poison.self) { try runner.catchUp() }
        #expect(runner.state.count == 10 && runner.position == runner.committedPosition)
        try log.close()
    }

    @Test func rebuildFromTheStartAPositionOrATime() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let base: Timestamp = 1_800_000_000_000_000
        _ = try Self.fill(log, seed: 0xC0C0, count: 1000) { base + Timestamp($0) * 1000 }
        let runner = try ProjectionRunner<Tally>(log: log, name: "tally")
        try runner.catchUp()
        #expect(runner.state.count == 1000)
        // From a time: the events at or after it (the time index finds the first).
        try runner.rebuild(from: .timestamp(base + 600 * 1000))
        #expect(runner.state.count == 0)
        // The empty state was committed at once: a runner opened now starts there too.
        #expect(try ProjectionRunner<Tally>(log: log, name: "tally").state.count == 0)
        try runner.catchUp()
        #expect(runner.state.count == 400)
        #expect(runner.state.sum == (600..<1000).reduce(0) { $0 + UInt64($1) })
        try runner.rebuild(from: .position(900))
        try runner.catchUp()
        #expect(runner.state.count == 100)
        try runner.rebuild()
        try runner.catchUp()
        #expect(runner.state.count == 1000)
        #expect(try log.cursorPosition(ReservedStreams.projection("tally")) == runner.committedPosition)
        try log.close()
    }

    @Test func twoRunnersOfOneNameRefuseEachOther() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        try log.append((0..<10).map { plain("s", $0) })
        let a = try ProjectionRunner<Tally>(log: log, name: "tally")
        let b = try ProjectionRunner<Tally>(log: log, name: "tally")
        try a.catchUp()
        #expect(throws: SourcingError.concurrentRunner(name: ReservedStreams.projection("tally"))) { try b.catchUp() }
        try log.close()
    }

    @Test func aFilterChoosesTheEvents() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        try log.append([plain("order-1", 0), plain("cart-1", 1), plain("order-2", 2)])
        let runner = try ProjectionRunner<Tally>(
            log: log, name: "orders", options: ProjectionOptions(filter: EventFilter(streamPrefix: "order-")))
        try runner.catchUp()
        #expect(runner.state.streams == ["order-1": 1, "order-2": 1])
        try log.close()
    }

    @Test func aStoreCommitsEventsAndCheckpointInItsTransactionAndIsResumed() throws {
        let dir = TempDir()
        let log = try openLog(dir)
        let expected = try Self.fill(log, seed: 0x5709E, count: 1500)
        let store = MemoryStore()
        let options = ProjectionOptions(batchSize: 100, commitEvery: 250, commitInterval: .seconds(3600))
        let runner = try StoreProjectionRunner(log: log, name: "mem", store: store, options: options)
        // A failed transaction: nothing of it persists, and the runner reads its events again.
        for _ in 0..<4 { try runner.step() }
        store.failNext = true
        #expect(throws: CocoaError.self) { for _ in 0..<4 { try runner.step() } }
        #expect(runner.position == runner.committedPosition && runner.position == store.stored)
        try runner.catchUp()
        #expect(store.tally.count == expected.count && store.tally.sum == expected.sum)
        #expect(store.seen == store.seen.sorted() && Set(store.seen).count == store.seen.count)
        // A new runner resumes from the store's checkpoint.
        let more = try Self.fill(log, seed: 0x5709F, count: 10)
        let resumed = try StoreProjectionRunner(log: log, name: "mem", store: store, options: options)
        #expect(resumed.position == store.stored)
        try resumed.catchUp()
        #expect(store.tally.count == expected.count + more.count)
        try resumed.rebuild(from: .position(log.endPosition - 5))
        #expect(store.resets == 1 && store.tally.count == 0)
        try resumed.catchUp()
        #expect(store.tally.count == 5)
        try log.close()
    }

    @Test func asyncRunFollowsTheLogUntilCancelled() async throws {
        let dir = TempDir()
        let log = try openLog(dir)
        try log.append((0..<100).map { plain("s", $0) })
        let runner = try ProjectionRunner<Tally>(log: log, name: "tally")
        let task = Task { try await runner.run() }
        try log.append((0..<50).map { plain("s", $0) })
        var waited = 0
        while runner.committedPosition < 150 && waited < 500 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        task.cancel()
        try await task.value
        #expect(runner.state.count == 150 && runner.committedPosition >= 150)
        try log.close()
    }
}
