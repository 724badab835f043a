import Glibc
import Synchronization
import class Foundation.NSCondition
import class Foundation.Thread

/// The threads of one log where its `async` calls do their blocking work
/// (`AsyncLog`, `AsyncSubscription`, `AsyncConsumerGroup`, the live
/// `EventSequence`): reads that fault in mapped pages, appends that write
/// and sync, cursor commits, `sync`, `close`. Never the Swift cooperative
/// pool, which must not wait on a disk.
///
/// - **Bound**: at most `threadLimit` threads
///   (`LogOptions.asyncThreadCount`, 4 by default, within
///   `1...maxThreadLimit`), started on demand: a log whose async calls are
///   never used starts none. Jobs beyond that wait in a FIFO queue.
/// - **Concurrency**: up to `threadLimit` jobs run at once, each a whole
///   blocking call, in the order they were submitted; the log's own rules
///   then apply (one appender at a time under the writer lock, readers
///   never blocked by it). A job never waits for an append: waiting tasks
///   suspend (`AppendNotifier`) and hold no thread of the executor.
/// - **Shutdown**: `shutdown()` (on `Log.close()`, or when the `Log` is
///   released) refuses new jobs with `EventLogError.closed`; the jobs
///   already queued still run, then the threads end.
///
/// Thread-safe.
final class LogExecutor: @unchecked Sendable {
    /// The default of `LogOptions.asyncThreadCount`.
    static let defaultThreadLimit = 4
    /// The most threads one log's executor may have.
    static let maxThreadLimit = 64

    /// At most this many threads run jobs.
    let threadLimit: Int
    /// The name of every thread of this executor ("EventLog.async #<n>", one
    /// number per executor in the process), for debuggers and `ps`.
    let threadName: String
    /// Marks each thread with its executor (`ownsCurrentThread`): a
    /// thread-local value, since `Thread.current.name` does not reliably
    /// name the running thread on Linux.
    private static let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static let executorCount = Atomic<Int>(0)
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private var isShutDown = false
    /// Jobs a thread took (tests count them).
    private let started = Atomic<Int>(0)

    init(threadLimit: Int = LogExecutor.defaultThreadLimit) {
        self.threadLimit = min(max(1, threadLimit), Self.maxThreadLimit)
        let number = Self.executorCount.add(1, ordering: .relaxed).newValue
        self.threadName = "EventLog.async #\(number)"
    }

    /// True when the calling thread is one of this executor's.
    var ownsCurrentThread: Bool { pthread_getspecific(Self.threadKey) == Unmanaged.passUnretained(self).toOpaque() }

    /// The executor's threads still running (0 some time after `shutdown()`).
    var liveThreads: Int {
        condition.lock()
        defer { condition.unlock() }
        return threads
    }

    /// How many jobs a thread took (counted before each runs).
    var startedJobs: Int { started.load(ordering: .acquiring) }

    /// True once `shutdown()` was called.
    var isShutDownNow: Bool {
        condition.lock()
        defer { condition.unlock() }
        return isShutDown
    }

    /// Runs `body` on one of the executor's threads; the calling task
    /// suspends (holding no thread) until it returns. Cancelling the task
    /// does not stop a job that started.
    ///
    /// - Throws: what `body` throws; `EventLogError.closed` after `shutdown()`.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = submit {
                do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
            }
            if !accepted { continuation.resume(throwing: EventLogError.closed) }
        }
    }

    /// Queues `job`, starting a thread when none is idle and the limit allows;
    /// false after `shutdown()`.
    private func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        guard !isShutDown else {
            condition.unlock()
            return false
        }
        queue.append(job)
        let start = idle == 0 && threads < threadLimit
        if start { threads += 1 }
        condition.signal()
        condition.unlock()
        if start {
            let thread = Thread { [self] in work() }
            thread.name = threadName
            thread.start()
        }
        return true
    }

    /// A thread's loop: takes jobs in order until the executor is shut down and the queue is empty.
    private func work() {
        pthread_setspecific(Self.threadKey, Unmanaged.passUnretained(self).toOpaque())
        condition.lock()
        while true {
            if head < queue.count {
                let job = queue[head]
                head += 1
                if head == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    head = 0
                }
                condition.unlock()
                started.add(1, ordering: .releasing)
                job()
                condition.lock()
                continue
            }
            if isShutDown { break }
            idle += 1
            condition.wait()
            idle -= 1
        }
        threads -= 1
        condition.unlock()
    }

    /// Refuses new jobs; the queued ones still run, then the threads end.
    /// Called from one of the executor's own threads (`AsyncLog.close()`),
    /// it returns at once: that thread ends after its job.
    func shutdown() {
        condition.lock()
        isShutDown = true
        condition.broadcast()
        condition.unlock()
    }
}
