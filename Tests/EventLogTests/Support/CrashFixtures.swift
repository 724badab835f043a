import Foundation
import Synchronization
@testable import EventLog

/// Tools of the crash tests: a fault plan that fails one chosen file
/// operation, and a log released as a dying process leaves it.
enum CrashFixtures {
    /// Releases `log` as a dying process would (nothing closed) and waits,
    /// up to `timeout`, until it is really gone: a background thread may
    /// hold its ordered log (`batches`, which holds the writer lock) for a
    /// moment and release it last. False when something still held it then.
    static func abandon(_ log: inout Log?, timeout: Duration = .seconds(10)) -> Bool {
        weak let old = log
        weak let oldBatches = log?.batches
        log = nil
        let deadline = ContinuousClock.now + timeout
        while old != nil || oldBatches != nil {
            guard ContinuousClock.now < deadline else { return false }
            usleep(1000)
        }
        return true
    }
}

/// A fault plan for "a failure at every step": once armed, it counts the
/// file operations and fails operation `failAt` (from 0) with EIO.
final class FailingStep: Sendable {
    let failAt: Int
    private let state = Mutex<(on: Bool, count: Int)>((false, 0))

    init(failAt: Int) { self.failAt = failAt }

    var faults: StorageFaults { StorageFaults { _, _ in self.decide() } }

    private func decide() -> StorageFault? {
        state.withLock { state -> StorageFault? in
            guard state.on else { return nil }
            state.count += 1
            return state.count - 1 == failAt ? .fail(errno: EIO) : nil
        }
    }

    func arm() { state.withLock { $0.on = true } }

    /// Counts one operation (armed or not); returns how many came before it.
    func count() -> Int {
        state.withLock { state in
            state.count += 1
            return state.count - 1
        }
    }

    /// Stops failing and counting; returns the operations counted while armed.
    func disarm() -> Int {
        state.withLock { state in
            state.on = false
            return state.count
        }
    }
}
