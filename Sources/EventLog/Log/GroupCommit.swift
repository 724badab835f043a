import class Foundation.NSCondition
import struct Foundation.Date
import Logging
import Metrics
import Synchronization

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
/// A segment is always synced before it is sealed (under the writer lock),
/// so syncing the active segment covers every earlier write.
///
/// Thread-safe. `waitDurable` and `syncNow` block on the disk.
final class GroupCommit: @unchecked Sendable {
    /// How long a leader waits for an appender that is writing right now, so
    /// that one sync covers both (without it two appenders would alternate,
    /// each waiting for a sync that started just before its write).
    static let gatherMicroseconds = 60

    private let condition = NSCondition()
    /// Where a failed or slow sync is reported, and what it syncs ("segment", "cursor journal").
    private let logger: Logger
    private let what: String
    private let slowSyncThreshold: Duration
    /// `eventlog_sync_duration` and `eventlog_group_commit_writes` (README, "Metrics").
    private let syncDuration: Metrics.Timer
    private let writesPerSync: Recorder

    init(
        what: String, logger: Logger = Logger(label: "EventLog"), slowSyncThreshold: Duration = .seconds(1),
        dimensions: [(String, String)] = [], metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.what = what
        self.logger = logger
        self.slowSyncThreshold = slowSyncThreshold
        syncDuration = Metrics.Timer(label: "eventlog_sync_duration", dimensions: dimensions + [("file", what)], factory: metrics)
        writesPerSync = Recorder(label: "eventlog_group_commit_writes", dimensions: dimensions + [("file", what)], factory: metrics)
    }

    /// Appenders between asking for the writer lock and noting their write.
    let arriving = Atomic<Int>(0)
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
    /// Writes noted since the last sync started (guarded by `condition`).
    private var writesSinceSync = 0
    /// A leader is waiting to gather one more write (guarded by `condition`).
    private var gathering = false
    // All guarded by `condition`.
    private var written: UInt64 = 0
    private var durable: UInt64 = 0
    private var syncing = false
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
        writesSinceSync += 1
        if gathering { condition.broadcast() }  // only the gathering leader needs to know
        let known = durable
        condition.unlock()
        return known
    }

    /// Records that everything up to `sequence` is durable (a sync done by the writer itself, e.g. at a roll).
    func noteDurable(_ sequence: UInt64) {
        condition.lock()
        if sequence > durable { durable = sequence }
        condition.broadcast()
        condition.unlock()
    }

    /// Records a failure that stops the writer: every waiter, now and later, gets it.
    func fail(_ reason: String) {
        condition.lock()
        let first = failure == nil
        if first { failure = reason }
        let partner = first ? self.partner : nil
        condition.broadcast()
        condition.unlock()
        partner?.fail(reason)
    }

    var failureReason: String? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// Returns once every byte up to `sequence` is on disk.
    func waitDurable(upTo sequence: UInt64) throws(EventLogError) {
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
            condition.wait()
        }
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
        // Gather: when this sync would cover one write only and another
        // appender is writing right now, let it cover that one too. (With
        // more writes already waiting, syncing at once is better.)
        if writesSinceSync <= 1 && arriving.load(ordering: .relaxed) > 0 {
            let before = written
            let until = Date(timeIntervalSinceNow: Double(Self.gatherMicroseconds) / 1_000_000)
            gathering = true
            while written == before && arriving.load(ordering: .relaxed) > 0 {
                if !condition.wait(until: until) { break }
            }
            gathering = false
        }
        let goal = written
        let file = target
        let toPublish = pendingPublish
        pendingPublish = nil
        let writes = writesSinceSync
        writesSinceSync = 0
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
        syncing = false
        if let error {
            let first = failure == nil
            if first { failure = error.description }
            condition.broadcast()
            if first, let partner {
                // Not under this lock: the partner's fail comes back here.
                condition.unlock()
                partner.fail(error.description)
                condition.lock()
            }
            return
        }
        if goal > durable { durable = goal }
        condition.broadcast()
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
