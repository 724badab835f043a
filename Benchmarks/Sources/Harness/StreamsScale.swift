import EventLog
import Foundation
import Workload

#if canImport(Glibc)
import Glibc
#endif

/// The streams-scale phase group (`--streams-scale LIST`, project issue 20,
/// "Millions of aggregates"): for each stream count S, every system loads a
/// fresh store with S streams of 1 to 3 events each (`AggregateWorkload`),
/// then is measured on what a large stream table costs: opening it, reading
/// one stream, appending with exact expected versions, memory and disk.
public struct StreamsScaleSizes: Sendable, Equatable {
    /// The stream counts S; empty: the group does not run.
    public var counts: [Int] = []
    /// Random whole-stream reads after the first one (median of their latencies).
    public var reads = 1_000
    /// Events appended with an exact expected version, in batches of 100,
    /// each event to a different random existing stream.
    public var appends = 100_000
    /// EventLog's open-after-kill-9: events the killed writer acknowledged (at least).
    public var killEvents = 10_000
    /// Run only this group (not the standard phases).
    public var only = false

    public init() {}
}

/// The error a store throws when an expectation of `appendExpected` fails
/// (nothing of the batch is written).
public struct WrongExpectedVersion: Error, CustomStringConvertible {
    public let stream: String
    public let expected: UInt64
    public var description: String { "\(stream) is not at version \(expected)" }
    public init(stream: String, expected: UInt64) {
        self.stream = stream
        self.expected = expected
    }
}

/// A store the streams-scale group can drive: a `Store` that can also
/// append with expected versions.
public protocol StreamsScaleStore: Store {
    /// What `appendExpected` takes (built untimed).
    associatedtype ExpectedBatch

    /// Builds, outside the timing, the request for appending `events[range]`
    /// where each event expects its stream to be at exactly
    /// `event.version - 1` (the events go to distinct existing streams).
    func prepareExpected(_ events: EventChunk.Events, _ range: Range<Int>) throws -> ExpectedBatch

    /// Appends the batch as one transaction if every expectation holds;
    /// otherwise writes nothing and throws `WrongExpectedVersion`.
    func appendExpected(_ batch: ExpectedBatch) throws

    /// Called between the reads and the first `appendExpected` (LMDB ends
    /// its long-lived read transaction).
    func endReads()

    /// Called right after a read-write open that followed a clean close:
    /// throws when the store saw anything else (EventLog: its recovery report).
    func checkCleanOpen() throws
}

extension StreamsScaleStore {
    public func endReads() {}
    public func checkCleanOpen() throws {}
}

/// What one system did for one S in one round.
public struct StreamsScaleOutcome: Sendable {
    public let system: SystemID
    public let phase: String
    public let streams: Int
    public var figures: [Figure] = []
    /// The first read after open, and the `reads` reads after it (together), as read.
    public var firstRead = ReadSum()
    public var reads = ReadSum()
    public var appendedEvents = 0
    /// A batch with a stale expectation was refused and left the stream as it was.
    public var refusedStaleExpectation = false

    public init(system: SystemID, phase: String, streams: Int) {
        self.system = system
        self.phase = phase
        self.streams = streams
    }
}

public enum StreamsScale {
    /// Seeds of the group's random draws (the load's is `AggregateWorkload.defaultSeed`).
    public static let readSeed: UInt64 = 46
    public static let appendSeed: UInt64 = 47

    /// "streams-1M", "streams-10M", "streams-2k", "streams-1500".
    public static func phaseName(_ streams: Int) -> String {
        if streams >= 1_000_000 && streams % 1_000_000 == 0 { return "streams-\(streams / 1_000_000)M" }
        if streams >= 1_000 && streams % 1_000 == 0 { return "streams-\(streams / 1_000)k" }
        return "streams-\(streams)"
    }

    /// The stream count of a phase name made by `phaseName`, or nil.
    public static func streamCount(ofPhase phase: String) -> Int? {
        guard phase.hasPrefix("streams-") else { return nil }
        var text = phase.dropFirst("streams-".count)
        var scale = 1
        if text.hasSuffix("M") { scale = 1_000_000; text = text.dropLast() }
        else if text.hasSuffix("k") { scale = 1_000; text = text.dropLast() }
        return Int(text).map { $0 * scale }
    }

    public static let metricDescriptions: [(String, String)] = [
        ("load_events_per_s", "loading the S streams (batches of 100, durable at the end; sync + close timed)"),
        ("load_finish_ms", "the load's final durability step and close"),
        ("disk_bytes_per_stream", "allocated bytes of the store's files after the load ÷ S"),
        ("open_clean_ms", "read-write open after a clean close"),
        ("first_read_us", "the first whole-stream read after that open"),
        ("read_one_stream_us", "median latency of the next random whole-stream reads"),
        ("read_one_stream_p99_us", "their 99th percentile"),
        ("rss_anon_mb", "RssAnon after open + reads (heap trimmed) minus RssAnon before the open"),
        ("append_expected_per_s", "events/s appended in batches of 100, each to a random existing stream with an exact expected version"),
        ("peak_rss_mb", "VmHWM during open, reads and appends minus VmRSS before the open"),
        ("close_ms", "close after the appends"),
        ("open_readonly_ms", "EventLog only: read-only open after a clean close"),
        ("open_kill9_ms", "EventLog only: read-write open after kill -9 of a child writer appending with .always"),
    ]

    /// What reading stream `k` with `count` events must fold to.
    static func expectedRead(_ workload: AggregateWorkload, stream k: Int, count: Int) -> ReadSum {
        var sum = ReadSum()
        for v in 0..<count {
            let length = workload.payloadLength(stream: k, version: UInt32(v))
            sum.events += 1
            sum.bytes += UInt64(AggregateWorkload.nameBytes + AggregateWorkload.typeBytes + length)
            sum.sum &+= UInt64(length) + UInt64(UInt8(ascii: "{")) + UInt64(UInt8(ascii: "}"))
        }
        return sum
    }

    /// The streams the reads visit: the first read's, then `count` more.
    public static func readDraws(_ count: Int, streams: Int) -> [Int] {
        var rng = SplitMix64(seed: readSeed)
        return (0...count).map { _ in Int(rng.next() % UInt64(streams)) }
    }

    /// One system, one S: load, measure, and (untimed) check. Returns nil
    /// for a system the group does not drive (RocksDB).
    public static func run(
        _ system: SystemID, workload: AggregateWorkload, sizes: StreamsScaleSizes, directory: String,
        keep: Bool = false, executable: String?
    ) throws -> StreamsScaleOutcome? {
        switch system {
        case .eventlog:
            var round = StreamsScaleRound<EventLogStore>(system: system, workload: workload, sizes: sizes, directory: directory)
            round.keep = keep
            round.afterClose = { path in
                var figures = try openReadOnly(path: path, workload: workload)
                if sizes.killEvents > 0, let executable {
                    figures += try openAfterKill(path: path, events: sizes.killEvents, workload: workload, executable: executable)
                }
                return figures
            }
            return try round.run()
        case .sqlite, .sqliteTuned:
            var round = StreamsScaleRound<SQLitePeer>(system: system, workload: workload, sizes: sizes, directory: directory)
            round.keep = keep
            return try round.run()
        case .lmdb:
            var round = StreamsScaleRound<LMDBPeer>(system: system, workload: workload, sizes: sizes, directory: directory)
            round.keep = keep
            return try round.run()
        case .rocksdb, .rocksdbTuned:
            return nil
        }
    }

    /// EventLog: `Log.open` read-only after a clean close; one stream read checked.
    static func openReadOnly(path: String, workload: AggregateWorkload) throws -> [(String, Double)] {
        var options = LogOptions(durability: .none, readOnly: true)
        options.createIfMissing = false
        let start = now()
        let log = try Log.open(at: path, options: options)
        let seconds = now() - start
        defer { try? log.close() }
        guard case .clean = log.recovery.previousShutdown else {
            throw BenchError("streams-scale open-readonly: \(path) did not record a clean shutdown (\(log.recovery.previousShutdown))")
        }
        let k = workload.streams / 2
        let info = try log.streamInfo(nameOf(k))
        guard let info, info.count >= UInt64(workload.initialCount(ofStream: k)) else {
            throw BenchError("streams-scale open-readonly: \(nameOf(k)) has \(info?.count ?? 0) events, expected at least \(workload.initialCount(ofStream: k))")
        }
        return [("open_readonly_ms", seconds * 1000)]
    }

    /// EventLog: a child writer (`eventlog-bench __append-until-killed`)
    /// appends the standard workload's events with `.always` to this
    /// many-stream log until it has acknowledged `events`, is killed with
    /// SIGKILL, and the log is opened read-write (timed: the stream table
    /// and the recovery of the tail). Every acknowledged event must be
    /// there, and an aggregate stream must still read whole.
    static func openAfterKill(path: String, events: Int, workload: AggregateWorkload, executable: String) throws -> [(String, Double)] {
        var options = LogOptions(durability: .none)
        options.createIfMissing = false
        let before: UInt64
        do {
            let log = try Log.open(at: path, options: options)
            before = log.endPosition
            try log.close()
        }
        let acknowledged = try EventLogPhases.killWriter(path: path, events: events, executable: executable, phase: "streams-scale open-kill9")
        let start = now()
        let log = try Log.open(at: path, options: options)
        let seconds = now() - start
        defer { try? log.close() }
        guard log.recovery.previousShutdown == .unclean else {
            throw BenchError("streams-scale open-kill9: expected an unclean previous shutdown, found \(log.recovery.previousShutdown)")
        }
        guard log.endPosition >= before + acknowledged else {
            throw BenchError("streams-scale open-kill9: \(log.endPosition) events after recovery, but \(before) + \(acknowledged) acknowledged")
        }
        let k = workload.streams / 3
        var count: UInt64 = 0
        try log.readStream(nameOf(k)) { view in
            guard view.version == count else { throw BenchError("streams-scale open-kill9: \(nameOf(k)) version \(view.version) where \(count) belongs") }
            count += 1
        }
        guard count >= UInt64(workload.initialCount(ofStream: k)) else {
            throw BenchError("streams-scale open-kill9: \(nameOf(k)) has \(count) events after recovery")
        }
        return [
            ("open_kill9_ms", seconds * 1000),
            ("kill9_replayed_records", Double(log.recovery.replayedRecords)),
            ("kill9_scanned_mb", Double(log.recovery.scannedBytes) / 1e6),
        ]
    }

    static func nameOf(_ k: Int) -> String {
        let digits = String(k)
        return AggregateWorkload.namePrefix + String(repeating: "0", count: max(0, AggregateWorkload.nameDigits - digits.count)) + digits
    }
}

/// The group for one system and one S. Generic over the store, so every
/// timed call is a direct call.
public struct StreamsScaleRound<S: StreamsScaleStore> {
    public let system: SystemID
    public let workload: AggregateWorkload
    public let sizes: StreamsScaleSizes
    public let directory: String
    public var config: StoreConfig
    public var keep = false
    /// Runs after the store's last close (EventLog: read-only open, open after kill -9).
    public var afterClose: ((String) throws -> [(String, Double)])?

    public init(system: SystemID, workload: AggregateWorkload, sizes: StreamsScaleSizes, directory: String) {
        self.system = system
        self.workload = workload
        self.sizes = sizes
        self.directory = directory
        self.config = system.config
    }

    public func run() throws -> StreamsScaleOutcome {
        let phase = StreamsScale.phaseName(workload.streams)
        var outcome = StreamsScaleOutcome(system: system, phase: phase, streams: workload.streams)
        func figure(_ metric: String, _ value: Double) { outcome.figures.append(Figure(phase, metric, value)) }
        func fail(_ message: String) -> BenchError { BenchError("\(system.name) \(phase): \(message)") }
        let path = directory + "/\(phase)-\(system.name)"
        removeTree(path)
        try createDirectory(path)
        defer { if !keep { removeTree(path) } }
        let s = workload.streams

        // Load: S streams, batches of 100, durable at the end (as A1).
        var generator = AggregateGenerator(workload: workload)
        var chunk = EventChunk()
        var loadSeconds = 0.0
        var loadBytes: UInt64 = 0
        var store: S? = try S(directory: path, mode: .bulk, config: config)
        guard let loader = store else { throw fail("no store") }
        while generator.hasNext {
            chunk.removeAll()
            while chunk.count < chunk.capacity && generator.hasNext {
                generator.next()
                chunk.append(
                    stream: generator.stream, type: generator.type, payload: generator.payload,
                    position: generator.position, version: generator.version)
            }
            loadBytes += chunk.logicalBytes
            let events = chunk.events
            let m = events.count
            let start = now()
            var i = 0
            while i < m {
                let end = min(i + batchSize, m)
                try loader.append(events, i..<end)
                i = end
            }
            loadSeconds += now() - start
        }
        let finishStart = now()
        try loader.finishBulk()
        try loader.close()
        store = nil
        fsyncPath(path)
        let finishSeconds = now() - finishStart
        loadSeconds += finishSeconds
        guard loadBytes == workload.loadBytes, generator.produced == workload.loadEvents else {
            throw fail("loaded \(generator.produced) events, \(loadBytes) bytes; expected \(workload.loadEvents), \(workload.loadBytes)")
        }
        figure("load_events_per_s", Double(workload.loadEvents) / loadSeconds)
        figure("load_finish_ms", finishSeconds * 1000)
        figure("disk_bytes_per_stream", Double(allocatedBytes(under: path)) / Double(s))

        // Open after the clean close, then the first read and `reads` more.
        trimHeap()
        resetPeakRSS()
        let baseAnon = anonymousRSSBytes()
        let baseRSS = currentRSSBytes()
        let openStart = now()
        let opened = try S(directory: path, mode: .bulk, config: config)
        figure("open_clean_ms", (now() - openStart) * 1000)
        try opened.checkCleanOpen()

        let draws = StreamsScale.readDraws(sizes.reads, streams: s)
        let name = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
        defer { name.deallocate() }
        var latencies: [UInt64] = []
        latencies.reserveCapacity(draws.count)
        var reads = ReadSum()
        var expectedReads = ReadSum()
        for (i, k) in draws.enumerated() {
            let length = AggregateWorkload.writeName(k, into: name)
            var sum = ReadSum()
            let start = nanoseconds()
            let count = try opened.readStream(UnsafeRawBufferPointer(start: name, count: length), into: &sum)
            let elapsed = nanoseconds() - start
            let expectedCount = workload.initialCount(ofStream: k)
            let expected = StreamsScale.expectedRead(workload, stream: k, count: expectedCount)
            guard count == expectedCount, sum == expected else {
                throw fail("stream \(k) read \(count) events \(sum), expected \(expectedCount) events \(expected)")
            }
            if i == 0 {
                outcome.firstRead = sum
                figure("first_read_us", Double(elapsed) / 1000)
            } else {
                latencies.append(elapsed)
                reads.add(sum)
                expectedReads.add(expected)
            }
        }
        guard reads == expectedReads else { throw fail("reads folded to \(reads), expected \(expectedReads)") }
        outcome.reads = reads
        if !latencies.isEmpty {
            latencies.sort()
            figure("read_one_stream_us", Double(latencies[latencies.count / 2]) / 1000)
            figure("read_one_stream_p99_us", Double(latencies[min(latencies.count - 1, latencies.count * 99 / 100)]) / 1000)
        }
        trimHeap()
        figure("rss_anon_mb", (Double(anonymousRSSBytes()) - Double(baseAnon)) / 1e6)

        // Appends with exact expected versions, batches of 100 (as many as
        // there are streams, when fewer), each event to a different stream.
        opened.endReads()
        var current: [Int: Int] = [:]  // streams the appends changed: their event counts
        var touched: [Int] = []
        var rng = SplitMix64(seed: StreamsScale.appendSeed)
        var position = UInt64(workload.loadEvents)
        var appendSeconds = 0.0
        var appended = 0
        let perBatch = min(batchSize, s)
        var batch: [Int] = []
        while appended < sizes.appends {
            let m = min(perBatch, sizes.appends - appended)
            batch.removeAll(keepingCapacity: true)
            chunk.removeAll()
            while batch.count < m {
                let k = Int(rng.next() % UInt64(s))
                if batch.contains(k) { continue }
                batch.append(k)
                let version = current[k] ?? workload.initialCount(ofStream: k)
                generator.produce(stream: k, version: UInt32(version), position: position + UInt64(batch.count - 1))
                chunk.append(
                    stream: generator.stream, type: generator.type, payload: generator.payload,
                    position: generator.position, version: generator.version)
            }
            let events = chunk.events
            let request = try opened.prepareExpected(events, 0..<m)
            let start = now()
            try opened.appendExpected(request)
            appendSeconds += now() - start
            for k in batch {
                if current[k] == nil { touched.append(k) }
                current[k] = (current[k] ?? workload.initialCount(ofStream: k)) + 1
            }
            position += UInt64(m)
            appended += m
        }
        outcome.appendedEvents = appended
        if appended > 0 { figure("append_expected_per_s", Double(appended) / appendSeconds) }
        figure("peak_rss_mb", (Double(peakRSSBytes()) - Double(baseRSS)) / 1e6)

        // Untimed checks: a stale expectation is refused and changes
        // nothing; the streams the appends changed read back whole.
        let stale = touched.first ?? draws[0]
        let staleCount = current[stale] ?? workload.initialCount(ofStream: stale)
        if staleCount >= 2 {
            chunk.removeAll()
            generator.produce(stream: stale, version: UInt32(staleCount - 1), position: position)
            chunk.append(
                stream: generator.stream, type: generator.type, payload: generator.payload,
                position: generator.position, version: generator.version)
            let request = try opened.prepareExpected(chunk.events, 0..<1)
            do {
                try opened.appendExpected(request)
                throw fail("an append expecting stream \(stale) at version \(staleCount - 2) (it is at \(staleCount - 1)) was accepted")
            } catch is WrongExpectedVersion {
                outcome.refusedStaleExpectation = true
            }
        }
        var checked = touched.prefix(100).map { $0 }
        if staleCount >= 2 { checked.append(stale) }
        for k in checked {
            let length = AggregateWorkload.writeName(k, into: name)
            var sum = ReadSum()
            let count = try opened.readStream(UnsafeRawBufferPointer(start: name, count: length), into: &sum)
            let expectedCount = current[k] ?? workload.initialCount(ofStream: k)
            guard count == expectedCount, sum == StreamsScale.expectedRead(workload, stream: k, count: expectedCount) else {
                throw fail("after the appends, stream \(k) read \(count) events \(sum), expected \(expectedCount)")
            }
        }
        let closeStart = now()
        try opened.close()
        figure("close_ms", (now() - closeStart) * 1000)

        if let afterClose {
            for (metric, value) in try afterClose(path) { figure(metric, value) }
        }
        return outcome
    }
}

// MARK: - Conformances

extension EventLogStore: StreamsScaleStore {
    public typealias ExpectedBatch = (events: [NewEvent], expecting: [String: ExpectedVersion])

    /// The request of `Log.append(_:expecting:)`: owned events and the
    /// expectations by stream name (built untimed).
    public func prepareExpected(_ events: EventChunk.Events, _ range: Range<Int>) throws -> ExpectedBatch {
        var list: [NewEvent] = []
        list.reserveCapacity(range.count)
        var expecting: [String: ExpectedVersion] = [:]
        expecting.reserveCapacity(range.count)
        for j in range {
            let event = events[j]
            let stream = String(decoding: event.stream, as: UTF8.self)
            guard event.version >= 1 else { throw BenchError("eventlog: an expected append needs an existing stream (\(stream))") }
            list.append(NewEvent(stream: stream, type: String(decoding: event.type, as: UTF8.self), data: Array(event.payload)))
            expecting[stream] = .exact(UInt64(event.version - 1))
        }
        return (list, expecting)
    }

    public func appendExpected(_ batch: ExpectedBatch) throws {
        do {
            try log.append(batch.events, expecting: batch.expecting)
        } catch {
            if let error = error as? EventLogError, case .wrongExpectedVersion(let stream, .exact(let version), _) = error {
                throw WrongExpectedVersion(stream: stream, expected: version)
            }
            throw error
        }
    }

    public func checkCleanOpen() throws {
        guard case .clean = log.recovery.previousShutdown else {
            throw BenchError("eventlog: the open after a clean close found \(log.recovery.previousShutdown)")
        }
    }
}
