import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Storage faults injected through the I/O seam: a full disk, a failed
/// fsync, a torn write.
@Suite struct FaultInjectionTests {
    /// A switchable fault plan: a fault per operation on segment files.
    final class Plan: Sendable {
        let fault = Mutex<[StorageOperation: StorageFault]>([:])
        var faults: StorageFaults {
            StorageFaults { [self] op, path in
                guard path.hasSuffix(".segment") else { return nil }
                return self.fault.withLock { $0[op] }
            }
        }
        func set(_ op: StorageOperation, _ fault: StorageFault) { self.fault.withLock { $0[op] = fault } }
        func clear() { fault.withLock { $0 = [:] } }
    }

    func open(_ dir: TemporaryDirectory, _ plan: Plan, durability: Durability) throws -> Log {
        var options = LogOptions(durability: durability)
        options.storageFaults = plan.faults
        return try Log.open(at: dir.path, options: options)
    }

    @Test func diskFullFailsTheAppendThenAppendsWorkAgain() throws {
        let dir = TemporaryDirectory()
        let plan = Plan()
        let log = try open(dir, plan, durability: .always)
        try Fixtures.append(log, 0..<20, batch: 5)
        plan.set(.write, .tornWrite(keepBytes: 100, errno: ENOSPC))
        do {
            try log.append((20..<25).map { Fixtures.event($0) })
            Issue.record("append succeeded on a full disk")
        } catch let error as EventLogError {
            guard case .io(let io) = error else { Issue.record("unexpected \(error)"); return }
            #expect(io.isDiskFull)
        }
        #expect(log.endPosition == 20)
        #expect(try Fixtures.expectContent(log, count: 20))
        plan.clear()
        try Fixtures.append(log, 20..<30, batch: 5)
        #expect(try Fixtures.expectContent(log, count: 30))
        try log.close()
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(try Fixtures.expectContent(reopened, count: 30))
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func failedSyncStopsTheWriterUntilReopened() throws {
        let dir = TemporaryDirectory()
        let plan = Plan()
        let log = try open(dir, plan, durability: .always)
        try Fixtures.append(log, 0..<10, batch: 5)
        plan.set(.datasync, .fail(errno: EIO))
        #expect(throws: EventLogError.self) { try log.append(Fixtures.event(10)) }
        plan.clear()
        // Never retried as if nothing happened: the writer stays stopped.
        do {
            try log.append(Fixtures.event(11))
            Issue.record("append accepted after a failed fsync")
        } catch let error as EventLogError {
            guard case .writerStopped = error else { Issue.record("unexpected \(error)"); return }
        }
        #expect(throws: EventLogError.self) { try log.close() }
        let reopened = try open(dir, plan, durability: .always)
        // What was acknowledged is there; the unacknowledged event may or may not be.
        #expect(reopened.endPosition >= 10)
        let events = try reopened.events(from: 0)
        for (i, e) in events.prefix(10).enumerated() { #expect(e.data == Fixtures.event(i).data) }
        try Fixtures.append(reopened, Int(reopened.endPosition)..<Int(reopened.endPosition) + 5, batch: 5)
        try reopened.close()
    }

    /// Writeback is started off the append path (`WritebackQueue`): when it
    /// fails, the writer stops from there, and the next append says why.
    /// Nothing acknowledged before is lost.
    @Test func failedWritebackStopsTheWriter() throws {
        let dir = TemporaryDirectory()
        let plan = Plan()
        let log = try open(dir, plan, durability: .none)
        plan.set(.writeback, .fail(errno: EIO))
        // 2 MiB of events: writeback is started every MiB written.
        let payload = [UInt8](repeating: 0x61, count: 4096)
        var acknowledged = 0
        var stopped: String?
        let deadline = ContinuousClock.now + .seconds(10)
        while stopped == nil && ContinuousClock.now < deadline {
            do {
                try log.append([NewEvent(stream: "s", type: "T", data: payload)])
                acknowledged += 1
            } catch let error as EventLogError {
                guard case .writerStopped(let reason) = error else { Issue.record("unexpected \(error)"); return }
                stopped = reason
            }
            if acknowledged >= 512 && stopped == nil { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(stopped?.contains("sync_file_range") == true)
        // The first writeback is started once 1 MiB is written: ~250 of these events.
        #expect(acknowledged >= 200)
        plan.clear()
        #expect(throws: EventLogError.self) { try log.close() }
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(reopened.endPosition == UInt64(acknowledged))
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A failed write's bytes are zeroed again at once (Format.md §11), so
    /// nothing of it is left for recovery to judge.
    @Test func aTornWriteIsZeroedAgain() throws {
        let dir = TemporaryDirectory()
        let plan = Plan()
        do {
            let log = try open(dir, plan, durability: .none)
            try Fixtures.append(log, 0..<12, batch: 4)
            plan.set(.write, .tornWrite(keepBytes: 70, errno: EIO))
            #expect(throws: EventLogError.self) { try log.append((12..<16).map { Fixtures.event($0) }) }
            plan.clear()
            try Fixtures.append(log, 12..<16, batch: 4)  // the writer goes on
            _ = consume log
        }
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(reopened.recovery.tailCut == nil)
        #expect(try Fixtures.expectContent(reopened, count: 16))
        try reopened.close()
    }

    /// The process dies between a torn write and its clean-up (here: the
    /// clean-up fails, which also stops the writer): the next open cuts it.
    @Test func tornWriteThenCrashIsCutOnOpen() throws {
        let dir = TemporaryDirectory()
        let plan = Plan()
        do {
            let log = try open(dir, plan, durability: .none)
            try Fixtures.append(log, 0..<12, batch: 4)
            plan.set(.write, .tornWrite(keepBytes: 70, errno: EIO))
            plan.set(.allocate, .fail(errno: EIO))
            #expect(throws: EventLogError.self) { try log.append((12..<16).map { Fixtures.event($0) }) }
            plan.clear()
            // The clean-up failed: what the file holds is unknown, the writer stopped.
            #expect(throws: EventLogError.self) { try log.append(Fixtures.event(12)) }
            // The process dies here: no close.
        }
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(reopened.endPosition == 12)
        #expect(reopened.recovery.tailCut != nil)
        #expect(try Fixtures.expectContent(reopened, count: 12))
        try reopened.close()
    }

    @Test func failedRollLeavesTheLogUsable() throws {
        let dir = TemporaryDirectory()
        let plan = Plan()
        var options = LogOptions(durability: .none)
        options.segmentBytes = 4096
        options.storageFaults = StorageFaults { op, path in
            op == .open && path.hasSuffix(".segment") && !plan.fault.withLock({ $0.isEmpty }) ? .fail(errno: ENOSPC) : nil
        }
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<10, batch: 10, size: 120)
        plan.set(.open, .fail(errno: ENOSPC))
        // Append until a roll is needed: that append fails, and nothing of it is visible.
        var next = 10
        var failed = false
        while next < 200 && !failed {
            do {
                try Fixtures.append(log, next..<(next + 10), batch: 10, size: 120)
                next += 10
            } catch {
                failed = true
            }
        }
        #expect(failed)
        #expect(log.endPosition == UInt64(next))
        plan.clear()
        try Fixtures.append(log, next..<(next + 30), batch: 10, size: 120)
        #expect(try Fixtures.expectContent(log, count: next + 30))
        try log.close()
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(try Fixtures.expectContent(reopened, count: next + 30))
        try reopened.close()
    }
}
