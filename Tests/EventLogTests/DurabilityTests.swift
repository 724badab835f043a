import Foundation
import Synchronization
import Testing
@testable import EventLog

/// The durability policies: what syncs when.
@Suite struct DurabilityTests {
    /// Counts `fdatasync` calls on segment files.
    final class SyncCounter: Sendable {
        private let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
        var faults: StorageFaults {
            StorageFaults { [self] op, path in
                if op == .datasync && path.hasSuffix(".segment") { count.add(1, ordering: .relaxed) }
                return nil
            }
        }
    }

    @Test func intervalSyncsInTheBackgroundAndStopsOnClose() throws {
        let dir = TemporaryDirectory()
        let syncs = SyncCounter()
        var options = LogOptions(durability: .interval(.milliseconds(20)))
        options.storageFaults = syncs.faults
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<10, batch: 5)
        // The flusher syncs within a few intervals (the counter ticks as a sync starts, so wait for it to end).
        var waited = 0
        while (syncs.value == 0 || log.batches.groupCommit.hasUnsyncedWrites) && waited < 500 { usleep(10_000); waited += 1 }
        #expect(syncs.value > 0)
        #expect(!log.batches.groupCommit.hasUnsyncedWrites)
        try log.close()
        let afterClose = syncs.value
        usleep(100_000)
        #expect(syncs.value == afterClose)  // the flusher stopped
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(try Fixtures.expectContent(reopened, count: 10))
        try reopened.close()
    }

    @Test func noneSyncsOnlyWhenAskedAndAtClose() throws {
        let dir = TemporaryDirectory()
        let syncs = SyncCounter()
        var options = LogOptions(durability: .none)
        options.storageFaults = syncs.faults
        let log = try Log.open(at: dir.path, options: options)
        // Creating the segment syncs its header once (Format.md §10: a
        // segment whose name survives a crash has its header).
        #expect(syncs.value == 1)
        try Fixtures.append(log, 0..<50, batch: 5)
        usleep(50_000)
        #expect(syncs.value == 1)
        try log.sync()
        #expect(syncs.value == 2)
        #expect(!log.batches.groupCommit.hasUnsyncedWrites)
        try Fixtures.append(log, 50..<60, batch: 5)
        try log.close()
        #expect(syncs.value >= 3)
    }

    @Test func alwaysSyncsBeforeAnAppendReturns() throws {
        let dir = TemporaryDirectory()
        let syncs = SyncCounter()
        var options = LogOptions(durability: .always)
        options.storageFaults = syncs.faults
        let log = try Log.open(at: dir.path, options: options)
        for i in 0..<5 {
            try log.append(Fixtures.event(i))
            #expect(!log.batches.groupCommit.hasUnsyncedWrites)
        }
        #expect(syncs.value >= 5)
        try log.close()
    }

    @Test func readOnlyOpenChangesNothing() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            try Fixtures.append(log, 0..<20, batch: 4)
            // A crash: no close; then a torn tail.
        }
        let segment = Fixtures.segments(dir)[0]
        let end = Fixtures.batches(in: segment).last.map { $0.offset + $0.length } ?? 0
        Damage.overwrite(segment, at: end, with: [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
        let before = dir.files().map { ($0, Damage.read(dir.sub($0))) }
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        #expect(reader.endPosition == 20)
        #expect(throws: EventLogError.self) { try reader.append(Fixtures.event(20)) }
        try reader.close()
        let after = dir.files().map { ($0, Damage.read(dir.sub($0))) }
        #expect(before.map(\.0) == after.map(\.0))
        #expect(zip(before, after).allSatisfy { $0.1 == $1.1 })
    }
}

/// The async façade runs blocking calls off the cooperative pool.
@Suite struct AsyncLogTests {
    @Test func asyncCallsRoundTrip() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        let range = try await log.async.append([Fixtures.event(0), Fixtures.event(1)])
        #expect(range == 0..<2)
        let result = try await log.async.append([Fixtures.event(2)], expecting: ["stream-2": .noStream])
        #expect(result.versions(of: "stream-2") == 0...0)
        #expect(try await log.async.events(from: 0).count == 3)
        #expect(try await log.async.event(at: 1).data == Fixtures.event(1).data)
        #expect(try await log.async.events(inStream: "stream-1").count == 1)
        try await log.async.commitCursor("c", position: 3)
        try await log.async.sync()
        // Many concurrent tasks, none blocking the pool on fsync.
        try await withThrowingTaskGroup(of: Range<UInt64>.self) { group in
            for i in 0..<32 { group.addTask { try await log.async.append([Fixtures.event(3 + i)]) } }
            var total = 0
            for try await r in group { total += r.count }
            #expect(total == 32)
        }
        #expect(log.endPosition == 35)
        await #expect(throws: EventLogError.self) { try await log.async.event(at: 99) }
        try await log.async.close()
    }
}
