import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Set by the SIGINT and SIGTERM handlers (an atomic store is async-signal-safe).
private let stopSignalled = Atomic<Bool>(false)

/// When a command that runs until stopped (`tail -f`) should end: on
/// SIGINT or SIGTERM, or once nobody reads its standard output any more.
///
/// The signal handlers only set a flag; the command checks it between
/// batches and while it waits (every `checkInterval`), so it always ends
/// at a point where what it printed and what it committed agree.
enum StopConditions {
    /// How long a wait sleeps between looks at the flag.
    static let checkIntervalMicroseconds: UInt32 = 10_000

    /// Replaces the default action of SIGINT and SIGTERM (ending the process
    /// at once) with setting the flag that `shouldStop` reads, and unblocks
    /// them: a blocked signal mask survives `exec`, and a parent that spawns
    /// from a thread blocking them (libdispatch's worker threads do) would
    /// otherwise leave the command deaf to them.
    static func install() {
        // Initialise the global here: a signal handler must not be the first to touch it.
        _ = stopSignalled.load(ordering: .relaxed)
        signal(SIGINT) { _ in stopSignalled.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stopSignalled.store(true, ordering: .relaxed) }
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
    }

    /// True after SIGINT or SIGTERM, or once standard output was closed by its reader.
    static var shouldStop: Bool {
        stopSignalled.load(ordering: .relaxed) || standardOutputIsClosed()
    }

    /// True after SIGINT or SIGTERM (standard output is not looked at: for
    /// commands that print only at the end, such as `relay` and `inbox`).
    static var signalled: Bool {
        stopSignalled.load(ordering: .relaxed)
    }

    /// Sleeps for `seconds`, waking early to stop; returns `shouldStop`.
    static func sleep(seconds: Double) -> Bool {
        var left = Int64(seconds * 1_000_000)
        while left > 0 {
            if shouldStop { return true }
            let step = min(left, Int64(checkIntervalMicroseconds))
            usleep(UInt32(step))
            left -= step
        }
        return shouldStop
    }

    /// True when standard output is a pipe or socket whose reader went away
    /// (`poll` reports POLLERR or POLLHUP), so a command waiting for new
    /// events notices before it has anything to write. The corresponding C
    /// function is `poll`, with no wait; EINTR counts as "not closed".
    static func standardOutputIsClosed() -> Bool {
        var descriptor = pollfd(fd: 1, events: 0, revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        return Int32(descriptor.revents) & (Int32(POLLERR) | Int32(POLLHUP)) != 0
    }
}
