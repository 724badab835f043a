import Synchronization
import class Foundation.NSCondition
import struct Foundation.Date

/// Wakes readers waiting for new events when the writer publishes a batch:
/// the append itself wakes them, nobody polls.
///
/// The writer's side costs one atomic load per batch when nobody waits.
/// Waiters check their condition under the lock after announcing
/// themselves, and the writer publishes before it looks for waiters, so a
/// wake-up is never lost. Thread-safe.
final class AppendNotifier: @unchecked Sendable {
    private let condition = NSCondition()
    private let waiters = Atomic<Int>(0)
    // Guarded by `condition`.
    private var continuations: [Int: CheckedContinuation<Void, Never>] = [:]
    private var nextID = 0

    /// Called by the writer after publishing.
    @inline(__always) func notify() {
        guard waiters.load(ordering: .sequentiallyConsistent) > 0 else { return }
        wakeAll()
    }

    /// Blocks until `ready()` holds or `deadline` passes; returns `ready()`.
    func wait(until ready: () -> Bool, deadline: Date?) -> Bool {
        if ready() { return true }
        waiters.add(1, ordering: .sequentiallyConsistent)
        defer { waiters.subtract(1, ordering: .sequentiallyConsistent) }
        condition.lock()
        defer { condition.unlock() }
        while !ready() {
            if let deadline {
                if !condition.wait(until: deadline) { return ready() }
            } else {
                condition.wait()
            }
        }
        return true
    }

    /// Suspends until `ready()` holds or the task is cancelled.
    func wait(until ready: @escaping @Sendable () -> Bool) async {
        while !ready() && !Task.isCancelled {
            waiters.add(1, ordering: .sequentiallyConsistent)
            let id = registerID()
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    condition.lock()
                    if ready() || Task.isCancelled {
                        condition.unlock()
                        c.resume()
                        return
                    }
                    continuations[id] = c
                    condition.unlock()
                }
            } onCancel: {
                condition.lock()
                let c = continuations.removeValue(forKey: id)
                condition.unlock()
                c?.resume()
            }
            waiters.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Suspends until `ready()` holds, `deadline` passes or the task is
    /// cancelled; returns `ready()`. Holds no thread while it waits (a
    /// sleeping child task stands for the deadline).
    func wait(until ready: @escaping @Sendable () -> Bool, deadline: Date) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(until: ready) }
            group.addTask {
                let seconds = deadline.timeIntervalSinceNow
                if seconds > 0 { try? await Task.sleep(for: .nanoseconds(Int64(min(seconds, 1e9) * 1e9))) }
            }
            _ = await group.next()
            group.cancelAll()
        }
        return ready()
    }

    /// Wakes every waiter (close, cancellation of a blocking poll).
    func wakeAll() {
        condition.lock()
        let waiting = continuations
        continuations.removeAll()
        condition.broadcast()
        condition.unlock()
        for (_, c) in waiting { c.resume() }
    }

    private func registerID() -> Int {
        condition.lock()
        defer { condition.unlock() }
        nextID += 1
        return nextID
    }
}
