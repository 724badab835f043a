import Foundation
import Harness
import Testing
import Workload

/// The streams-scale group at a tiny S for every system it drives: what the
/// reads returned is checked against the generator here, independently of
/// the runner's own checks; stores that answer wrong or ignore an
/// expectation must fail.
@Suite(.serialized) struct StreamsScaleTests {
    static let streams = 2_000
    static let workload = AggregateWorkload(streams: streams)
    static let sizes: StreamsScaleSizes = {
        var sizes = StreamsScaleSizes()
        sizes.counts = [streams]
        sizes.reads = 300
        sizes.appends = 1_000
        sizes.killEvents = 1_000
        return sizes
    }()

    /// Stream k's events as the generator produces them, folded as a read does;
    /// and their versions 0, 1, 2, …
    static func reference(stream k: Int) -> ReadSum {
        var generator = AggregateGenerator(workload: workload)
        var sum = ReadSum()
        for v in 0..<workload.initialCount(ofStream: k) {
            generator.produce(stream: k, version: UInt32(v), position: 0)
            #expect(generator.version == UInt32(v))
            sum.add(streamCount: generator.stream.count, typeCount: generator.type.count, data: generator.payload)
        }
        return sum
    }

    /// What the first read and the reads after it must return.
    static let expectedReads: (first: ReadSum, rest: ReadSum) = {
        var rng = SplitMix64(seed: 46)
        let first = reference(stream: Int(rng.next() % UInt64(streams)))
        var rest = ReadSum()
        for _ in 0..<sizes.reads { rest.add(reference(stream: Int(rng.next() % UInt64(streams)))) }
        return (first, rest)
    }()

    @Test func loadVisitsEveryStreamWithItsVersions() {
        var generator = AggregateGenerator(workload: Self.workload)
        var next = [UInt32](repeating: 0, count: Self.streams)
        var bytes: UInt64 = 0
        var position: UInt64 = 0
        while generator.hasNext {
            generator.next()
            let k = generator.streamNumber
            #expect(generator.position == position)
            #expect(generator.version == next[k], "stream \(k)")
            #expect(AggregateWorkload.streamNumber(of: generator.stream) == k)
            #expect(generator.payload.first == UInt8(ascii: "{") && generator.payload.last == UInt8(ascii: "}"))
            next[k] += 1
            bytes += UInt64(generator.logicalBytes)
            position += 1
        }
        #expect(Int(position) == Self.workload.loadEvents)
        #expect(bytes == Self.workload.loadBytes)
        for k in 0..<Self.streams { #expect(Int(next[k]) == Self.workload.initialCount(ofStream: k)) }
        #expect(Set(next).isSubset(of: [1, 2, 3]))
    }

    func run(_ system: SystemID, executable: String?) throws -> StreamsScaleOutcome {
        let directory = try makeTemporaryDirectory(prefix: "harness-streams-test")
        defer { removeTree(directory) }
        return try #require(
            try StreamsScale.run(system, workload: Self.workload, sizes: Self.sizes, directory: directory, executable: executable))
    }

    @Test(arguments: [SystemID.eventlog, .sqlite, .sqliteTuned, .lmdb])
    func everySystem(_ system: SystemID) throws {
        let executable = system == .eventlog ? PhaseTests.benchExecutable() : nil
        if system == .eventlog { #expect(executable != nil, "eventlog-bench is built beside the tests") }
        let outcome = try run(system, executable: executable)
        #expect(outcome.phase == "streams-2k")
        #expect(outcome.firstRead == Self.expectedReads.first)
        #expect(outcome.reads == Self.expectedReads.rest)
        #expect(outcome.appendedEvents == Self.sizes.appends)
        #expect(outcome.refusedStaleExpectation)
        let figures = Dictionary(outcome.figures.map { ($0.metric, $0.value) }, uniquingKeysWith: { a, _ in a })
        for metric in [
            "load_events_per_s", "disk_bytes_per_stream", "open_clean_ms", "first_read_us", "read_one_stream_us",
            "append_expected_per_s", "rss_anon_mb", "peak_rss_mb",
        ] {
            #expect(figures[metric] != nil, "\(system.name) \(metric)")
        }
        #expect((figures["disk_bytes_per_stream"] ?? 0) > 100)
        #expect(outcome.figures.allSatisfy { $0.phase == "streams-2k" })
        if system == .eventlog {
            #expect(figures["open_readonly_ms"] != nil)
            #expect(figures["open_kill9_ms"] != nil)
        }
    }

    @Test func rocksDBIsNotDriven() throws {
        #expect(try StreamsScale.run(.rocksdb, workload: Self.workload, sizes: Self.sizes, directory: "/nonexistent", executable: nil) == nil)
    }

    /// Stores that read the wrong events, or do not check expectations, fail the group.
    @Test func wrongAnswersFail() throws {
        let directory = try makeTemporaryDirectory(prefix: "harness-streams-test")
        defer { removeTree(directory) }
        for flaw in CarelessStore.Flaw.allCases {
            CarelessStore.flaw = flaw
            let round = StreamsScaleRound<CarelessStore>(
                system: .sqlite, workload: Self.workload, sizes: Self.sizes, directory: directory)
            #expect(throws: BenchError.self, "flaw \(flaw)") { _ = try round.run() }
        }
    }

    @Test func optionsAndOutput() throws {
        let options = try Options.parse(["--streams-scale", "1000000,10000000", "--only-streams-scale", "--streams-appends", "500"])
        #expect(options.streamsScale.counts == [1_000_000, 10_000_000])
        #expect(options.streamsScale.only)
        #expect(options.streamsScale.appends == 500)
        #expect(try Options.parse([]).streamsScale.counts.isEmpty)
        #expect(throws: UsageError.self) { try Options.parse(["--only-streams-scale"]) }
        #expect(StreamsScale.phaseName(1_000_000) == "streams-1M")
        #expect(StreamsScale.phaseName(10_000_000) == "streams-10M")
        #expect(StreamsScale.streamCount(ofPhase: "streams-2k") == 2_000)

        // A tiny run through the driver: the figures land in the table and the JSON.
        var small = try Options.parse([
            "--streams-scale", "300", "--only-streams-scale", "--systems", "eventlog,sqlite,rocksdb", "--rounds", "1",
            "--streams-reads", "20", "--streams-appends", "200", "--streams-kill-events", "0",
        ])
        small.keep = false
        let directory = try makeTemporaryDirectory(prefix: "harness-streams-test")
        defer { removeTree(directory) }
        let run = try runBenchmarks(small, directory: directory, executable: nil)
        let text = run.textReport()
        #expect(text.contains("streams-300"))
        #expect(text.contains("append_expected_per_s"))
        let object = try #require(try JSONSerialization.jsonObject(with: try run.jsonData()) as? [String: Any])
        let results = try #require(object["results"] as? [[String: Any]])
        #expect(results.contains { $0["system"] as? String == "sqlite" && $0["phase"] as? String == "streams-300" && $0["metric"] as? String == "open_clean_ms" })
        #expect(!results.contains { $0["phase"] as? String == "A1" })
        let notMeasured = try #require(object["not_measured"] as? [[String: Any]])
        #expect(notMeasured.contains { $0["system"] as? String == "rocksdb" })
        #expect(object["streams_scale"] != nil)
    }
}

/// SQLite with one deliberate flaw per run.
final class CarelessStore: StreamsScaleStore {
    enum Flaw: CaseIterable { case readsNeighbourStream, ignoresExpectations, dropsLastEvent }
    nonisolated(unsafe) static var flaw = Flaw.readsNeighbourStream
    let inner: SQLitePeer

    init(directory: String, mode: OpenMode, config: StoreConfig) throws {
        inner = try SQLitePeer(directory: directory, mode: mode, config: config)
    }

    func append(_ events: EventChunk.Events, _ range: Range<Int>) throws { try inner.append(events, range) }
    func finishBulk() throws { try inner.finishBulk() }
    func close() throws { try inner.close() }
    func scanAll(into sum: inout ReadSum) throws { try inner.scanAll(into: &sum) }
    static var readsStreams: Bool { true }
    func read(position: UInt64, into sum: inout ReadSum) throws -> Bool { try inner.read(position: position, into: &sum) }

    func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int {
        switch Self.flaw {
        case .readsNeighbourStream:
            guard let k = AggregateWorkload.streamNumber(of: name) else { return 0 }
            let other = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
            defer { other.deallocate() }
            let length = AggregateWorkload.writeName(k == 0 ? 1 : k - 1, into: other)
            return try inner.readStream(UnsafeRawBufferPointer(start: other, count: length), into: &sum)
        case .dropsLastEvent:
            var mine = ReadSum()
            let count = try inner.readStream(name, into: &mine)
            mine.events -= 1
            sum.add(mine)
            return count - 1
        case .ignoresExpectations:
            return try inner.readStream(name, into: &sum)
        }
    }

    typealias ExpectedBatch = SQLitePeer.ExpectedBatch
    func prepareExpected(_ events: EventChunk.Events, _ range: Range<Int>) throws -> ExpectedBatch {
        try inner.prepareExpected(events, range)
    }
    func appendExpected(_ batch: ExpectedBatch) throws {
        if Self.flaw == .ignoresExpectations {
            // Appends without looking at the stream's version; a stale
            // expectation then collides only with the unique index.
            do { try inner.append(batch.events, batch.range) } catch { throw BenchError("\(error)") }
            return
        }
        try inner.appendExpected(batch)
    }
}
