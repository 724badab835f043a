import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Cursors, subscriptions, lag, consumer groups.
@Suite struct ConsumerTests {
    static func open(_ dir: TemporaryDirectory, durability: Durability = .none, _ configure: (inout LogOptions) -> Void = { _ in }) throws -> Log {
        var options = LogOptions(durability: durability)
        configure(&options)
        return try Log.open(at: dir.path, options: options)
    }

    @Test func cursorsCommitResetDeleteAndSurviveReopenAndCrash() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Self.open(dir, durability: .always)
            try Fixtures.append(log, 0..<50, batch: 10)
            #expect(try log.createCursor("projection") == 0)
            #expect(try log.createCursor("projection", at: .end) == 0)  // exists: unchanged
            try log.commitCursor("projection", position: 20)
            #expect(try log.cursorPosition("projection") == 20)
            // Never backwards by a commit, never past the end.
            #expect(throws: EventLogError.self) { try log.commitCursor("projection", position: 10) }
            #expect(throws: EventLogError.self) { try log.commitCursor("projection", position: 51) }
            try log.commitCursor("projection", position: 50)
            #expect(try log.resetCursor("projection", to: .position(5)) == 5)
            #expect(try log.resetCursor("relay", to: .end) == 50)
            #expect(try log.resetCursor("late", to: .timestamp(1_000_000 + 30)) == 30)
            #expect(try log.resetCursor("start", to: .start) == 0)
            try log.deleteCursor("start")
            #expect(try log.cursorPosition("start") == nil)
            #expect(try log.cursors().map(\.name) == ["late", "projection", "relay"])
            try log.close()
        }
        do {
            let log = try Self.open(dir, durability: .always)
            #expect(try log.cursorPosition("projection") == 5)
            #expect(try log.cursorPosition("relay") == 50)
            try log.commitCursor("projection", position: 42)
            // The process dies here: no close. Under .always the commit is durable on return.
        }
        let log = try Self.open(dir)
        #expect(try log.cursorPosition("projection") == 42)
        #expect(try log.cursorPosition("late") == 30)
        try log.close()
    }

    @Test func tornJournalTailIsCutAndCompactionKeepsTheState() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Self.open(dir)
            try Fixtures.append(log, 0..<10, batch: 10)
            // Enough commits to compact the journal several times.
            for i in 0..<60_000 { try log.commitCursor("c\(i % 3)", position: UInt64(min(10, i / 6000 + (i % 3)))) }
            try log.commitCursor("last", position: 7)
            try log.close()
        }
        let journal = dir.sub("cursors.journal")
        #expect(Damage.read(journal).count < 2 << 20)
        // A torn last write: garbage after the last record.
        Damage.overwrite(journal, at: Damage.read(journal).count, with: [40, 0, 0, 0, 9, 9, 9])
        let log = try Self.open(dir)
        #expect(try log.cursorPosition("last") == 7)
        #expect(try log.cursorPosition("c0") == 9)  // its last commit: 59_997 / 6000
        #expect(try log.cursorPosition("c2") == 10)
        try log.commitCursor("last", position: 9)
        try log.close()
        let reopened = try Self.open(dir)
        #expect(try reopened.cursorPosition("last") == 9)
        try reopened.close()
    }

    @Test func lagCountsEventsBytesAndAge() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try Fixtures.append(log, 0..<100, batch: 10)
        try log.commitCursor("c", position: 40)
        let lag = try #require(try log.lag(ofCursor: "c"))
        #expect(lag.events == 60)
        #expect(lag.bytes > 0)
        #expect((lag.oldestUnconsumedAgeMicroseconds ?? 0) > 0)
        try log.commitCursor("c", position: 100)
        #expect(try log.lag(ofCursor: "c") == Lag(events: 0, bytes: 0, oldestUnconsumedAgeMicroseconds: nil))
        #expect(log.retentionFloor(keepingCursors: ["c"]) == 100)
        #expect(log.retentionFloor(keepingCursors: ["c", "missing"]) == 0)
        try log.close()
    }

    @Test func liveSubscriberSeesEveryEventInOrderAcrossRolls() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir) { $0.segmentBytes = 16 << 10 }
        try Fixtures.append(log, 0..<100, batch: 7)
        let subscription = try log.subscribe(from: .start)
        let writer = Thread {
            var i = 100
            while i < 3000 {
                try? Fixtures.append(log, i..<(i + 13), batch: 13)
                i += 13
                if i % 130 == 0 { usleep(500) }
            }
        }
        writer.start()
        let total = 100 + 13 * 224  // what the writer appends
        var seen: [UInt64] = []
        while seen.count < total {
            let n = try subscription.poll(maxCount: 100, timeout: .seconds(10)) { view in seen.append(view.position) }
            if n == 0 { break }
        }
        let inOrder = seen == (0..<UInt64(total)).map { $0 }
        #expect(seen.count == total)
        #expect(inOrder)
        #expect(Fixtures.segments(dir).count > 3)
        try log.close()
    }

    @Test func pollWaitsForTheAppendAndCancelStopsIt() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        let subscription = try log.subscribe(from: .end)
        let received = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        let reader = Thread {
            let n = (try? subscription.poll(timeout: .seconds(30)) { _ in }) ?? -1
            received.store(n, ordering: .relaxed)
            done.store(true, ordering: .releasing)
        }
        reader.start()
        usleep(50_000)
        let doneEarly = done.load(ordering: .acquiring)
        #expect(!doneEarly)  // caught up: it waits
        try log.append(Fixtures.event(0))
        var spins = 0
        while !done.load(ordering: .acquiring) && spins < 2000 { usleep(1000); spins += 1 }
        #expect(received.load(ordering: .relaxed) == 1)
        // Cancel a waiting poll.
        let cancelled = Atomic<Bool>(false)
        let waiter = Thread {
            _ = try? subscription.poll(timeout: .seconds(30)) { _ in }
            cancelled.store(true, ordering: .releasing)
        }
        waiter.start()
        usleep(50_000)
        subscription.cancel()
        spins = 0
        while !cancelled.load(ordering: .acquiring) && spins < 2000 { usleep(1000); spins += 1 }
        let wasCancelled = cancelled.load(ordering: .acquiring)
        #expect(wasCancelled)
        try log.close()
    }

    @Test func filtersSkipButAdvance() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try Fixtures.append(log, 0..<70, batch: 10)  // streams stream-0…6, types Type0…2
        let subscription = try log.subscribe(from: .start, filter: EventFilter(streamPrefix: "stream-3", types: ["Type0"]))
        var positions: [UInt64] = []
        _ = try subscription.poll(maxCount: 1000, timeout: .seconds(0.1)) { positions.append($0.position) }
        let expected: [UInt64] = (0..<UInt64(70)).filter { (p: UInt64) -> Bool in p % 7 == 3 && p % 3 == 0 }
        #expect(positions == expected)
        #expect(subscription.position == 70)
        try log.close()
    }

    @Test func atLeastOnceThroughACursorWithAutoCommit() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Self.open(dir, durability: .always)
            try Fixtures.append(log, 0..<500, batch: 50)
            let subscription = try log.subscribe(cursor: "relay", autoCommit: AutoCommit(events: 100, interval: .seconds(60)))
            var processed = 0
            _ = try subscription.poll(maxCount: 250, timeout: .seconds(1)) { _ in processed += 1 }
            #expect(processed == 250)
            #expect(try log.cursorPosition("relay") == 250)  // auto-committed after processing
            _ = try subscription.poll(maxCount: 30, timeout: .seconds(1)) { _ in }
            #expect(try log.cursorPosition("relay") == 250)  // below the threshold: not yet
            // Crash before the next commit.
        }
        let log = try Self.open(dir)
        let subscription = try log.subscribe(cursor: "relay")
        #expect(subscription.position == 250)  // resumes after the last commit: 250..<280 come again
        var first: UInt64?
        _ = try subscription.poll(maxCount: 1, timeout: .seconds(1)) { first = $0.position }
        #expect(first == 250)
        try log.close()
    }

    @Test func asyncSequenceCatchesUpFollowsAndIsBounded() async throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try Fixtures.append(log, 0..<1000, batch: 100)
        let sequence = try log.liveEvents(from: .start, bufferSize: 64)
        let appender = Task.detached {
            try await Task.sleep(nanoseconds: 20_000_000)
            try Fixtures.append(log, 1000..<1200, batch: 20)
        }
        var iterator = sequence.makeAsyncIterator()
        var count = 0
        while count < 1200, let event = try await iterator.next() {
            #expect(event.position == UInt64(count))
            count += 1
            // Back-pressure: it never reads more than its buffer ahead of the consumer.
            #expect(iterator.position <= UInt64(count + 64))
        }
        #expect(count == 1200)
        try await appender.value
        // Cancelling the task ends a waiting iteration.
        let waiting = Task {
            var it = try log.liveEvents(from: .end).makeAsyncIterator()
            return try await it.next()
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        waiting.cancel()
        #expect(try await waiting.value == nil)
        try log.close()
    }

    @Test func competingConsumersShareTheWork() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try Fixtures.append(log, 0..<600, batch: 50)
        let group = try log.consumerGroup("workers", options: ConsumerGroupOptions(ackTimeout: .seconds(10)))
        let processed = Mutex<[UInt64: Int]>([:])
        let threads = (0..<4).map { _ in
            Thread {
                while true {
                    guard let batch = try? group.receive(maxCount: 7, timeout: .seconds(0.3)), !batch.isEmpty else { break }
                    for d in batch {
                        processed.withLock { $0[d.event.position, default: 0] += 1 }
                        try? group.ack(d.event.position)
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        var spins = 0
        while processed.withLock({ $0.count }) < 600 && spins < 10_000 { usleep(1000); spins += 1 }
        usleep(400_000)
        let counts = processed.withLock { $0 }
        #expect(counts.count == 600)
        #expect(counts.values.allSatisfy { $0 == 1 })  // each handed to one worker, acknowledged once
        #expect(try log.cursorPosition("group:workers") == 600)
        #expect(try group.lag().events == 0)
        try log.close()
    }

    @Test func nackTimeoutParkingAndReplay() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Self.open(dir, durability: .always)
            try Fixtures.append(log, 0..<3, batch: 3)
            let group = try log.consumerGroup("g", options: ConsumerGroupOptions(maxDeliveries: 2, ackTimeout: .milliseconds(100)))
            var first = try group.receive(maxCount: 3, timeout: .seconds(1))
            #expect(first.map(\.event.position) == [0, 1, 2])
            try group.ack(0)
            try group.nack(1)  // back at once
            var again = try group.receive(maxCount: 3, timeout: .seconds(1))
            #expect(again.map(\.event.position) == [1])
            #expect(again.first?.deliveryCount == 2)
            // 2 was never acknowledged: after the timeout it comes back.
            usleep(150_000)
            again = try group.receive(maxCount: 3, timeout: .seconds(1))
            #expect(again.map(\.event.position) == [2])
            // Both have had their 2 deliveries: a nack or a timeout parks them.
            try group.nack(1)
            usleep(150_000)
            first = try group.receive(maxCount: 3, timeout: .seconds(0.2))
            #expect(first.isEmpty)
            #expect(group.parked() == [ParkedEvent(position: 1, deliveries: 2), ParkedEvent(position: 2, deliveries: 2)])
            #expect(try log.cursorPosition("group:g") == 3)  // parked events no longer hold the cursor back
            try log.close()
        }
        // Parked events survive a reopen, and replay hands them out again.
        let log = try Self.open(dir)
        let group = try log.consumerGroup("g", options: ConsumerGroupOptions(maxDeliveries: 2))
        #expect(group.parked().map(\.position) == [1, 2])
        try group.replayParked([2])
        let replayed = try group.receive(maxCount: 5, timeout: .seconds(1))
        #expect(replayed.map(\.event.position) == [2])
        #expect(replayed.first?.deliveryCount == 1)
        try group.ack(2)
        #expect(group.parked().map(\.position) == [1])
        try log.close()
    }

    /// A group "g" over events 0..<5 (one a batch: batch i holds event i),
    /// each handed out once; 0 and 3 acknowledged, 1, 2 and 4 parked (by a
    /// nack with `maxDeliveries` 1), so its cursor is at 5.
    static func groupWithParkedEvents(
        _ dir: TemporaryDirectory, _ configure: (inout LogOptions) -> Void = { _ in }
    ) throws -> (Log, ConsumerGroup) {
        let log = try open(dir, durability: .always) { options in
            options.segmentBytes = 64 << 10  // small files for `crashCopy`
            configure(&options)
        }
        try Fixtures.append(log, 0..<5, batch: 1)
        let group = try log.consumerGroup("g", options: ConsumerGroupOptions(maxDeliveries: 1))
        #expect(try group.receive(maxCount: 5, timeout: .seconds(1)).map(\.event.position) == [0, 1, 2, 3, 4])
        try group.ack(0)
        try group.ack(3)
        for position: UInt64 in [1, 2, 4] { try group.nack(position) }
        #expect(group.parked().map(\.position) == [1, 2, 4])
        #expect(try log.cursorPosition("group:g") == 5)
        return (log, group)
    }

    /// The log's files as a crash would leave them now: copied while the
    /// log is open. (A log with a consumer group is never released in the
    /// process, so dropping it cannot stand for a crash.)
    static func crashCopy(_ dir: TemporaryDirectory) throws -> TemporaryDirectory {
        let copy = TemporaryDirectory()
        for name in dir.files() { try FileManager.default.copyItem(atPath: dir.sub(name), toPath: copy.sub(name)) }
        return copy
    }

    @Test func replayIgnoresPositionsThatAreNotParked() throws {
        let dir = TemporaryDirectory()
        let (log, group) = try Self.groupWithParkedEvents(dir)
        let journal = dir.sub("cursors.journal")
        let size = Damage.read(journal).count
        try group.replayParked([0, 3])  // acknowledged, never parked
        try group.replayParked([9])  // past the end of the log
        #expect(try log.cursorPosition("group:g") == 5)
        #expect(group.parked().map(\.position) == [1, 2, 4])
        #expect(Damage.read(journal).count == size)  // nothing written
        #expect(try group.receive(maxCount: 5, timeout: .seconds(0.1)).isEmpty)
        // Of 3 (not parked) and 4 (parked), only 4 is replayed, and the cursor goes back to 4, not 3.
        try group.replayParked([3, 4])
        #expect(group.parked().map(\.position) == [1, 2])
        #expect(try log.cursorPosition("group:g") == 4)
        #expect(try group.receive(maxCount: 5, timeout: .seconds(1)).map(\.event.position) == [4])
        try log.close()
    }

    @Test func replayIsOneJournalRecordAndSurvivesACrash() throws {
        let dir = TemporaryDirectory()
        let journal = dir.sub("cursors.journal")
        let (original, originalGroup) = try Self.groupWithParkedEvents(dir)
        let before = Damage.read(journal).count
        try originalGroup.replayParked()
        let added = Array(Damage.read(journal).dropFirst(before))
        // One record: 38 bytes, the name "group:g", 3 positions of 8 bytes.
        #expect(added.count == 38 + 7 + 3 * 8)
        if added.count >= 17 {
            #expect(added[0..<4].elementsEqual(withUnsafeBytes(of: UInt32(added.count).littleEndian, Array.init)))
            #expect(added[16] == 5)  // its kind: replay parked events
        }
        #expect(originalGroup.parked().isEmpty)
        #expect(try original.cursorPosition("group:g") == 1)
        // The process dies here (under .always the record is durable on return).
        let crashed = try Self.crashCopy(dir)
        try original.close()
        let log = try Self.open(crashed)
        let group = try log.consumerGroup("g", options: ConsumerGroupOptions(maxDeliveries: 1))
        #expect(group.parked().isEmpty)
        #expect(try log.cursorPosition("group:g") == 1)
        // From the cursor on: the replayed events, and 3 between them again (at least once).
        #expect(try group.receive(maxCount: 10, timeout: .seconds(1)).map(\.event.position) == [1, 2, 3, 4])
        try log.close()
    }

    /// A replay's journal write torn at any byte (the process dies during
    /// it): after the reopen, either all three events are still parked with
    /// the cursor where it was, or none is and the cursor is at the lowest.
    /// A record of 61 bytes (30, "group:g", 3 × 8) torn short is cut.
    @Test(arguments: [1, 8, 20, 37, 40, 60, 61, 74, 80, 111])
    func aTornReplayKeepsAllOrNothing(keepBytes: Int) throws {
        let dir = TemporaryDirectory()
        let tearing = Atomic<Bool>(false)
        let (original, originalGroup) = try Self.groupWithParkedEvents(dir) { options in
            options.storageFaults = StorageFaults { op, path in
                guard op == .write, path.hasSuffix("/cursors.journal"), tearing.load(ordering: .relaxed) else { return nil }
                return .tornWrite(keepBytes: keepBytes, errno: EIO)
            }
        }
        tearing.store(true, ordering: .relaxed)
        #expect(throws: EventLogError.self) { try originalGroup.replayParked() }
        // The process dies here.
        let crashed = try Self.crashCopy(dir)
        tearing.store(false, ordering: .relaxed)
        try original.close()
        let log = try Self.open(crashed)
        let group = try log.consumerGroup("g", options: ConsumerGroupOptions(maxDeliveries: 1))
        let parked = group.parked().map(\.position)
        let cursor = try log.cursorPosition("group:g")
        let untouched = parked == [1, 2, 4] && cursor == 5
        let replayed = parked.isEmpty && cursor == 1
        #expect(untouched || replayed, "parked \(parked), cursor \(String(describing: cursor))")
        if keepBytes < 61 { #expect(untouched) }
        try log.close()
    }

    @Test func anUnreadableParkedEventFailsTheReplay() throws {
        let dir = TemporaryDirectory()
        let (log, group) = try Self.groupWithParkedEvents(dir)
        let journal = dir.sub("cursors.journal")
        let size = Damage.read(journal).count
        // Damage event 2's data in place (the log's mapping sees it): its record checksum fails.
        let segment = Fixtures.segments(dir)[0]
        let batch = Fixtures.batches(in: segment)[2]
        #expect(batch.base == 2 && batch.count == 1)
        let at = batch.offset + batch.length - 1
        Damage.overwrite(segment, at: at, with: [Damage.read(segment)[at] ^ 0x01])
        do {
            try group.replayParked()
            Issue.record("the replay went around an unreadable parked event")
        } catch let error as EventLogError {
            guard case .corruption = error else {
                Issue.record("unexpected error \(error)")
                return
            }
        }
        // Nothing was replayed.
        #expect(group.parked().map(\.position) == [1, 2, 4])
        #expect(try log.cursorPosition("group:g") == 5)
        #expect(Damage.read(journal).count == size)
        #expect(try group.receive(maxCount: 5, timeout: .seconds(0.1)).isEmpty)
        // The readable ones can still be replayed by name.
        try group.replayParked([1, 4])
        #expect(group.parked().map(\.position) == [2])
        #expect(try log.cursorPosition("group:g") == 1)
        try log.close()
    }

    /// A record whose checksum holds but whose kind this build does not know
    /// (as a later format might write) is corruption: neither skipped nor
    /// cut as a torn tail, last in the journal or not.
    @Test(arguments: [false, true])
    func aJournalRecordOfUnknownKindIsCorruption(followedByAnother: Bool) throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Self.open(dir)
            try Fixtures.append(log, 0..<3, batch: 3)
            try log.commitCursor("c", position: 2)
            try log.close()
        }
        let journal = dir.sub("cursors.journal")
        func record(kind: UInt8, position: UInt64) -> [UInt8] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt32(39).littleEndian) { bytes += $0 }
            bytes += [0, 0, 0, 0]
            withUnsafeBytes(of: UInt64(48).littleEndian) { bytes += $0 }  // synced: the header
            bytes += [kind, 1, UInt8(ascii: "c")]
            withUnsafeBytes(of: position.littleEndian) { bytes += $0 }
            withUnsafeBytes(of: Int64(0).littleEndian) { bytes += $0 }
            withUnsafeBytes(of: UInt32(0).littleEndian) { bytes += $0 }
            let crc = CRC32C.checksum(Array(bytes[8...]), continuing: CRC32C.checksum(Array(bytes[0..<4])))
            withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
            return bytes
        }
        let before = Damage.read(journal)
        var added = record(kind: 9, position: 1)
        if followedByAnother { added += record(kind: 1, position: 3) }
        Damage.overwrite(journal, at: before.count, with: added)
        do {
            let log = try Self.open(dir)
            Issue.record("opened with cursor c at \(String(describing: try? log.cursorPosition("c")))")
        } catch {
            guard case .corruption(_, let offset, _)? = error as? EventLogError else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(offset == Int64(before.count))
        }
        #expect(Damage.read(journal) == before + added)  // not cut
    }

    @Test func orderedByStreamHoldsLaterEventsOfABusyStream() throws {
        let dir = TemporaryDirectory()
        let log = try Self.open(dir)
        try log.append([
            NewEvent(stream: "a", type: "T", data: [0]), NewEvent(stream: "a", type: "T", data: [1]),
            NewEvent(stream: "b", type: "T", data: [2]),
        ])
        let group = try log.consumerGroup("ordered", options: ConsumerGroupOptions(orderedByStream: true))
        let first = try group.receive(maxCount: 3, timeout: .seconds(1))
        #expect(first.map(\.event.position) == [0, 2])  // a's second event waits for its first
        try group.ack(0)
        let second = try group.receive(maxCount: 3, timeout: .seconds(1))
        #expect(second.map(\.event.position) == [1])
        try log.close()
    }

    @Test func readOnlyRefreshSeesAnotherWritersAppends() throws {
        let dir = TemporaryDirectory()
        let writer = try Self.open(dir) { $0.segmentBytes = 8 << 10 }
        try Fixtures.append(writer, 0..<20, batch: 5)
        var options = LogOptions(readOnly: true)
        options.durability = .none
        let reader = try Log.open(at: dir.path, options: options)
        #expect(reader.endPosition == 20)
        try Fixtures.append(writer, 20..<400, batch: 10)  // rolls several segments
        #expect(reader.endPosition == 20)
        #expect(try reader.refresh())
        #expect(reader.endPosition == 400)
        #expect(try Fixtures.expectContent(reader, count: 400))
        let inStream3 = (0..<400).filter { $0 % 7 == 3 }.count
        #expect(try reader.events(inStream: "stream-3").count == inStream3)
        #expect(try !reader.refresh())
        try reader.close()
        try writer.close()
    }

    @Test func aReaderBesideTheWriterCommitsCursorsToTheSharedJournal() throws {
        let dir = TemporaryDirectory()
        let writer = try Self.open(dir)
        try Fixtures.append(writer, 0..<100, batch: 10)
        var options = LogOptions(durability: .none, readOnly: true)
        options.allowsCursorCommits = true
        let reader = try Log.open(at: dir.path, options: options)
        try reader.commitCursor("projection", position: 40)
        // The writer's own commits and the reader's land in one journal, each
        // seeing the other's before it writes: never backwards across them.
        #expect(throws: EventLogError.self) { try writer.commitCursor("projection", position: 30) }
        try writer.commitCursor("projection", position: 60)
        #expect(throws: EventLogError.self) { try reader.commitCursor("projection", position: 50) }
        // Many commits from both: the journal is compacted under the other's feet.
        for i in 0..<30_000 {
            try reader.commitCursor("r\(i % 3)", position: UInt64(min(100, i / 300)))
            try writer.commitCursor("w\(i % 4)", position: UInt64(min(100, i / 300)))
        }
        try reader.commitCursor("projection", position: 99)
        try reader.refresh()
        #expect(try reader.cursorPosition("w3") == 99)
        #expect(try writer.cursorPosition("projection") == 60)  // the writer reads the journal before its next write only
        try writer.commitCursor("other", position: 1)
        #expect(try writer.cursorPosition("projection") == 99)
        #expect(Damage.read(dir.sub("cursors.journal")).count < 2 << 20)
        try reader.close()
        try writer.close()
        let reopened = try Self.open(dir)
        #expect(try reopened.cursorPosition("projection") == 99)
        #expect(try reopened.cursorPosition("w3") == 99)
        try reopened.close()
        // Without the option, a read-only log refuses commits.
        let plain = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        #expect(throws: EventLogError.self) { try plain.commitCursor("x", position: 0) }
        try plain.close()
    }
}
