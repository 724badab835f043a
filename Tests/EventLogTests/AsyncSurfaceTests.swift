@_spi(EventLogTool) @testable import EventLog
import Foundation
import Synchronization
import Testing

/// The async surface (`Log.async`, `Subscription.async`, `ConsumerGroup.async`,
/// `liveEvents`): real work on real files, on the log's own executor.
@Suite struct AsyncSurfaceTests {
    static func event(_ stream: String, _ n: Int, id: UUID? = nil) -> NewEvent {
        NewEvent(stream: stream, type: "T\(n % 2)", data: Array("\(stream)-\(n)".utf8), metadata: EventMetadata(eventID: id))
    }

    /// Every append shape, every owned read, cursors, sync, close, and an
    /// async open that reads it all back.
    @Test func everyFormDoesRealWork() async throws {
        let dir = TemporaryDirectory()
        let log = try await AsyncLog.open(at: dir.path, options: LogOptions(durability: .always))
        #expect(try await log.async.append([Self.event("a", 0), Self.event("a", 1)]) == 0..<2)
        #expect(try await log.async.append(Self.event("b", 0)) == 2)
        let id = UUID()
        let first = try await log.async.append([Self.event("c", 0, id: id)], expecting: ["c": .noStream])
        #expect(first.positions == 3..<4 && !first.wasRetry)
        // The same events again: an idempotent retry, nothing written.
        let retry = try await log.async.append([Self.event("c", 0, id: id)], expecting: ["c": .noStream])
        #expect(retry.wasRetry && retry.positions == 3..<4)
        #expect(try await log.async.append(to: "a", expectedVersion: .exact(1), [Self.event("x", 2)]).positions == 4..<5)
        await #expect(throws: EventLogError.wrongExpectedVersion(stream: "a", expected: .exact(1), actual: 2)) {
            try await log.async.append(to: "a", expectedVersion: .exact(1), [Self.event("a", 3)])
        }
        let built = try await log.async.appendBatch { batch in
            _ = try batch.append(Self.event("d", 0))
            _ = try batch.append(Self.event("d", 1))
        }
        #expect(built == 5..<7)
        #expect(log.endPosition == 7)

        let all = try await log.async.events(from: 0)
        #expect(all.map(\.position) == Array(0..<7))
        #expect(all.map { String(decoding: $0.data, as: UTF8.self) } == ["a-0", "a-1", "b-0", "c-0", "x-2", "d-0", "d-1"])
        #expect(try await log.async.events(from: 2, maxCount: 2).map(\.position) == [2, 3])
        #expect(try await log.async.events(from: 0, filter: EventFilter(streamPrefix: "d")).map(\.position) == [5, 6])
        #expect(try await log.async.event(at: 4).stream == "a")
        #expect(try await log.async.events(inStream: "a").map(\.version) == [0, 1, 2])
        #expect(try await log.async.events(inStream: "a", direction: .backward).map(\.version) == [2, 1, 0])
        #expect(try await log.async.streamInfo("d")?.count == 2)
        #expect(try await log.async.streamInfos().map(\.name) == ["a", "b", "c", "d"])
        #expect(try await log.async.position(atOrAfter: all[3].timestamp) <= 3)

        #expect(try await log.async.createCursor("p", at: .position(2)) == 2)
        try await log.async.commitCursor("p", position: 5)
        #expect(try await log.async.cursorPosition("p") == 5)
        #expect(try await log.async.lag(ofCursor: "p")?.events == 2)
        #expect(try await log.async.resetCursor("p", to: .start) == 0)
        #expect(try await log.async.cursors().map(\.name) == ["p"])
        try await log.async.deleteCursor("p")
        #expect(try await log.async.cursorPosition("p") == nil)
        #expect(try await log.async.deleteStream("b") == 7)
        try await log.async.sync()
        try await log.async.close()
        #expect(log.isClosed)

        let reopened = try await AsyncLog.open(at: dir.path, options: LogOptions(createIfMissing: false))
        #expect(try await reopened.async.events(from: 0, maxCount: 7).map(\.data) == all.map(\.data))
        try await reopened.async.close()
    }

    /// A caught-up async poll suspends, and a later append wakes it.
    @Test func subscriptionPollWakesOnALaterAppend() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? log.close() }
        try log.append([Self.event("s", 0)])
        let subscription = try await log.async.subscribe(cursor: "sub")
        #expect(try await subscription.async.poll(timeout: .seconds(1)).map(\.position) == [0])
        // Caught up: a poll with a short timeout returns nothing.
        #expect(try await subscription.async.poll(timeout: .seconds(0.05)).isEmpty)
        let waiting = Task { try await subscription.async.poll(maxCount: 10, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        try log.append([Self.event("s", 1), Self.event("s", 2)])
        #expect(try await waiting.value.map(\.position) == [1, 2])
        try await subscription.async.commit()
        #expect(try log.cursorPosition("sub") == 3)
    }

    /// Cancelling the task of a waiting poll, receive or live sequence ends it. The waits have no
    /// timeout, so only the cancellation can end them; the time limit turns a wait it did not end
    /// into a failure instead of a hang (generous: the suites run in parallel on two cores).
    @Test(.timeLimit(.minutes(2))) func cancellationEndsAWait() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? log.close() }
        let subscription = try log.subscribe(from: .end)
        let group = try log.consumerGroup("g")
        let poll = Task { try await subscription.async.poll(timeout: nil) }
        let receive = Task { try await group.async.receive(timeout: nil) }
        let live = Task { () -> Event? in
            var iterator = try log.liveEvents(from: .end).makeAsyncIterator()
            return try await iterator.next()
        }
        try await Task.sleep(for: .milliseconds(100))
        poll.cancel()
        receive.cancel()
        live.cancel()
        #expect(try await poll.value.isEmpty)
        #expect(try await receive.value.isEmpty)
        #expect(try await live.value == nil)
    }

    /// On a read-only log, many waiting tasks share one watching thread, and
    /// an append by another writer wakes them all (the live sequence too).
    /// The waits have no timeout (under the parallel suites the tasks may start
    /// far apart); the time limit turns a lost wake-up into a failure.
    @Test(.timeLimit(.minutes(5))) func readOnlyWaitsShareOneWatcher() async throws {
        let dir = TemporaryDirectory()
        let writer = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? writer.close() }
        try writer.append([Self.event("r", 0)])
        let reader = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? reader.close() }
        let subscription = try reader.subscribe(from: .end)
        let live = try reader.liveEvents(from: .end)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await reader.async.waitForAppends(after: 1, timeout: nil) ? 1 : 0 } }
            group.addTask { try await subscription.async.poll(timeout: nil).count }
            group.addTask {
                var iterator = live.makeAsyncIterator()
                return try await iterator.next() == nil ? 0 : 1
            }
            // All ten wait at once, on one watching thread.
            let watcher = reader.consumers.asyncWaitWatcher
            while watcher.counts.waiters < 10 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(watcher.counts.threadsStarted == 1)
            try writer.append([Self.event("r", 1)])
            var woken = 0
            for try await n in group { woken += n }
            #expect(woken == 10)
        }
        #expect(reader.endPosition == 2)
    }

    /// A consumer group through its async forms: receive, ack, nack (redelivered), and a receive woken by an append.
    @Test func consumerGroupReceiveAckNack() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        defer { try? log.close() }
        try log.append((0..<3).map { Self.event("g", $0) })
        let group = try await log.async.consumerGroup("workers", options: ConsumerGroupOptions(maxDeliveries: 3))
        let first = try await group.async.receive(maxCount: 2, timeout: .seconds(1))
        #expect(first.map(\.event.position) == [0, 1])
        try await group.async.ack(0)
        try await group.async.nack(1)
        let again = try await group.async.receive(maxCount: 2, timeout: .seconds(1))
        #expect(again.map(\.event.position) == [1, 2])
        #expect(again.map(\.deliveryCount) == [2, 1])
        try await group.async.ack(1)
        try await group.async.ack(2)
        #expect(try log.cursorPosition("group:workers") == 3)
        let waiting = Task { try await group.async.receive(maxCount: 5, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        try log.append([Self.event("g", 3)])
        #expect(try await waiting.value.map(\.event.position) == [3])
        #expect(try await group.async.lag().events == 1)
    }

    /// The blocking work runs on the log's executor threads, never on the cooperative pool.
    @Test func workRunsOnTheLogsExecutor() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? log.close() }
        let executor = log.executor
        let otherDir = TemporaryDirectory()
        let other = try Log.open(at: otherDir.path)
        defer { try? other.close() }
        // (on this log's executor, on the other log's)
        let owned = Box<(Bool, Bool)>((false, true))
        try await log.async.appendBatch { batch in
            // Runs where the append does its work: a thread of this log's executor, marked by it.
            owned.state.withLock { $0 = (executor.ownsCurrentThread, other.executor.ownsCurrentThread) }
            _ = try batch.append(Self.event("t", 0))
        }
        #expect(owned.state.withLock { $0.0 }, "the append ran on the log's executor")
        #expect(!owned.state.withLock { $0.1 }, "each log has threads of its own")
        // The test's own task is not on the executor.
        #expect(!executor.ownsCurrentThread)
        // The live sequence's reads are jobs of the executor too.
        let before = executor.startedJobs
        var iterator = try log.liveEvents(from: .start).makeAsyncIterator()
        #expect(try await iterator.next()?.position == 0)
        #expect(executor.startedJobs == before + 1)
        // Subscription polls as well.
        let subscription = try log.subscribe(from: .start)
        #expect(try await subscription.async.poll(timeout: .seconds(1)).count == 1)
        #expect(executor.startedJobs == before + 2)
    }

    /// At most `asyncThreadCount` jobs run at once, on at most that many threads.
    @Test func theExecutorIsBounded() async throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.asyncThreadCount = 2
        let log = try Log.open(at: dir.path, options: options)
        defer { try? log.close() }
        // (running now, the most at once)
        let counts = Box<(running: Int, most: Int)>((0, 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await log.executor.run {
                        counts.state.withLock { $0.running += 1; $0.most = max($0.most, $0.running) }
                        usleep(20_000)
                        counts.state.withLock { $0.running -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        let most = counts.state.withLock { $0.most }
        #expect(most >= 1 && most <= 2)
        #expect(log.executor.liveThreads <= 2)
        var invalid = LogOptions()
        invalid.asyncThreadCount = 0
        let invalidDir = TemporaryDirectory()
        #expect(throws: EventLogError.self) { try Log.open(at: invalidDir.path, options: invalid) }
    }

    /// Closing the log ends its executor: its threads end, and later async calls fail with `.closed`.
    @Test func closingTheLogEndsItsExecutor() async throws {
        for closeAsync in [false, true] {
            let dir = TemporaryDirectory()
            let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            try await log.async.append([Self.event("e", 0)])
            #expect(log.executor.liveThreads >= 1)
            if closeAsync { try await log.async.close() } else { try log.close() }
            let deadline = ContinuousClock.now + .seconds(5)
            while log.executor.liveThreads > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(log.executor.liveThreads == 0)
            await #expect(throws: EventLogError.closed) { try await log.async.append([Self.event("e", 1)]) }
            await #expect(throws: EventLogError.closed) { try await log.async.events(from: 0) }
        }
    }
}

/// A value shared with the closures a test hands to the log.
private final class Box<Value: Sendable>: Sendable {
    let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
}
