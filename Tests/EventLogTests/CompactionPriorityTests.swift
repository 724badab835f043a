import Foundation
import Synchronization
import Testing
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// A compaction pass runs on a thread of its own at a lower CPU priority
/// (`LowPriorityThread`), never on the caller's thread, whose priority it
/// leaves alone.
@Suite struct CompactionPriorityTests {
    static func niceness() -> Int32 {
        errno = 0
        return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    }

    @Test func aJobRunsOnAnotherThreadAtTheLowerPriorityAndTheCallerKeepsItsOwn() {
        let before = Self.niceness()
        let seen = Mutex<(niceness: Int32, thread: pthread_t)?>(nil)
        LowPriorityThread.run { seen.withLock { $0 = (Self.niceness(), pthread_self()) } }
        let job = seen.withLock { $0 }
        #expect(job?.niceness == max(before, LowPriorityThread.niceness))
        #expect(job.map { pthread_equal($0.thread, pthread_self()) == 0 } == true)
        #expect(Self.niceness() == before)
    }

    @Test func theScavengerWritesItsFilesFromTheLowPriorityThread() throws {
        let dir = TemporaryDirectory()
        // The niceness of every thread that wrote a rewritten segment (`.segment.tmp`).
        let writers = Mutex<[Int32]>([])
        var options = ScavengingTests.options()
        options.storageFaults = StorageFaults { operation, path in
            if operation == .write && path.hasSuffix(".segment.tmp") {
                let niceness = Self.niceness()
                writers.withLock { $0.append(niceness) }
            }
            return nil
        }
        let before = Self.niceness()
        let log = try Log.open(at: dir.path, options: options)
        defer { try? log.close() }
        for first in stride(from: 0, to: 600, by: 10) { try log.append((first..<(first + 10)).map(RetentionTests.event)) }
        for s in 0..<10 { _ = try log.deleteStream("order-\(s)") }
        let result = try log.compact()
        #expect(result.segmentsRewritten > 0)
        let seen = writers.withLock { $0 }
        #expect(!seen.isEmpty)
        #expect(seen.allSatisfy { $0 == max(before, LowPriorityThread.niceness) })
        #expect(Self.niceness() == before)
    }
}
