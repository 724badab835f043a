// Compiled only into ThreadSanitizer builds (scripts/test.sh passes
// `-Xswiftc -DEVENTLOG_TSAN` with `--sanitize=thread`); release and debug
// builds use `Synchronization.Mutex` and never see this file's type.
#if EVENTLOG_TSAN
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `Synchronization.Mutex` with the same API, over a `pthread_mutex_t`, so
/// that ThreadSanitizer sees the lock: declared in this module, it shadows
/// the imported type in every file of the module (and in tests that import
/// it with `@testable`).
///
/// Why: on Linux the standard library's `Mutex` hands a contended lock over
/// inside the kernel (`FUTEX_LOCK_PI` / `FUTEX_UNLOCK_PI`); the waiter
/// returns from the system call without an instrumented atomic, so TSan
/// sees no happens-before edge between the holders and reports every access
/// the lock guards as a data race (issue 16: 36 warnings, all on state read
/// and written only under a `Mutex`). TSan intercepts `pthread_mutex_lock`
/// and `pthread_mutex_unlock`, so with this type it checks what matters:
/// that every access to guarded state happens under the lock.
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

    /// Runs `body` with the value if the lock is free now; nil otherwise.
    borrowing func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        guard pthread_mutex_trylock(lock) == 0 else { return nil }
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }
}
#endif
