import Logging
import Synchronization
import struct Foundation.Date

/// How a read-only log waits for another process's appends: a watch on the
/// log directory (`DirectoryWatch`, inotify) wakes a waiter as soon as the
/// writer's `pwrite` of a batch returns, and the waiter then refreshes
/// (`Consumers.refreshFromDisk`). No 50 ms poll.
///
/// - One waiting thread at a time holds the watch (`watching`): it refreshes
///   (after the watch is armed, so nothing appended before it is missed),
///   waits on the watch, and refreshes again. Every other waiter waits on
///   the log's `AppendNotifier`, which that refresh wakes; when the holder
///   leaves, it wakes them so one of them takes the watch over.
/// - A safety net: the holder refreshes at least every
///   `safetyPollMilliseconds` even when the watch stays silent (a missed
///   notification cannot leave a reader behind for longer).
/// - Where no watch can be had (no inotify, or no watch to spare), or the
///   kernel drops it (the directory was removed), it falls back to refreshing
///   every `fallbackPollMilliseconds`, as `tail -f` did before.
///
/// Visibility: a reader in another process sees a batch once the writer's
/// `pwrite` of it returned (refresh reads the page cache; a batch not yet
/// whole is left for the next refresh, which the rest of its write wakes);
/// it cannot know whether that batch is synced yet, whatever the writer's
/// durability. A wake-up is never consumed without a refresh after it.
///
/// Thread-safe. `wait` blocks; tasks wait through `AsyncWaitWatcher`, one thread for all of them.
final class AppendWatch: Sendable {
    /// The longest a caught-up waiter goes without refreshing while the watch stands.
    static let safetyPollMilliseconds = 1000
    /// How often a waiter refreshes when there is no watch.
    static let fallbackPollMilliseconds = 50

    private enum State {
        case unarmed
        case armed(DirectoryWatch)
        case unavailable
    }

    let directory: String
    private let state = Mutex<State>(.unarmed)
    /// True while a waiter holds the watch.
    private let watching = Atomic<Bool>(false)
    /// Test hook: never arm a watch (the fallback poll only).
    let disabled: Bool
    /// `LogOptions.logger`.
    let logger: Logger

    init(directory: String, disabled: Bool = false, logger: Logger = Logger(label: "EventLog")) {
        self.directory = directory
        self.disabled = disabled
        self.logger = logger
    }

    /// True once a watch is armed (the first wait arms it), false when none could be.
    var isArmed: Bool {
        state.withLock { if case .armed = $0 { return true } else { return false } }
    }

    /// The watch, armed on first use; nil when there is none.
    private func armedWatch() -> DirectoryWatch? {
        state.withLock { state -> DirectoryWatch? in
            switch state {
            case .armed(let watch): return watch
            case .unavailable: return nil
            case .unarmed:
                guard !disabled else {
                    state = .unavailable
                    return nil
                }
                do {
                    let watch = try DirectoryWatch.open(directory)
                    state = .armed(watch)
                    return watch
                } catch {
                    logger.warning(
                        "cannot watch the log directory; a read-only log looks for appends every \(Self.fallbackPollMilliseconds) ms",
                        metadata: ["error": "\(error)"])
                    state = .unavailable
                    return nil
                }
            }
        }
    }

    /// The log closed: ends a wait, and lets the watch go (its descriptors
    /// close once the waiter holding it, if any, returns). No watch is armed after.
    func close() {
        let released = state.withLock { state -> DirectoryWatch? in
            defer { state = .unavailable }
            if case .armed(let watch) = state { return watch }
            return nil
        }
        released?.interrupt()
    }

    /// Ends the wait of the waiter holding the watch (it looks at its
    /// condition again): a cancelled subscription, a closing log.
    func interrupt() {
        if case .armed(let watch) = state.withLock({ $0 }) { watch.interrupt() }
    }

    /// Blocks until `ready()` holds or `deadline` passes, calling `refresh`
    /// after every change the watch reports (and at least every
    /// `safetyPollMilliseconds`); returns `ready()`. `ready` should also
    /// hold once the log is closed or the waiter cancelled (which calls
    /// `interrupt()` and wakes `notifier`).
    func wait(
        until ready: () -> Bool, deadline: Date?, notifier: AppendNotifier, refresh: () throws(EventLogError) -> Void
    ) throws(EventLogError) -> Bool {
        while true {
            if ready() { return true }
            let now = Date()
            if let deadline, now >= deadline { return false }
            if watching.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
                defer {
                    watching.store(false, ordering: .releasing)
                    notifier.wakeAll()
                }
                var watch = armedWatch()
                while true {
                    // After arming, what was appended before the watch stood is found here;
                    // after every wake, what woke it (a drained change is never left unread).
                    try refresh()
                    if ready() { return true }
                    let now = Date()
                    if let deadline, now >= deadline { return false }
                    let slice = watch == nil ? Self.fallbackPollMilliseconds : Self.safetyPollMilliseconds
                    let milliseconds = Self.milliseconds(until: deadline, from: now, atMost: slice)
                    if let armed = watch {
                        let outcome: DirectoryWatch.Outcome
                        do { outcome = try armed.wait(milliseconds: milliseconds) } catch { throw .io(error) }
                        if outcome == .removed {
                            state.withLock { $0 = .unavailable }
                            watch = nil
                        }
                    } else {
                        _ = notifier.wait(until: ready, deadline: now.addingTimeInterval(Double(milliseconds) / 1000))
                    }
                }
            } else {
                let limit = now.addingTimeInterval(Double(Self.safetyPollMilliseconds) / 1000)
                _ = notifier.wait(
                    until: { ready() || !self.watching.load(ordering: .acquiring) },
                    deadline: deadline.map { min($0, limit) } ?? limit)
            }
        }
    }

    private static func milliseconds(until deadline: Date?, from now: Date, atMost limit: Int) -> Int32 {
        guard let deadline else { return Int32(limit) }
        let remaining = deadline.timeIntervalSince(now) * 1000
        return Int32(max(1, min(Double(limit), remaining.rounded(.up))))
    }
}
