import Synchronization
import class Foundation.Thread

/// How a read-only log's tasks wait for another process's appends without
/// a thread each: while any task waits, one thread of the log's watches the
/// log directory (`Consumers.waitForChange`, the blocking wait on
/// `AppendWatch`) and refreshes on each change; the refresh publishes what
/// it found and wakes the tasks, which wait on the log's `AppendNotifier`
/// and hold no thread. The thread ends once no task waits or the log closes.
///
/// So a read-only log's async waits cost one thread in all, whatever their
/// number (a writable log's cost none: its own appends wake them).
///
/// A refresh that fails ends the thread and is thrown to the tasks waiting
/// then (`failure`); the next wait starts a new thread, which tries again.
/// Thread-safe.
final class AsyncWaitWatcher: Sendable {
    private struct State {
        var waiters = 0
        var running = false
        var failure: EventLogError?
        /// Bumped by each failure, so a waiter throws only one that happened while it waited.
        var failures: UInt64 = 0
        /// Threads started so far (tests).
        var started = 0
    }
    private let state = Mutex(State())

    /// A task starts waiting: starts the thread when none runs. Returns the
    /// failure count to compare with `failure(since:)`.
    func enter(_ consumers: Consumers) -> UInt64 {
        let (start, failures) = state.withLock { s -> (Bool, UInt64) in
            s.waiters += 1
            if s.running { return (false, s.failures) }
            s.running = true
            s.started += 1
            s.failure = nil
            return (true, s.failures)
        }
        if start {
            let thread = Thread { [self] in watch(consumers) }
            thread.name = "EventLog.watch"
            thread.start()
        }
        return failures
    }

    /// A task stops waiting; the last one lets the thread end.
    func leave(_ consumers: Consumers) {
        let last = state.withLock { s -> Bool in
            s.waiters -= 1
            return s.waiters == 0
        }
        if last { consumers.wakeWaiters() }
    }

    /// The refresh failure that ended the thread after `count` failures, if any.
    func failure(since count: UInt64) -> EventLogError? {
        state.withLock { $0.failures != count ? $0.failure : nil }
    }

    private var hasWaiters: Bool { state.withLock { $0.waiters > 0 } }

    /// Tasks waiting now, and the threads started so far (tests).
    var counts: (waiters: Int, threadsStarted: Int) { state.withLock { ($0.waiters, $0.started) } }

    private func watch(_ consumers: Consumers) {
        while true {
            let go = state.withLock { s -> Bool in
                if s.waiters == 0 || consumers.isClosed {
                    s.running = false
                    return false
                }
                return true
            }
            guard go else { return }
            let seen = consumers.endPosition
            do {
                _ = try consumers.waitForChange(
                    until: { consumers.isClosed || !self.hasWaiters || consumers.endPosition > seen }, deadline: nil)
            } catch {
                state.withLock { s in
                    s.failure = error
                    s.failures += 1
                    s.running = false
                }
                consumers.notifier.wakeAll()
                return
            }
        }
    }
}
