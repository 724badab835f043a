#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSystemCalls

/// A watch on a directory (Linux inotify): `wait` returns when a file in it
/// was written, created, renamed into it or removed, by any process.
///
/// This is how a read-only log learns of another process's appends without
/// polling: the writer appends with `pwrite`, which raises `IN_MODIFY` on the
/// segment file once the bytes are in the page cache; a new segment raises
/// `IN_CREATE`; files replaced by rename (`eventlog.start`, scavenged or
/// merged segments) raise `IN_MOVED_TO`. Writes through a shared mapping
/// raise nothing, and the log never writes through one. The watch is armed
/// from `open` on and stays armed: a change made while nobody waits is
/// queued, and the next `wait` returns at once.
///
/// The watch says only that something changed, not what; the caller looks
/// (a refresh). A second descriptor (an eventfd) lets `interrupt()` end a
/// wait from another thread (a cancelled subscription, a closing log).
///
/// Thread-safe; one thread at a time should `wait` (a second one may return
/// at once, without the events, which the first drained). `wait` blocks; the
/// descriptors are closed when the watch is released.
final class DirectoryWatch: Sendable {
    let path: String
    private let inotify: Int32
    private let wakeup: Int32

    private init(path: String, inotify: Int32, wakeup: Int32) {
        self.path = path
        self.inotify = inotify
        self.wakeup = wakeup
    }

    deinit {
        _ = close(inotify)
        _ = close(wakeup)
    }

    /// Watches `path` (a directory). The corresponding C functions are
    /// `inotify_init1`, `inotify_add_watch` and `eventfd`. Fails where the
    /// system has no inotify or no watch to spare (ENOSPC at
    /// `fs.inotify.max_user_watches`, EMFILE at `max_user_instances`).
    static func open(_ path: String) throws(IOError) -> DirectoryWatch {
        let inotify = eventlog_inotify_open()
        if inotify < 0 { throw IOError(operation: "inotify_init1", path: path, errno: errno) }
        if eventlog_inotify_watch_directory(inotify, path) < 0 {
            let failure = IOError(operation: "inotify_add_watch", path: path, errno: errno)
            _ = close(inotify)
            throw failure
        }
        let wakeup = eventlog_eventfd_open()
        if wakeup < 0 {
            let failure = IOError(operation: "eventfd", path: path, errno: errno)
            _ = close(inotify)
            throw failure
        }
        return DirectoryWatch(path: path, inotify: inotify, wakeup: wakeup)
    }

    /// What ended a `wait`.
    enum Outcome: Equatable, Sendable {
        /// Something in the directory changed (the queued events are drained).
        case changed
        /// `interrupt()` was called.
        case interrupted
        /// Nothing happened within the timeout.
        case timedOut
        /// The kernel removed the watch (the directory is gone): it will never fire again.
        case removed
    }

    /// Waits up to `milliseconds` (negative: no limit) for a change or an
    /// `interrupt()`, then drains what is queued. The corresponding C
    /// functions are `poll` and `read`; EINTR ends the wait early (as a
    /// change: the caller looks and waits again).
    func wait(milliseconds: Int32) throws(IOError) -> Outcome {
        let ready = eventlog_poll_two(inotify, wakeup, milliseconds)
        if ready < 0 {
            if errno == EINTR { return .changed }
            throw IOError(operation: "poll", path: path, errno: errno)
        }
        if ready == 0 { return .timedOut }
        var outcome = Outcome.changed
        if ready & 2 != 0 {
            if eventlog_eventfd_clear(wakeup) != 0 { throw IOError(operation: "read", path: path, errno: errno) }
            outcome = .interrupted
        }
        if ready & 1 != 0 {
            var removed: Int32 = 0
            if eventlog_inotify_drain(inotify, &removed) != 0 { throw IOError(operation: "read", path: path, errno: errno) }
            if removed != 0 { return .removed }
            outcome = .changed
        }
        return outcome
    }

    /// Ends the current (or the next) `wait` with `.interrupted`, from any
    /// thread. The corresponding C function is `write` (to the eventfd).
    func interrupt() {
        _ = eventlog_eventfd_signal(wakeup)
    }
}
