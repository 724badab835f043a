import Dispatch
import Foundation
import Histogram
import Workload

/// A store that several threads append to at once, each event durable on
/// its own: the C phases (`C1`, `C2`, `C4`, `C8`), for every system.
///
/// Not thread-safe itself: the phase opens it, makes one appender per
/// thread (on that thread), and closes it, all from one thread at a time.
/// (`SendableMetatype`: the appender threads are handed its type.)
public protocol ConcurrentStore: AnyObject, SendableMetatype {
    associatedtype Appender: ConcurrentAppender

    /// Opens a fresh store in `directory` (created by the caller, empty)
    /// for durable appends from several threads.
    init(concurrentAt directory: String, config: StoreConfig) throws

    /// One thread's writer (called on that thread, before the timed region;
    /// thread-safe: the threads call it at the same time).
    func makeAppender() throws -> Appender

    /// After every appender closed (untimed): every event in the store,
    /// folded as R1 folds it. Closes the store.
    func scanAndClose() throws -> ReadSum
}

extension ConcurrentStore where Self: Store {
    /// Every event, folded as R1 folds it (`Store.scanAll`), then the store
    /// closed (also when the scan fails).
    public func scanAndClose() throws -> ReadSum {
        var sum = ReadSum()
        do {
            try scanAll(into: &sum)
        } catch {
            try? close()
            throw error
        }
        try close()
        return sum
    }
}

/// One thread's writer in a C phase: one event per durable transaction.
public protocol ConcurrentAppender: AnyObject, SendableMetatype {
    /// Appends `events[j]` alone, durably: on return it survives a crash.
    func appendOne(_ events: EventChunk.Events, _ j: Int) throws
    func close() throws
}

/// Runs the C phases against any `ConcurrentStore`.
public enum ConcurrentPhase {
    /// "C<T>": `threads` threads each make `appendsPerThread` single-event
    /// durable appends to one fresh store. Events are generated before the
    /// timed region; thread t appends events t, t + T, t + 2T, … of the
    /// chunk. Afterwards (untimed) the store is read back: the count and the
    /// logical bytes must match.
    public static func run<S: ConcurrentStore>(
        _: S.Type, threads: Int, appendsPerThread: Int, directory: String, name: String, config: StoreConfig = StoreConfig(),
        keep: Bool = false
    ) throws -> (figures: [Figure], latency: LatencyMeasure) {
        precondition(threads >= 1 && appendsPerThread >= 1)
        let phase = "C\(threads)"
        let path = directory + "/\(name)-\(phase.lowercased())"
        removeTree(path)
        defer { if !keep { removeTree(path) } }
        guard mkdir(path, 0o755) == 0 else { throw BenchError("mkdir \(path): \(String(cString: strerror(errno)))") }
        let total = threads * appendsPerThread
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var chunk = EventChunk(capacity: total)
        chunk.fill(from: &generator, count: total)
        let events = chunk.events

        let store = Unchecked(try S(concurrentAt: path, config: config))
        let collector = Collector()
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let thread = Thread {
                var histogram = LatencyMeasure.emptyHistogram()
                var spent: UInt64 = 0
                var failure: String?
                var appender: S.Appender?
                do {
                    appender = try store.value.makeAppender()
                } catch {
                    failure = "opening a writer: \(error)"
                }
                ready.signal()
                go.wait()
                if let appender {
                    do {
                        var j = t
                        while j < total {
                            let start = nanoseconds()
                            try appender.appendOne(events, j)
                            let elapsed = nanoseconds() - start
                            _ = histogram.record(max(elapsed, 1))
                            spent += elapsed
                            j += threads
                        }
                    } catch {
                        failure = "\(error)"
                    }
                    do { try appender.close() } catch { failure = failure ?? "closing a writer: \(error)" }
                }
                collector.add(histogram, nanoseconds: spent, failure: failure)
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        for _ in 0..<threads { ready.wait() }
        let start = now()
        for _ in 0..<threads { go.signal() }
        done.wait()
        let seconds = now() - start
        let (histograms, spent, failures) = collector.results
        // Check (untimed): every event is there once.
        let read: ReadSum
        do {
            read = try store.value.scanAndClose()
        } catch {
            throw BenchError("\(phase) \(name): reading back failed: \(failures.first ?? "\(error)")")
        }
        if let failure = failures.first { throw BenchError("\(phase) \(name): an append failed: \(failure)") }
        guard read.events == UInt64(total), read.bytes == chunk.logicalBytes else {
            throw BenchError(
                "\(phase) \(name) check failed: read back \(read.events) events, \(read.bytes) bytes; appended \(total), \(chunk.logicalBytes) bytes")
        }

        var latency = LatencyMeasure()
        for histogram in histograms { latency.histogram.add(histogram) }
        latency.seconds = seconds
        latency.meanMicroseconds = Double(spent) / Double(total) / 1000
        return ([
            Figure(phase, "events_per_s", Double(total) / seconds),
            Figure(phase, "p50_us", latency.microseconds(atPercentile: 50)),
            Figure(phase, "p99_us", latency.microseconds(atPercentile: 99)),
        ], latency)
    }
}

/// A value handed to the appender threads: the phase guarantees they use it
/// only as its protocol allows (`makeAppender` from each thread, nothing
/// else until they are done).
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// What the appender threads report back.
final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var histograms: [Histogram<UInt64>] = []
    private var nanoseconds: UInt64 = 0
    private var failures: [String] = []

    func add(_ histogram: Histogram<UInt64>, nanoseconds spent: UInt64, failure: String?) {
        lock.lock()
        defer { lock.unlock() }
        histograms.append(histogram)
        nanoseconds += spent
        if let failure { failures.append(failure) }
    }

    var results: ([Histogram<UInt64>], UInt64, [String]) {
        lock.lock()
        defer { lock.unlock() }
        return (histograms, nanoseconds, failures)
    }
}
