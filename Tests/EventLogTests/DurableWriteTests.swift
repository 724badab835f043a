import Foundation
import Synchronization
import Testing

@testable import EventLog

/// Issue 15, A3: under `.always`, an appender alone writes and syncs its
/// batch in one call (`FileHandle.writeDurably`: `pwritev2` with
/// `RWF_DSYNC`). A failure of that call is a failed sync (the writer
/// stops, nothing acknowledged is lost); where the file system lacks it the
/// writer falls back to a write and an `fdatasync`, once and for all.
@Suite struct DurableWriteTests {
    /// Counts what the seam asks about segment files, and injects `fault`
    /// into `operation` once armed (`times`: how many calls, nil: all).
    final class Plan: Sendable {
        let operation: StorageOperation
        let fault: StorageFault
        private let state = Mutex<(armed: Bool, left: Int?, asked: [StorageOperation: Int], injected: Int)>((false, nil, [:], 0))

        init(_ operation: StorageOperation, _ fault: StorageFault, times: Int? = nil) {
            self.operation = operation
            self.fault = fault
            state.withLock { $0.left = times }
        }

        func decide(_ op: StorageOperation, _ path: String) -> StorageFault? {
            guard path.hasSuffix(".segment") else { return nil }
            return state.withLock { state -> StorageFault? in
                guard state.armed else { return nil }
                state.asked[op, default: 0] += 1
                guard op == operation, state.left.map({ $0 > 0 }) ?? true else { return nil }
                state.left = state.left.map { $0 - 1 }
                state.injected += 1
                return fault
            }
        }

        var faults: StorageFaults { StorageFaults { [self] op, path in decide(op, path) } }
        func arm() { state.withLock { $0.armed = true } }
        func asked(_ op: StorageOperation) -> Int { state.withLock { $0.asked[op] ?? 0 } }
        var injected: Int { state.withLock { $0.injected } }
    }

    static func event(_ i: Int) -> NewEvent {
        NewEvent(stream: "s\(i % 7)", type: "T", data: Array("event \(i) ".utf8) + [UInt8](repeating: UInt8(i & 0xFF), count: 150))
    }

    /// `.always`, no zeroing thread (its syncs of the segment would be counted too).
    static func options(_ faults: StorageFaults?) -> LogOptions {
        var options = LogOptions(durability: .always)
        options.maintenanceInterval = nil
        options.preallocates = false
        options.storageFaults = faults
        return options
    }

    /// Each acknowledged event is in the log at its position.
    static func expectEvents(_ log: Log, _ acknowledged: [UInt64: Int], _ context: String) throws {
        for (position, i) in acknowledged {
            #expect(try log.event(at: position).data == event(i).data, "\(context): event \(position)")
        }
    }

    @Test func anAppenderAloneWritesDurablyInOneCall() throws {
        let dir = TemporaryDirectory()
        let plan = Plan(.durableWrite, .fail(errno: EIO), times: 0)
        let log = try Log.open(at: dir.path, options: Self.options(plan.faults))
        plan.arm()
        for i in 0..<20 { _ = try log.append([Self.event(i)]) }
        #expect(plan.asked(.durableWrite) == 20)
        #expect(plan.asked(.datasync) == 20, "each durable write asks for its sync's fault too")
        #expect(plan.asked(.write) == 20)
        try log.close()

        // Off (the test hook): a write, then an fdatasync.
        let off = Plan(.durableWrite, .fail(errno: EIO), times: 0)
        var options = Self.options(off.faults)
        options.writesDurably = false
        let again = try Log.open(at: dir.path, options: options)
        off.arm()
        for i in 20..<30 { _ = try again.append([Self.event(i)]) }
        #expect(off.asked(.durableWrite) == 0)
        #expect(off.asked(.datasync) == 10)
        try again.close()

        // Space not reserved ahead (no `fallocate`): a write may meet a full
        // disk, which must stay a failed write the writer survives, not a failed sync.
        let unreserved = Plan(.durableWrite, .fail(errno: EIO), times: 0)
        options = Self.options(unreserved.faults)
        options.reservesSpace = false
        let third = try Log.open(at: dir.path, options: options)
        unreserved.arm()
        for i in 30..<40 { _ = try third.append([Self.event(i)]) }
        #expect(unreserved.asked(.durableWrite) == 0)
        #expect(unreserved.asked(.datasync) == 10)
        try third.close()

        let reopened = try Log.open(at: dir.path, options: Self.options(nil))
        #expect(reopened.endPosition == 40)
        try Self.expectEvents(reopened, Dictionary(uniqueKeysWithValues: (0..<40).map { (UInt64($0), $0) }), "reopened")
        try reopened.close()
    }

    /// Concurrent appenders keep one `fdatasync` for a group: only an
    /// appender alone writes durably.
    @Test func concurrentAppendersStillShareASync() throws {
        let dir = TemporaryDirectory()
        let plan = Plan(.durableWrite, .fail(errno: EIO), times: 0)
        let log = try Log.open(at: dir.path, options: Self.options(plan.faults))
        plan.arm()
        let threads = (0..<4).map { t in
            BackgroundThread { for i in 0..<100 { _ = try log.append([Self.event(t * 100 + i)]) } }
        }
        for thread in threads { _ = try #require(thread.join(timeout: 120)).get() }
        #expect(log.endPosition == 400)
        // Every append was either a durable write or covered by a shared sync.
        let syncs = plan.asked(.datasync)
        #expect(syncs < 400, "no append shared a sync (\(syncs) syncs, \(plan.asked(.durableWrite)) durable writes)")
        try log.close()
    }

    /// A durable write that fails in any way stops the writer, as a failed
    /// `fdatasync` does: the append is not acknowledged, every later one
    /// fails, and after a power loss (any seed) the reopened log holds every
    /// acknowledged event and works again.
    @Test(arguments: [
        (StorageOperation.durableWrite, StorageFault.fail(errno: EIO)),
        (.durableWrite, .tornWrite(keepBytes: 40, errno: EIO)),
        (.durableWrite, .fail(errno: ENOSPC)),
        (.write, .fail(errno: EIO)),
        (.datasync, .fail(errno: EIO)),
    ])
    func aFailedDurableWriteStopsTheWriter(operation: StorageOperation, fault: StorageFault) throws {
        for seed in UInt64(0)..<12 {
            let context = "\(operation) \(fault), seed \(seed)"
            let dir = TemporaryDirectory()
            let plan = Plan(operation, fault)
            let simulator = try PowerLossSimulator(directory: dir.path, seed: seed) { op, path in plan.decide(op, path) }
            var acknowledged: [UInt64: Int] = [:]
            do {
                let log = try Log.open(at: dir.path, options: Self.options(simulator.faults))
                for i in 0..<10 { acknowledged[try log.append([Self.event(i)]).lowerBound] = i }
                plan.arm()
                do {
                    _ = try log.append([Self.event(10)])
                    Issue.record("\(context): an append whose durable write failed was acknowledged")
                } catch {
                    guard case .writerStopped = error as? EventLogError else { Issue.record("\(context): \(error)"); continue }
                }
                #expect(plan.injected == 1, "\(context)")
                #expect(throws: EventLogError.self, "\(context): an append after the failure") { _ = try log.append([Self.event(11)]) }
                #expect(throws: EventLogError.self, "\(context): a cursor commit after the failure") {
                    try log.commitCursor("c", position: 1)
                }
                #expect(throws: EventLogError.self, "\(context): close after the failure") { try log.close() }
            }
            let report = try simulator.powerLoss()
            let reopened = try Log.open(at: dir.path, options: Self.options(nil))
            try Self.expectEvents(reopened, acknowledged, "\(context), \(report)")
            #expect(reopened.endPosition >= 10 && reopened.endPosition <= 11, "\(context)")
            _ = try reopened.append([Self.event(12)])
            try reopened.close()
            #expect(try Log.verify(at: dir.path).isSound, "\(context)")
        }
    }

    /// Where `pwritev2(RWF_DSYNC)` is not supported (`EOPNOTSUPP`, `EINVAL`:
    /// nothing written), the writer writes and then syncs, and asks no more;
    /// what it acknowledges survives a power loss.
    @Test(arguments: [EOPNOTSUPP, EINVAL])
    func withoutDurableWritesTheWriterFallsBackForGood(errno: Int32) throws {
        for seed in UInt64(0)..<12 {
            let dir = TemporaryDirectory()
            let plan = Plan(.durableWrite, .fail(errno: errno))
            let simulator = try PowerLossSimulator(directory: dir.path, seed: seed) { op, path in plan.decide(op, path) }
            var acknowledged: [UInt64: Int] = [:]
            do {
                plan.arm()
                let log = try Log.open(at: dir.path, options: Self.options(simulator.faults))
                for i in 0..<20 { acknowledged[try log.append([Self.event(i)]).lowerBound] = i }
                #expect(plan.asked(.durableWrite) == 1, "asked again after it was found unsupported")
                #expect(plan.asked(.datasync) >= 20, "an append was acknowledged without a sync")
            }
            let report = try simulator.powerLoss()
            let reopened = try Log.open(at: dir.path, options: Self.options(nil))
            #expect(reopened.endPosition == 20, "seed \(seed), \(report)")
            try Self.expectEvents(reopened, acknowledged, "seed \(seed), \(report)")
            try reopened.close()
        }
    }

    /// Appends written durably survive a power loss (any seed), with no
    /// `fdatasync` of the segment at all.
    @Test func durablyWrittenAppendsSurviveAPowerLoss() throws {
        for seed in UInt64(0)..<12 {
            let dir = TemporaryDirectory()
            let plan = Plan(.durableWrite, .fail(errno: EIO), times: 0)
            let simulator = try PowerLossSimulator(directory: dir.path, seed: seed) { op, path in plan.decide(op, path) }
            var acknowledged: [UInt64: Int] = [:]
            do {
                let log = try Log.open(at: dir.path, options: Self.options(simulator.faults))
                plan.arm()
                for i in 0..<20 { acknowledged[try log.append([Self.event(i)]).lowerBound] = i }
                #expect(plan.asked(.durableWrite) == 20)
            }
            let report = try simulator.powerLoss()
            let reopened = try Log.open(at: dir.path, options: Self.options(nil))
            #expect(reopened.endPosition == 20, "seed \(seed), \(report)")
            try Self.expectEvents(reopened, acknowledged, "seed \(seed), \(report)")
            try reopened.close()
        }
    }
}
