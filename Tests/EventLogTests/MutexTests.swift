import Foundation
import Synchronization
import Testing

@testable import EventLog

/// The library's `Mutex` (Sources/EventLog/Support/Mutex.swift): the lock
/// taken after yielding, as the writer lock is under group commit.
@Suite struct MutexTests {
    /// Threads taking the lock through `withLock(yieldingUpTo:_:)` never
    /// hold it together, whether they take it while yielding (200 tries),
    /// mostly end up sleeping on it (3), or sleep at once (0): a count of
    /// the threads inside never exceeds one, and every increment of a plain
    /// counter under the lock is there at the end.
    @Test(arguments: [0, 3, 200]) func threadsTakingItAfterYieldingNeverHoldItTogether(tries: Int) {
        let counter = Mutex<Int>(0)
        let inside = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        let threads = 6
        let perThread = 3000
        let group = DispatchGroup()
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        for _ in 0..<threads {
            group.enter()
            Thread {
                ready.signal()
                go.wait()
                for _ in 0..<perThread {
                    counter.withLock(yieldingUpTo: tries) { value in
                        if inside.add(1, ordering: .sequentiallyConsistent).newValue != 1 { overlaps.add(1, ordering: .relaxed) }
                        // Held a moment, so that the others find it held.
                        for _ in 0..<100 where inside.load(ordering: .relaxed) > 1 { overlaps.add(1, ordering: .relaxed) }
                        value += 1
                        inside.subtract(1, ordering: .sequentiallyConsistent)
                    }
                }
                group.leave()
            }.start()
        }
        for _ in 0..<threads { ready.wait() }
        for _ in 0..<threads { go.signal() }
        group.wait()
        let overlapping = overlaps.load(ordering: .relaxed)
        #expect(overlapping == 0)
        #expect(counter.withLock { $0 } == threads * perThread)
    }

    /// A thread whose tries run out while another holds the lock sleeps on
    /// it and gets it once it is let go, never before.
    @Test func aThreadWhoseTriesRunOutWaitsForTheHolder() {
        let lock = Mutex<Bool>(false)  // true once the holder is about to let go
        let holding = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let sawRelease = Atomic<Bool>(false)
        Thread {
            lock.withLock { released in
                holding.signal()
                usleep(100_000)
                released = true
            }
        }.start()
        holding.wait()
        Thread {
            lock.withLock(yieldingUpTo: 5) { released in sawRelease.store(released, ordering: .relaxed) }
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success)
        let released = sawRelease.load(ordering: .relaxed)
        #expect(released)
    }
}
