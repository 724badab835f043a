import Dispatch
import Foundation
import Synchronization
import Testing

@testable import EventLog

/// `GroupCommit` alone, on a real file: the leader's gathering of appenders
/// in flight, the hand-over to the next leader, and that a sync covers only
/// the writes noted before it started. The fault seam counts the syncs and
/// can hold one (it is asked before each `fdatasync`).
@Suite struct GroupCommitTests {
    /// What the fault seam sees and does at each sync.
    final class SyncGate: Sendable {
        let syncs = Atomic<Int>(0)
        /// While set, a sync waits (inside the leader's `fdatasync` call).
        let hold = Atomic<Bool>(false)
        /// Set while a sync is held.
        let holding = Atomic<Bool>(false)
        /// The next sync fails with EIO.
        let failNext = Atomic<Bool>(false)
    }

    /// A file whose syncs go through a `SyncGate`.
    final class Disk: @unchecked Sendable {  // `dir` is only read
        let dir = TemporaryDirectory()
        let gate = SyncGate()
        let file: EventLog.FileHandle

        init() throws {
            let gate = self.gate
            let faults = StorageFaults { op, _ in
                guard op == .datasync else { return nil }
                gate.syncs.add(1, ordering: .sequentiallyConsistent)
                gate.holding.store(true, ordering: .sequentiallyConsistent)
                while gate.hold.load(ordering: .sequentiallyConsistent) { usleep(1000) }
                gate.holding.store(false, ordering: .sequentiallyConsistent)
                return gate.failNext.exchange(false, ordering: .sequentiallyConsistent) ? .fail(errno: EIO) : nil
            }
            file = try EventLog.FileHandle.open(dir.sub("segment"), create: .ownerOnly, faults: faults)
        }

        var count: Int { gate.syncs.load(ordering: .sequentiallyConsistent) }
    }

    /// Runs `body` on a thread of its own; `wait` returns its error, or
    /// "timed out" after `seconds`.
    final class Background: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let outcome = Mutex<String?>(nil)

        init(_ body: @escaping @Sendable () throws -> Void) {
            Thread { [self] in
                do { try body() } catch { outcome.withLock { $0 = "\(error)" } }
                done.signal()
            }.start()
        }

        /// nil: finished without an error.
        func wait(seconds: Double = 30) -> String? {
            guard done.wait(timeout: .now() + seconds) == .success else { return "timed out" }
            return outcome.withLock { $0 }
        }
    }

    static func waitUntil(_ condition: () -> Bool) {
        for _ in 0..<30_000 where !condition() { usleep(1000) }
    }

    /// A group commit on `disk` whose first sync (of a write up to 10, led
    /// by the returned appender) is running and held there; with `failing`,
    /// it fails once let go.
    static func heldSync(
        on disk: Disk, lookLimit: Duration? = nil, failing: Bool = false
    ) -> (commit: GroupCommit, leader: Background) {
        let commit = GroupCommit(what: "segment", gatherLimit: .seconds(20), lookLimit: lookLimit)
        commit.begin(unsyncedBytes: 0, file: disk.file)
        disk.gate.hold.store(true, ordering: .sequentiallyConsistent)
        disk.gate.failNext.store(failing, ordering: .sequentiallyConsistent)
        commit.noteWritten(10, file: disk.file)
        let leader = Background { try commit.waitDurable(upTo: 10) }
        waitUntil { disk.gate.holding.load(ordering: .sequentiallyConsistent) }
        return (commit, leader)
    }

    @Test func aLeaderWaitsForAnAppenderInFlightAndOneSyncCoversBoth() throws {
        let disk = try Disk()
        let commit = GroupCommit(what: "segment", gatherLimit: .seconds(20))
        commit.begin(unsyncedBytes: 0, file: disk.file)
        commit.enter()  // A
        commit.enter()  // B: in flight, not written yet
        commit.noteWritten(10, file: disk.file)
        let a = Background { try commit.waitDurable(upTo: 10) }
        usleep(100_000)
        // A leads but gathers: B has not written.
        #expect(disk.count == 0)
        commit.noteWritten(20, file: disk.file)  // B writes
        #expect(a.wait() == nil)
        #expect(disk.count == 1)
        #expect(commit.durableSequence == 20)  // the one sync covered B's write too
        try commit.waitDurable(upTo: 20)  // B: no second sync
        #expect(disk.count == 1)
        commit.leave()
        commit.leave()
    }

    @Test func anAppenderLeavingWithoutWritingEndsTheGathering() throws {
        let disk = try Disk()
        let commit = GroupCommit(what: "segment", gatherLimit: .seconds(20))
        commit.begin(unsyncedBytes: 0, file: disk.file)
        commit.enter()
        commit.enter()
        commit.noteWritten(10, file: disk.file)
        let started = ContinuousClock.now
        let a = Background { try commit.waitDurable(upTo: 10) }
        usleep(50_000)
        commit.leave()  // B fails before writing, say
        #expect(a.wait(seconds: 10) == nil)
        // Well before the 20 s limit: the leader saw B leave.
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(disk.count == 1)
        commit.leave()
    }

    /// Gatherings one after another: each is ended by its own second
    /// appender's write, and nothing of the one before (its appenders'
    /// `passedWriter` and `leave` after the write that ended it) ends the
    /// next one early.
    @Test func eachGatheringOfSeveralInARowWaitsForItsOwnAppender() throws {
        let disk = try Disk()
        let commit = GroupCommit(what: "segment", gatherLimit: .seconds(20))
        commit.begin(unsyncedBytes: 0, file: disk.file)
        for (first, second) in [(UInt64(10), UInt64(20)), (30, 40), (50, 60)] {
            let syncsBefore = disk.count
            commit.enter()  // A
            commit.enter()  // B: in flight, not written yet
            commit.noteWritten(first, file: disk.file)
            commit.passedWriter()
            let a = Background { try commit.waitDurable(upTo: first) }
            usleep(100_000)
            // A leads and gathers for B (nothing left from the round before ended it).
            #expect(disk.count == syncsBefore)
            commit.noteWritten(second, file: disk.file)  // B writes: the gathering ends
            commit.passedWriter()
            #expect(a.wait() == nil)
            #expect(disk.count == syncsBefore + 1)
            #expect(commit.durableSequence == second)
            commit.leave()
            commit.leave()
        }
    }

    /// One appender in flight that is not writing (covered by the last sync,
    /// on its way back) is not waited for: the sync starts at once.
    @Test func aLoneAppenderOnItsWayBackIsNotWaitedFor() throws {
        let disk = try Disk()
        let commit = GroupCommit(what: "segment", gatherLimit: .seconds(20))
        commit.begin(unsyncedBytes: 0, file: disk.file)
        commit.enter()  // A writes, and a sync covers it; A has not left yet
        commit.noteWritten(10, file: disk.file)
        commit.passedWriter()
        try commit.syncNow()
        #expect(disk.count == 1)
        commit.enter()  // B writes and waits
        commit.noteWritten(20, file: disk.file)
        commit.passedWriter()
        let started = ContinuousClock.now
        let b = Background { try commit.waitDurable(upTo: 20) }
        #expect(b.wait(seconds: 10) == nil)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(disk.count == 2)
        commit.leave()
        commit.leave()
    }

    /// A write noted while a sync runs is not made durable by it: its
    /// appender waits, is handed the lead, and a second sync covers it.
    @Test func aWriteDuringASyncWaitsForTheNextOne() throws {
        let disk = try Disk()
        let (commit, a) = Self.heldSync(on: disk)
        #expect(disk.count == 1)
        commit.noteWritten(20, file: disk.file)  // during the sync
        let b = Background { try commit.waitDurable(upTo: 20) }
        let c = Background { try commit.waitDurable(upTo: 20) }
        usleep(50_000)
        disk.gate.hold.store(false, ordering: .sequentiallyConsistent)
        #expect(a.wait() == nil)
        #expect(b.wait() == nil)
        #expect(c.wait() == nil)
        // B's and C's write came after the first sync began: a second one covered them (one for both).
        #expect(disk.count == 2)
        #expect(commit.durableSequence == 20)
    }

    /// A failed sync stops the group commit: its waiters and every later
    /// one get the failure, and no later sync is tried.
    @Test func aFailedSyncWakesEveryWaiterWithTheFailure() throws {
        let disk = try Disk()
        let (commit, a) = Self.heldSync(on: disk, failing: true)
        commit.noteWritten(20, file: disk.file)
        let waiters = (0..<3).map { _ in Background { try commit.waitDurable(upTo: 20) } }
        usleep(50_000)
        disk.gate.hold.store(false, ordering: .sequentiallyConsistent)
        #expect(a.wait()?.contains("stopped") == true)
        for waiter in waiters { #expect(waiter.wait()?.contains("stopped") == true) }
        #expect(throws: EventLogError.self) { try commit.waitDurable(upTo: 20) }
        #expect(disk.count == 1)
        #expect(commit.durableSequence == 0)
    }

    /// Waiters that look for the end of a running sync (`awaitRunningSync`,
    /// here for up to 20 s, so they surely are looking when it ends): those
    /// it covers return once it is done, and not before; one it does not
    /// cover leads the next sync.
    @Test func waitersLookingForARunningSyncReturnOnlyOnceItCoversThem() throws {
        let disk = try Disk()
        let (commit, a) = Self.heldSync(on: disk, lookLimit: .seconds(20))
        let covered = (0..<3).map { _ in Background { try commit.waitDurable(upTo: 10) } }
        commit.noteWritten(20, file: disk.file)  // during the sync
        let late = Background { try commit.waitDurable(upTo: 20) }
        usleep(50_000)
        #expect(commit.durableSequence == 0)  // nobody returned early: the sync is still held
        #expect(covered[0].wait(seconds: 0.01) == "timed out")
        disk.gate.hold.store(false, ordering: .sequentiallyConsistent)
        #expect(a.wait() == nil)
        for waiter in covered { #expect(waiter.wait() == nil) }
        #expect(late.wait() == nil)
        #expect(disk.count == 2)  // the late write needed a sync of its own
        #expect(commit.durableSequence == 20)
    }

    /// A sync that fails while waiters look for its end: they get the
    /// failure (they do not take the end of the sync for durability).
    @Test func waitersLookingForARunningSyncGetItsFailure() throws {
        let disk = try Disk()
        let (commit, a) = Self.heldSync(on: disk, lookLimit: .seconds(20), failing: true)
        let lookers = (0..<3).map { _ in Background { try commit.waitDurable(upTo: 10) } }
        usleep(50_000)
        disk.gate.hold.store(false, ordering: .sequentiallyConsistent)
        #expect(a.wait()?.contains("stopped") == true)
        for looker in lookers { #expect(looker.wait()?.contains("stopped") == true) }
        #expect(disk.count == 1)
        #expect(commit.durableSequence == 0)
    }
}
