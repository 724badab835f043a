import Dispatch
import EventLog
import Foundation
import Histogram
import Workload

#if canImport(Glibc)
import Glibc
#endif

/// EventLog's phases beyond WORKLOAD.md's: the LZ4 store, concurrent
/// appenders (group commit), and open time after a clean shutdown and after
/// kill -9 of a writer.
public enum EventLogPhases {
    /// "open-clean": opens store A read-write right after A1 closed it (the
    /// clean-shutdown marker is there: no recovery), then closes it.
    public static func openAfterCleanShutdown(path: String, expectedEvents: Int) throws -> [Figure] {
        let start = now()
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        let seconds = now() - start
        defer { try? log.close() }
        guard case .clean = log.recovery.previousShutdown else {
            throw BenchError("open-clean: the log at \(path) did not record a clean shutdown (\(log.recovery.previousShutdown))")
        }
        guard log.endPosition == UInt64(expectedEvents) else {
            throw BenchError("open-clean: \(log.endPosition) events after reopening, expected \(expectedEvents)")
        }
        return [Figure("open-clean", "open_ms", seconds * 1000)]
    }

    /// "C<T>" for EventLog (`ConcurrentPhase.run`): single-event `.always`
    /// appends from `threads` threads to one log. Under group commit the
    /// threads share fdatasyncs, so events/s grows with the thread count
    /// while each append's latency stays near one sync. Besides events/s and
    /// latency: `appends_per_sync` (appends each fdatasync of the segment
    /// covered, mean) and `sync_us` (how long one took, mean), from the
    /// log's `eventlog_group_commit_writes` and `eventlog_sync_duration`.
    public static func concurrentAppenders(
        threads: Int, appendsPerThread: Int, directory: String, keep: Bool = false
    ) throws -> (figures: [Figure], latency: LatencyMeasure) {
        let tally = GroupCommitTally()
        var config = StoreConfig()
        config.groupCommitTally = tally
        var (figures, latency) = try ConcurrentPhase.run(
            EventLogStore.self, threads: threads, appendsPerThread: appendsPerThread, directory: directory, name: "eventlog",
            config: config, keep: keep)
        let phase = "C\(threads)"
        let (syncs, appends, syncNanoseconds) = tally.totals
        if syncs > 0 {
            figures.append(Figure(phase, "appends_per_sync", Double(appends) / Double(syncs)))
            figures.append(Figure(phase, "sync_us", Double(syncNanoseconds) / Double(syncs) / 1000))
        }
        return (figures, latency)
    }

    /// The hidden subcommand that makes `eventlog-bench` the killed writer.
    public static let crashChildCommand = "__append-until-killed"

    /// "open-kill9": a child process (this executable, `crashChildCommand`)
    /// appends to a fresh log with `.always`, batches of 100, until it has
    /// acknowledged at least `events`; it is then killed with SIGKILL while
    /// appending, and the log is opened: the figure is the open time, which
    /// includes recovery of the unsynced tail. Every acknowledged event must
    /// be there.
    public static func openAfterKill(events: Int, directory: String, executable: String, keep: Bool = false) throws -> [Figure] {
        let path = directory + "/eventlog-killed"
        removeTree(path)
        defer { if !keep { removeTree(path) } }
        let acknowledged = try killWriter(path: path, events: events, executable: executable, phase: "open-kill9")

        let start = now()
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        let seconds = now() - start
        defer { try? log.close() }
        guard log.recovery.previousShutdown == .unclean else {
            throw BenchError("open-kill9: expected an unclean previous shutdown, found \(log.recovery.previousShutdown)")
        }
        guard log.endPosition >= acknowledged else {
            throw BenchError("open-kill9: \(log.endPosition) events after recovery, but \(acknowledged) were acknowledged")
        }
        return [
            Figure("open-kill9", "open_ms", seconds * 1000),
            Figure("open-kill9", "recovered_events", Double(log.endPosition)),
            Figure("open-kill9", "scanned_mb", Double(log.recovery.scannedBytes) / 1e6),
        ]
    }

    /// Starts `executable` as the writer (`crashChildCommand`) on the log at
    /// `path`, waits until it has acknowledged at least `events`, kills it
    /// with SIGKILL while it appends, and returns what it acknowledged.
    static func killWriter(path: String, events: Int, executable: String, phase: String) throws -> UInt64 {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = [crashChildCommand, path, String(events)]
        let output = Pipe()
        child.standardOutput = output
        do { try child.run() } catch { throw BenchError("\(phase): cannot start \(executable): \(error)") }

        // The child prints "acknowledged <count>" once it is past `events`.
        var line = ""
        let reader = output.fileHandleForReading
        while !line.contains("\n") {
            let data = reader.availableData
            if data.isEmpty { break }
            line += String(decoding: data, as: UTF8.self)
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        guard let acknowledged = line.split(separator: " ").last.flatMap({ UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            throw BenchError("\(phase): the writer ended before acknowledging \(events) events (said '\(line)')")
        }
        return acknowledged
    }

    /// The child's side of `openAfterKill`: appends until killed; prints
    /// "acknowledged <count>" once past `events`. Exits by itself only if
    /// its parent is gone or after 10 minutes.
    public static func appendUntilKilled(path: String, events: Int) -> Never {
        let parent = getppid()
        do {
            let log = try Log.open(at: path, options: LogOptions(durability: .always))
            let store = EventLogStore.Shared(log: log)
            var generator = EventGenerator(seed: WorkloadSeed.events)
            var chunk = EventChunk()
            var acknowledged = 0
            var told = false
            let deadline = now() + 600
            while now() < deadline && getppid() == parent {
                chunk.fill(from: &generator, count: chunk.capacity)
                let batch = chunk.events
                var i = 0
                while i < batch.count {
                    try store.appendBatch(batch, i..<(i + batchSize))
                    i += batchSize
                    acknowledged += batchSize
                    if !told && acknowledged >= events {
                        told = true
                        let text = "acknowledged \(acknowledged)\n"
                        _ = text.withCString { write(1, $0, strlen($0)) }
                    }
                }
            }
            exit(3)
        } catch {
            printError("eventlog-bench \(crashChildCommand): \(error)")
            exit(1)
        }
    }

    /// "scavenge": a log of `events` workload events in 16 MiB segments (for
    /// N below ~1M, segments of about N/12 events' bytes),
    /// 30% of the streams deleted (soft: later appends recreate them;
    /// `order-k`, k mod 10 < 3), synced.
    /// Timed: one read of the whole log, then `compact()`, which rewrites
    /// the sealed segments without the dead events. Input rate: the sealed
    /// segments' data (headers and batches, as `inspect` counts them) ÷ the
    /// compaction's time. Then appends (batches of 100, no sync) alone, and
    /// while a second compaction (another 30% of the streams deleted) runs
    /// on another thread: events appended until it finishes (or three
    /// times as many as alone) ÷ the time they took. Last, A3's shape (one
    /// event, then `sync()`): the p99 latency of 2,000 alone, and of those
    /// made while a third compaction runs (at most 2,000).
    public static func scavenge(events n: Int, directory: String, keep: Bool = false) throws -> [Figure] {
        let path = directory + "/eventlog-scavenge"
        removeTree(path)
        defer { if !keep { removeTree(path) } }
        // 16 MiB segments, smaller for small N (the harness's tests): about a
        // dozen sealed segments at least (the workload's events take ~230 bytes).
        let segmentBytes = min(16 << 20, max(64 << 10, n * 230 / 12 / 4096 * 4096))
        var options = LogOptions(segmentBytes: segmentBytes, durability: .none)
        options.maintenanceInterval = nil
        let log = try Log.open(at: path, options: options)
        defer { try? log.close() }
        let store = EventLogStore.Shared(log: log)
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var chunk = EventChunk()
        func append(_ count: Int) throws {
            var appended = 0
            while appended < count {
                chunk.fill(from: &generator, count: min(chunk.capacity, count - appended))
                let batch = chunk.events
                var i = 0
                while i < batch.count {
                    let end = min(i + batchSize, batch.count)
                    try store.appendBatch(batch, i..<end)
                    i = end
                }
                appended += batch.count
            }
        }
        /// Deletes the streams `order-k` with k mod 10 in `tenths` (a tenth of them each), synced.
        func deleteStreams(_ tenths: Range<Int>) throws {
            for k in 0..<EventGenerator.streamCount where tenths.contains(k % 10) { _ = try log.deleteStream("order-\(k)") }
            try log.sync()
        }
        /// Starts `compact()` on another thread; the flag is set when it is done.
        func compactInBackground() -> Flag {
            let finished = Flag()
            Thread {
                _ = try? log.compact()
                finished.set()
            }.start()
            return finished
        }
        try append(n)
        try deleteStreams(0..<3)

        var readEvents = 0
        let readStart = now()
        try log.read(from: 0) { _ in readEvents += 1 }
        let readSeconds = now() - readStart
        let sealedBytes = try Log.inspect(at: path).segments.filter(\.isSealed).reduce(Int64(0)) { $0 + $1.bytes }

        let start = now()
        let result = try log.compact()
        let seconds = now() - start
        guard result.segmentsRewritten > 0 else { throw BenchError("scavenge: compact() rewrote no segment (\(result))") }

        // Appends alone, for about as long as a compaction takes (at least 0.5 s).
        let span = max(0.5, seconds)
        var alone = 0
        let aloneStart = now()
        while now() - aloneStart < span {
            try append(10_000)
            alone += 10_000
        }
        let aloneRate = Double(alone) / (now() - aloneStart)
        // Appends while another compaction runs.
        try deleteStreams(3..<6)
        // Bounded: at most three times what was appended alone (a compaction
        // slower than the appends must not let them fill the disk), then the
        // compaction is waited for.
        var during = 0
        let duringStart = now()
        let finished = compactInBackground()
        while !finished.isSet && during < 3 * alone {
            try append(1_000)
            during += 1_000
        }
        let duringRate = Double(during) / (now() - duringStart)
        while !finished.isSet { usleep(1000) }

        // A3's shape (one event, synced, per append): p99 alone, then while
        // a third compaction (another 30% of the streams deleted) runs.
        func syncedAppends(_ count: Int, while running: Flag? = nil) throws -> Double {
            var measure = LatencyMeasure()
            var done = 0
            while done < count && !(running?.isSet ?? false) {
                let start = nanoseconds()
                try append(1)
                try log.sync()
                _ = measure.histogram.record(max(nanoseconds() - start, 1))
                done += 1
            }
            return measure.microseconds(atPercentile: 99)
        }
        let p99Alone = try syncedAppends(2_000)
        try deleteStreams(6..<9)
        let third = compactInBackground()
        let p99During = try syncedAppends(2_000, while: third)
        while !third.isSet { usleep(1000) }

        return [
            Figure("scavenge", "read_once_ms", readSeconds * 1000),
            Figure("scavenge", "compact_ms", seconds * 1000),
            Figure("scavenge", "input_mb_per_s", Double(sealedBytes) / seconds / 1e6),
            Figure("scavenge", "dead_share", Double(result.eventsScavenged) / Double(max(readEvents, 1))),
            Figure("scavenge", "segments_rewritten", Double(result.segmentsRewritten)),
            Figure("scavenge", "appends_alone_per_s", aloneRate),
            Figure("scavenge", "appends_during_per_s", duringRate),
            Figure("scavenge", "synced_append_p99_us", p99Alone),
            Figure("scavenge", "synced_append_p99_during_us", p99During),
        ]
    }

    /// The path of the running executable.
    public static func currentExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A flag one thread sets and another polls.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

extension EventLogStore {
    /// A `Log` handle shared by threads (the `Log` is thread-safe).
    struct Shared: @unchecked Sendable {
        let log: Log

        @inline(__always)
        func appendOne(_ events: EventChunk.Events, _ j: Int) throws {
            try log.appendBatch { (batch: inout BatchBuilder) throws in
                let event = events[j]
                try batch.append(stream: event.stream, type: event.type, data: event.payload)
            }
        }

        @inline(__always)
        func appendBatch(_ events: EventChunk.Events, _ range: Range<Int>) throws {
            try log.appendBatch { (batch: inout BatchBuilder) throws in
                for j in range {
                    let event = events[j]
                    try batch.append(stream: event.stream, type: event.type, data: event.payload)
                }
            }
        }
    }
}
