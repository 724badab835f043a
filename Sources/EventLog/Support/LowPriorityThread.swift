#if canImport(Glibc)
import Glibc
#endif

/// Runs a long background job (a compaction pass) on a thread of its own
/// whose CPU priority is lowered to nice `niceness` (or stays lower, when
/// the caller's already is), and waits for it.
///
/// Why: a compaction pass keeps a core busy for seconds. At the default
/// priority the appends' own work waits behind it for scheduler slices on a
/// machine with few cores: the appending threads, and the kernel threads
/// their `fdatasync` depends on (the journal's commit, writeback). In the
/// harness's scavenge phase (2 cores) a synced append's p99 while a
/// compaction ran was about 10× its p99 alone at the default priority, and
/// about 2.5× at nice 10. With idle cores the job still runs at full speed:
/// nice only orders who runs first when cores are contended.
///
/// A thread of its own, because Linux's nice value belongs to a thread and
/// an unprivileged process cannot raise it back: a thread the job borrows
/// (the caller's, a Dispatch worker) must never be lowered.
///
/// Concurrency: `run` blocks its caller until the job has finished; what
/// the job wrote is visible to the caller afterwards (`pthread_join`).
enum LowPriorityThread {
    /// The job thread's nice value (0 is the default, 19 the lowest priority).
    static let niceness: Int32 = 10

    /// Runs `job` on a new thread at nice `niceness`, waits for it and
    /// returns what it returned. When no thread can be created (the
    /// process's thread limit), runs it on the calling thread instead, at
    /// the caller's priority.
    static func run<T>(_ job: @escaping @Sendable () -> T) -> T {
        let result = Handoff<T>()
        run { result.value = job() }
        // The job ran, on its thread (before `pthread_join` returned) or on this one.
        guard let value = result.value else { preconditionFailure("LowPriorityThread.run returned before its job ran") }
        return value
    }

    /// The job's result, written on its thread and read after the join.
    private final class Handoff<T>: @unchecked Sendable {
        var value: T?
    }

    /// `run(_:)` for a job with no result.
    static func run(_ job: @escaping @Sendable () -> Void) {
        let thread = OwnThread.start {
            // Linux: PRIO_PROCESS with 0 names the calling thread, which
            // starts with its creator's nice value: lowered, never raised. A
            // failure (a seccomp filter, say) only leaves the creator's.
            let which = __priority_which_t(PRIO_PROCESS.rawValue)
            errno = 0
            let inherited = getpriority(which, 0)
            if errno == 0 && inherited < LowPriorityThread.niceness {
                _ = setpriority(which, 0, LowPriorityThread.niceness)
            }
            job()
        }
        guard let thread else {
            job()
            return
        }
        pthread_join(thread, nil)
    }
}
