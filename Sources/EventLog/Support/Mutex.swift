#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `Synchronization.Mutex` with the same API, over a `pthread_mutex_t`.
/// Declared in this module, it shadows the imported type in every file of
/// the module (and in tests that import it with `@testable`), so every lock
/// of the library is one of these. Two reasons:
///
/// - **Contention on few cores.** On Linux the standard library's `Mutex`
///   spins in user space before it sleeps. Threads that spin for a lock
///   whose holder is not running take the CPU from it: eight appenders of
///   single durable events on two cores, the writer lock contended after
///   every group-commit sync, spent 43% of their time in its `_lockSlow`.
///   glibc's default mutex sleeps at once. On tmpfs, where a sync costs
///   nothing and the lock is all there is, C8 (eight such appenders, the
///   harness) went from 27k to 67k appends/s; on this machine's disk C8 and
///   every single-threaded phase (A1, R1, R2, R3) are unchanged (issue 15).
/// - **ThreadSanitizer.** The standard library's `Mutex` hands a contended
///   lock over inside the kernel (`FUTEX_LOCK_PI` / `FUTEX_UNLOCK_PI`); the
///   waiter returns from the system call without an instrumented atomic,
///   so TSan saw no happens-before edge between the holders and reported
///   every access the lock guards as a data race (issue 16: 36 warnings).
///   TSan intercepts `pthread_mutex_lock` and `pthread_mutex_unlock`, so
///   with this type it checks what matters: that every access to guarded
///   state happens under the lock.
///
/// The lock and the value live in allocations of their own (a
/// `pthread_mutex_t` must not move once initialised): one of each per
/// `Mutex`, made when it is.
///
/// Thread-safe. `withLock` blocks while another thread holds the lock.
struct Mutex<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    init(_ initialValue: consuming sending Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(lock)
        lock.deinitialize(count: 1)
        lock.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }

    /// `withLock`, except that a thread finding the lock held first yields
    /// its core and tries again, up to `tries` times, and only then sleeps
    /// on it: for a lock that many threads take for a few microseconds each
    /// on few cores, where being woken from a sleep costs more than the
    /// wait (the writer lock of appenders waiting for group commit,
    /// `BatchLog.writerLockYields`). A holder that is not running gets the
    /// core at each yield, which spinning without yielding would keep from it.
    borrowing func withLock<Result: ~Copyable, E: Error>(
        yieldingUpTo tries: Int, _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        var taken = false
        for _ in 0..<tries {
            if pthread_mutex_trylock(lock) == 0 {
                taken = true
                break
            }
            sched_yield()
        }
        if !taken { pthread_mutex_lock(lock) }
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }

    /// Runs `body` with the value if the lock is free now; nil otherwise.
    borrowing func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        guard pthread_mutex_trylock(lock) == 0 else { return nil }
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }
}
