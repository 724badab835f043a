import Dispatch
import class Foundation.NSCondition
import struct Foundation.Date
import Logging
import Metrics
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Shares one `fdatasync` among concurrent appenders (group commit), and
/// remembers a failed sync for good.
///
/// The writer notes each write (`noteWritten`) with a sequence number that
/// grows with every byte written. An appender that needs durability calls
/// `waitDurable(upTo:)`: if no sync is running it becomes the leader, syncs
/// the active segment outside every lock, and wakes all whose writes that
/// sync covered; otherwise it waits for the running sync and, if its write
/// came too late for it, leads the next one.
///
/// Before it syncs, a leader gathers: appenders between `enter()` and
/// `leave()` that have not written since the last sync started (woken by
/// it and not yet back, or writing right now) usually write soon, so the
/// leader waits for them and one sync covers them all. Without it,
/// appenders split into two groups that alternate: each sync covers about
/// half of them, and each append waits for the sync running when it wrote
/// and then for a whole one more. A single such appender is waited for
/// only while it is writing (`worthGathering`). The gathering leader
/// looks, yielding its core between looks, until the last of them wrote
/// or left, or until the next write is slower to come than the mean time
/// per append this sync would give so far (the last sync's duration plus
/// the gathering, divided by the writes gathered), and after one sync's
/// duration at most (`gatherRange`). It looks rather than sleeps: woken by
/// the last appender, it started the sync some 15 µs after that one's
/// write on this machine, and the appenders it waits for get its core at
/// each look (eight single-event appenders: 51k appends/s sleeping, 60k
/// looking).
///
/// Waiters sleep on semaphores of their own (`Waiter`): a finished sync
/// wakes those it covered and one more to lead the next sync, after it
/// let go of the lock (so that appenders writing meanwhile do not queue
/// for it behind the wake-ups). (A shared condition variable woke every
/// waiter at every change, and each then queued for its lock, only to
/// find most of them had to wait on.) Waiters (up to `maxLookers`) first
/// look for the end of the running sync instead, yielding their core
/// between looks (`awaitRunningSync`), for up to twice the last sync's
/// duration: on a machine where waking a sleeping thread takes tens of
/// microseconds, they go on as soon as the sync is done, without being
/// woken. The cost: their cores stay busy while they look (other threads
/// that want them get them at each look).
///
/// A segment is always synced before it is sealed (under the writer lock),
/// so syncing the active segment covers every earlier write.
///
/// Thread-safe. `waitDurable` and `syncNow` block on the disk.
final class GroupCommit: @unchecked Sendable {
    /// The longest a leader gathers: the last sync's duration, clamped to
    /// this range (waiting up to one sync at most doubles an append's
    /// latency, and only when an appender in flight is stalled).
    static let gatherRange: ClosedRange<Duration> = .microseconds(50) ... .milliseconds(2)
    /// The most waiters that look for the end of a running sync at once
    /// (`awaitRunningSync`); the others sleep until it wakes them. Eight
    /// single-event appenders on two cores here: 41k appends/s with eight
    /// lookers, 30k with one, 29–31k when every waiter slept; again once
    /// the gathering leader looked too (scratch driver, 6 interleaved runs):
    /// 48.9k with eight, 42.2k with four, 39.8k with two.
    static let maxLookers = 8

    private let condition = NSCondition()
    /// An appender waiting for a sync: its semaphore is signalled once, by
    /// whoever removes it from `waiters`.
    private final class Waiter {
        let semaphore = DispatchSemaphore(value: 0)
        var sequence: UInt64 = 0
    }
    /// Waiting for a sync, in arrival order, and idle waiters kept for
    /// reuse (both guarded by `condition`).
    private var waiters: [Waiter] = []
    private var idleWaiters: [Waiter] = []
    /// A fixed gather limit instead of the last sync's duration (tests).
    private let fixedGatherLimit: Duration?
    /// A fixed limit on how long a waiter looks for a running sync's end
    /// instead of twice the last sync's duration (tests).
    private let fixedLookLimit: Duration?
    /// Where a failed or slow sync is reported, and what it syncs ("segment", "cursor journal").
    private let logger: Logger
    private let what: String
    private let slowSyncThreshold: Duration
    /// `eventlog_sync_duration` and `eventlog_group_commit_writes` (README, "Metrics").
    private let syncDuration: Metrics.Timer
    private let writesPerSync: Recorder

    init(
        what: String, logger: Logger = Logger(label: "EventLog"), slowSyncThreshold: Duration = .seconds(1),
        dimensions: [(String, String)] = [], metrics: any MetricsFactory = MetricsSystem.factory,
        gatherLimit: Duration? = nil, lookLimit: Duration? = nil
    ) {
        self.what = what
        self.fixedGatherLimit = gatherLimit
        self.fixedLookLimit = lookLimit
        self.logger = logger
        self.slowSyncThreshold = slowSyncThreshold
        syncDuration = Metrics.Timer(label: "eventlog_sync_duration", dimensions: dimensions + [("file", what)], factory: metrics)
        writesPerSync = Recorder(label: "eventlog_group_commit_writes", dimensions: dimensions + [("file", what)], factory: metrics)
    }

    /// Appenders between `enter()` and `leave()`: those a leader gathers for.
    private let inFlight = Atomic<Int>(0)
    /// Appenders between `enter()` and `passedWriter()`: writing right now.
    private let arriving = Atomic<Int>(0)
    /// When the last sync was led (`ContinuousClock` nanoseconds since the
    /// group commit was made; 0: none yet): background copies yield to
    /// appends that sync (`syncedWithin`).
    private let lastSyncLed = Atomic<Int64>(0)
    private let born = ContinuousClock.now

    /// True when a sync was led within the last `span`: appends that wait
    /// for their syncs are under way, and a background copy (scavenging, a
    /// merge) paces its writes (`PacedFileWriter`). A `sync()` that finds
    /// everything durable leads none.
    func syncedWithin(_ span: Duration) -> Bool {
        let last = lastSyncLed.load(ordering: .relaxed)
        guard last > 0 else { return false }
        return (ContinuousClock.now - born).wholeNanoseconds - last <= span.wholeNanoseconds
    }
    /// Writes noted since the last sync started (changed under `condition`;
    /// read by the gathering leader without it).
    private let writesSinceSync = Atomic<Int>(0)
    /// How long the last sync took (guarded by `condition`): the gather limit.
    private var lastSyncDuration: Duration = .microseconds(100)
    // All guarded by `condition`.
    private var written: UInt64 = 0
    private var durable: UInt64 = 0 {
        didSet { durableNow.store(durable, ordering: .releasing) }
    }
    private var syncing = false {
        didSet { syncRunning.store(syncing, ordering: .releasing) }
    }
    /// `durable` and `syncing` as `awaitRunningSync` looks at them without
    /// the lock (stored under it, after every change; the snapshot that a
    /// sync publishes is published before its `durable` is stored).
    private let durableNow = Atomic<UInt64>(0)
    private let syncRunning = Atomic<Bool>(false)
    /// Waiters looking for the end of the running sync (`awaitRunningSync`), at most `maxLookers`.
    private let lookers = Atomic<Int>(0)
    /// How long the last sync took, in nanoseconds (`lastSyncDuration`, for `awaitRunningSync`).
    private let lastSyncNanoseconds = Atomic<Int64>(100_000)
    /// Waiters a finished sync woke, signalled after the lock is let go;
    /// kept between syncs so that no wake-up allocates (guarded by `condition`).
    private var spareWoken: [Waiter] = []
    private var failure: String?
    private var target: FileHandle?
    /// Under `.always`: the active segment as of `written`, published to
    /// readers by the leader whose sync covers it (guarded by `condition`).
    private var pendingPublish: Segment?
    /// Publishes a snapshot once a sync covers it; set once, before the first write.
    var publishDurable: (@Sendable (Segment, UInt64) -> Void)?
    /// The other group commit of the same writer (segments and cursor
    /// journal): a failure of either stops both (guarded by `condition`).
    private weak var partner: GroupCommit?

    /// Makes a failure of either group commit stop the other too: one
    /// writer, one stop (every later append and cursor commit fails).
    func stopsTogether(with other: GroupCommit) {
        for (one, another) in [(self, other), (other, self)] {
            one.condition.lock()
            one.partner = another
            one.condition.unlock()
        }
    }

    /// Starts the sequence of a writer that opened a segment with
    /// `unsyncedBytes` bytes not known to be on disk (a recovered tail): they
    /// count as written to `file` and not yet durable, so the next sync covers them.
    func begin(unsyncedBytes: UInt64, file: FileHandle) {
        condition.lock()
        written = unsyncedBytes
        durable = 0
        target = file
        condition.unlock()
    }

    /// Records that bytes up to `sequence` were written to `file`; with
    /// `publishing`, the snapshot to publish once a sync covers them.
    /// Returns the sequence known durable now.
    @discardableResult
    func noteWritten(_ sequence: UInt64, file: FileHandle, publishing: Segment? = nil) -> UInt64 {
        condition.lock()
        written = sequence
        target = file
        if let publishing { pendingPublish = publishing }
        writesSinceSync.add(1, ordering: .sequentiallyConsistent)
        let known = durable
        condition.unlock()
        return known
    }

    /// Records that everything up to `sequence` is durable (a sync done by the writer itself, e.g. at a roll).
    func noteDurable(_ sequence: UInt64) {
        condition.lock()
        if sequence > durable { durable = sequence }
        if durable >= written { writesSinceSync.store(0, ordering: .sequentiallyConsistent) }  // none left to cover
        wakeWaiters()
        condition.unlock()
    }

    /// Records a failure that stops the writer: every waiter, now and later, gets it.
    func fail(_ reason: String) {
        condition.lock()
        let first = failure == nil
        if first { failure = reason }
        let partner = first ? self.partner : nil
        wakeWaiters()
        condition.broadcast()
        condition.unlock()
        partner?.fail(reason)
    }

    var failureReason: String? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// An appender that will wait for its write's durability begins an
    /// append (before it asks for the writer lock). Pair with `leave()`.
    func enter() {
        inFlight.add(1, ordering: .sequentiallyConsistent)
        arriving.add(1, ordering: .sequentiallyConsistent)
    }

    /// The appender is done under the writer lock (wrote, or failed).
    func passedWriter() {
        arriving.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// True when a leader should wait: two or more appenders in flight have
    /// not written since the last sync started, or one has and is writing
    /// right now. (One that is only on its way back from the last sync
    /// alone is not waited for: with the sync started at once, its write
    /// goes into the next one, right after, and the disk is not left idle.)
    private var worthGathering: Bool {
        let missing = inFlight.load(ordering: .sequentiallyConsistent) - writesSinceSync.load(ordering: .sequentiallyConsistent)
        return missing >= 2 || (missing == 1 && arriving.load(ordering: .sequentiallyConsistent) > 0)
    }

    /// The appender's append is over (returned or failed).
    func leave() {
        inFlight.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Wakes the waiters whose writes are durable now (all of them after a
    /// failure), and, when no sync runs, the first of the others to lead
    /// the next one. Called under `condition`'s lock after `durable`,
    /// `failure` or `syncing` changed; with `outsideTheLock`, the lock is
    /// let go while they are signalled (and held again on return), so that
    /// appenders writing meanwhile take it (`noteWritten`) without waiting
    /// behind the wake-ups. Their list's storage is kept for the next time
    /// (`spareWoken`).
    private func wakeWaiters(outsideTheLock: Bool = false) {
        var woken = takeWoken()
        if !woken.isEmpty {
            if outsideTheLock { condition.unlock() }
            for waiter in woken { waiter.semaphore.signal() }
            woken.removeAll(keepingCapacity: true)
            if outsideTheLock { condition.lock() }
        }
        spareWoken = woken
    }

    /// Removes from `waiters` those `wakeWaiters` wakes and returns them,
    /// to be signalled (in `spareWoken`'s storage). Called under `condition`'s lock.
    private func takeWoken() -> [Waiter] {
        var woken = spareWoken
        spareWoken = []
        var leaderWoken = syncing
        var kept = 0
        for i in waiters.indices {
            let waiter = waiters[i]
            var wake = failure != nil || waiter.sequence <= durable
            if !wake && !leaderWoken {
                wake = true
                leaderWoken = true
            }
            if wake {
                woken.append(waiter)
            } else {
                waiters[kept] = waiter
                kept += 1
            }
        }
        waiters.removeLast(waiters.count - kept)
        return woken
    }

    /// Looks (without `condition`'s lock, yielding its core between looks)
    /// while appenders in flight have not written since the last sync
    /// started, as long as waiting is likely to pay (see the type's
    /// comment); `lastSync`: the last sync's duration. (Sleeping with a
    /// timeout would not do for the deadline: a timed wait sleeps at least
    /// the thread's timer slack, 50 µs by default.)
    private func gather(lastSync: Duration) {
        let start = ContinuousClock.now
        let limit = fixedGatherLimit ?? lastSync.clamped(to: Self.gatherRange)
        var seen = writesSinceSync.load(ordering: .sequentiallyConsistent)
        var lastArrival = start
        while worthGathering {
            let now = ContinuousClock.now
            let writes = writesSinceSync.load(ordering: .sequentiallyConsistent)
            if writes != seen {
                seen = writes
                lastArrival = now
            }
            var deadline = start + limit
            if fixedGatherLimit == nil {
                let patience = (lastSync + (now - start)) / max(writes, 1)
                deadline = min(deadline, lastArrival + patience)
            }
            guard now < deadline else { break }
            sched_yield()
        }
    }

    /// Returns once every byte up to `sequence` is on disk.
    func waitDurable(upTo sequence: UInt64) throws(EventLogError) {
        if awaitRunningSync(upTo: sequence) { return }
        condition.lock()
        while true {
            if let failure {
                condition.unlock()
                throw .writerStopped(reason: failure)
            }
            if durable >= sequence {
                condition.unlock()
                return
            }
            if !syncing {
                try leadSync()  // returns with the lock held
                continue
            }
            // Wait for the running sync: woken when a sync covers this
            // write, or to lead the next one, or on a failure.
            let waiter = idleWaiters.popLast() ?? Waiter()
            waiter.sequence = sequence
            waiters.append(waiter)
            condition.unlock()
            waiter.semaphore.wait()
            condition.lock()
            idleWaiters.append(waiter)
        }
    }

    /// When a sync is running and fewer than `maxLookers` waiters look for
    /// its end: looks for it too, yielding the core between looks, for up
    /// to twice the last sync's duration (`gatherRange`'s upper end at
    /// most). True when `sequence` is durable by then; false: wait under
    /// the lock (the sync failed, did not cover `sequence`, or is taking
    /// long).
    private func awaitRunningSync(upTo sequence: UInt64) -> Bool {
        guard syncRunning.load(ordering: .acquiring) else { return false }
        guard lookers.add(1, ordering: .relaxed).newValue <= Self.maxLookers else {
            lookers.subtract(1, ordering: .relaxed)
            return false
        }
        defer { lookers.subtract(1, ordering: .relaxed) }
        let patience = fixedLookLimit?.wholeNanoseconds
            ?? min(2 * lastSyncNanoseconds.load(ordering: .relaxed), Self.gatherRange.upperBound.wholeNanoseconds)
        let deadline = ContinuousClock.now + .nanoseconds(patience)
        var looks = 0
        while durableNow.load(ordering: .acquiring) < sequence {
            guard syncRunning.load(ordering: .acquiring) else { break }
            sched_yield()
            looks += 1
            if looks % 16 == 0 && ContinuousClock.now > deadline { break }
        }
        return durableNow.load(ordering: .acquiring) >= sequence
    }

    /// Syncs whatever was written, now (the interval flusher, `sync()`).
    func syncNow() throws(EventLogError) {
        condition.lock()
        let goal = written
        condition.unlock()
        try waitDurable(upTo: goal)
    }

    /// The sequence known durable: every write noted up to it is on disk.
    var durableSequence: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return durable
    }

    /// True when bytes were written that are not yet known durable.
    var hasUnsyncedWrites: Bool {
        condition.lock()
        defer { condition.unlock() }
        return written > durable
    }

    /// Called with the lock held and no sync running; returns with it held.
    private func leadSync() throws(EventLogError) {
        syncing = true
        // Gather: every appender in flight that has not written since the
        // last sync started (a write each) is about to; wait for them (or
        // for them to leave), up to the limit.
        if worthGathering {
            let lastSync = lastSyncDuration
            condition.unlock()  // `syncing` keeps others from leading meanwhile
            gather(lastSync: lastSync)
            condition.lock()
        }
        let goal = written
        let file = target
        let toPublish = pendingPublish
        pendingPublish = nil
        let writes = writesSinceSync.exchange(0, ordering: .sequentiallyConsistent)
        condition.unlock()
        var error: IOError?
        let started = ContinuousClock.now
        lastSyncLed.store(max(1, (started - born).wholeNanoseconds), ordering: .relaxed)
        do { try file?.datasync() } catch let e { error = e }
        let took = ContinuousClock.now - started
        syncDuration.recordNanoseconds(took.wholeNanoseconds)
        writesPerSync.record(writes)
        if let error {
            logger.error("a sync failed; the writer stops until the log is opened again", metadata: ["file": "\(what)", "error": "\(error)"])
        } else if took > slowSyncThreshold {
            logger.warning("a slow sync", metadata: ["file": "\(what)", "duration": "\(took)"])
        }
        // Readers see the batches only now that they are on disk, and before
        // any appender that waits for them returns.
        if error == nil, let toPublish { publishDurable?(toPublish, goal) }
        condition.lock()
        // `durable` before `syncing`: a waiter looking without the lock
        // (`awaitRunningSync`) that sees the sync over sees what it covered.
        if error == nil, goal > durable { durable = goal }
        syncing = false
        lastSyncDuration = took
        lastSyncNanoseconds.store(took.wholeNanoseconds, ordering: .relaxed)
        if let error {
            let first = failure == nil
            if first { failure = error.description }
            wakeWaiters()
            condition.broadcast()
            if first, let partner {
                // Not under this lock: the partner's fail comes back here.
                condition.unlock()
                partner.fail(error.description)
                condition.lock()
            }
            return
        }
        wakeWaiters(outsideTheLock: true)
    }

    /// Waits up to `seconds` for a broadcast (the flusher's sleep, cut short
    /// by `close`), unless `stop` is already true: checked under the lock
    /// that `wakeAll` takes, so a wake-up between the caller's last look and
    /// this wait is not lost.
    func sleep(seconds: Double, unless stop: () -> Bool = { false }) {
        condition.lock()
        if !stop() { _ = condition.wait(until: Date(timeIntervalSinceNow: seconds)) }
        condition.unlock()
    }

    func wakeAll() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }
}

extension Duration {
    /// This duration, or the nearer end of `range` when outside it.
    fileprivate func clamped(to range: ClosedRange<Duration>) -> Duration {
        Swift.min(Swift.max(self, range.lowerBound), range.upperBound)
    }
}
