import Foundation
import Harness
import Testing
import Workload

/// Every system runs every phase at a tiny N; what each phase read is
/// checked against the generator, independently of the runner's own checks.
@Suite(.serialized) struct PhaseTests {
    static let sizes: PhaseSizes = {
        var sizes = PhaseSizes()
        sizes.n = 3_000
        sizes.a2 = 500
        sizes.a3 = 20
        sizes.r2 = 50
        sizes.r3 = 400
        sizes.threads = [1, 3]
        sizes.appendsPerThread = 10
        sizes.crashEvents = 2_000
        return sizes
    }()
    static let expectations = Expectations(n: sizes.n)

    /// What the generator says R1, R2 and R3 must read, computed here
    /// without the harness's `Expectations`.
    static let reference: (scan: ReadSum, streams: ReadSum, points: ReadSum) = {
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var perPosition: [ReadSum] = []
        var perStream = [ReadSum](repeating: ReadSum(), count: EventGenerator.streamCount)
        var scan = ReadSum()
        for _ in 0..<sizes.n {
            generator.next()
            var one = ReadSum()
            one.add(streamCount: generator.stream.count, typeCount: generator.type.count, data: generator.payload)
            perPosition.append(one)
            perStream[Int(generator.streamNumber)].add(one)
            scan.add(one)
        }
        var streams = ReadSum()
        var rng = SplitMix64(seed: 43)
        for _ in 0..<sizes.r2 { streams.add(perStream[Int(rng.next() % 10_000)]) }
        var points = ReadSum()
        rng = SplitMix64(seed: 44)
        for _ in 0..<sizes.r3 { points.add(perPosition[Int(rng.next() % UInt64(sizes.n))]) }
        return (scan, streams, points)
    }()

    func directory() throws -> String { try makeTemporaryDirectory(prefix: "harness-test") }

    func runOne(_ system: SystemID) throws -> RoundOutcome {
        let directory = try directory()
        defer { removeTree(directory) }
        var options = Options()
        options.skip = ["lz4", "enc", "concurrent", "open"]
        let outcomes = try runSystem(
            system, sizes: Self.sizes, expectations: Self.expectations, directory: directory, options: options,
            executable: nil)
        #expect(outcomes.count == 1)
        return outcomes[0]
    }

    func checkCommonPhases(_ outcome: RoundOutcome, streams: Bool) throws {
        let sizes = Self.sizes
        let a1 = try #require(outcome.a1)
        #expect(a1.events == sizes.n)
        #expect(a1.logicalBytes == Self.reference.scan.bytes)
        #expect(a1.seconds > 0)
        #expect(outcome.diskBytes > 0)
        #expect(outcome.r1?.read == Self.reference.scan)
        if streams {
            #expect(outcome.r2?.read == Self.reference.streams)
            #expect(outcome.r2?.operations == sizes.r2)
        } else {
            #expect(outcome.r2 == nil)
        }
        #expect(outcome.r3?.read == Self.reference.points)
        #expect(outcome.a2?.events == sizes.a2)
        #expect(outcome.a3?.count == UInt64(sizes.a3))
        #expect((outcome.a3?.microseconds(atPercentile: 50) ?? 0) > 0)
    }

    @Test func referenceMatchesExpectations() {
        #expect(Self.expectations.scan == Self.reference.scan)
        #expect(Self.expectations.streams(Self.sizes.r2) == Self.reference.streams)
        #expect(Self.expectations.points(Self.sizes.r3) == Self.reference.points)
    }

    @Test func eventLog() throws {
        try checkCommonPhases(try runOne(.eventlog), streams: EventLogStore.readsStreams)
    }

    @Test(arguments: [SystemID.sqlite, .sqliteTuned, .lmdb, .rocksdb, .rocksdbTuned])
    func peer(_ system: SystemID) throws {
        try checkCommonPhases(try runOne(system), streams: true)
    }

    @Test func eventLogExtraPhases() throws {
        let directory = try directory()
        defer { removeTree(directory) }
        var options = Options()
        options.skip = []
        let executable = try #require(Self.benchExecutable(), "eventlog-bench is built beside the tests")
        let outcomes = try runSystem(
            .eventlog, sizes: Self.sizes, expectations: Self.expectations, directory: directory, options: options,
            executable: executable)
        #expect(outcomes.count == 3)
        let lz4 = outcomes[1]
        #expect(lz4.suffix == "-lz4")
        #expect(lz4.r1?.read == Self.reference.scan)
        #expect(lz4.r3?.read == Self.reference.points)
        #expect(lz4.a2 == nil)
        // The encrypted log: every phase checked against the generator as the plain one is.
        let encrypted = outcomes[2]
        #expect(encrypted.suffix == "-enc")
        #expect(encrypted.a1?.events == Self.sizes.n)
        #expect(encrypted.r1?.read == Self.reference.scan)
        #expect(encrypted.r3?.read == Self.reference.points)
        #expect(encrypted.a2 == nil)
        let figures = Dictionary(outcomes[0].extra.map { ($0.phase + "/" + $0.metric, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(figures["open-clean/open_ms"] != nil)
        for threads in Self.sizes.threads {
            #expect((figures["C\(threads)/events_per_s"] ?? 0) > 0)
            #expect(outcomes[0].concurrentLatency["C\(threads)"]?.count == UInt64(threads * Self.sizes.appendsPerThread))
        }
        #expect((figures["open-kill9/recovered_events"] ?? 0) >= Double(Self.sizes.crashEvents))
        #expect(figures["open-kill9/open_ms"] != nil)
    }

    /// Each peer's C phases: every thread count reports events/s and
    /// latencies of every append (the runner read them all back).
    @Test(arguments: [SystemID.sqlite, .lmdb, .rocksdb])
    func peerConcurrentPhases(_ system: SystemID) throws {
        let directory = try directory()
        defer { removeTree(directory) }
        var options = Options()
        options.skip = ["lz4", "open"]
        let outcomes = try runSystem(
            system, sizes: Self.sizes, expectations: Self.expectations, directory: directory, options: options, executable: nil)
        let figures = Dictionary(outcomes[0].extra.map { ($0.phase + "/" + $0.metric, $0.value) }, uniquingKeysWith: { a, _ in a })
        for threads in Self.sizes.threads {
            #expect((figures["C\(threads)/events_per_s"] ?? 0) > 0)
            #expect(outcomes[0].concurrentLatency["C\(threads)"]?.count == UInt64(threads * Self.sizes.appendsPerThread))
        }
    }

    /// EventLog's C phases report how many appends a sync covered: with one
    /// thread exactly one each (a mean above 1 would count wrongly).
    @Test func eventLogGroupCommitFigures() throws {
        let directory = try directory()
        defer { removeTree(directory) }
        let (one, _) = try EventLogPhases.concurrentAppenders(threads: 1, appendsPerThread: 20, directory: directory)
        let figures = Dictionary(one.map { ($0.metric, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(figures["appends_per_sync"] == 1)
        #expect((figures["sync_us"] ?? 0) > 0)
        let (four, _) = try EventLogPhases.concurrentAppenders(threads: 4, appendsPerThread: 20, directory: directory)
        let perSync = try #require(four.first { $0.metric == "appends_per_sync" }?.value)
        #expect(perSync >= 1 && perSync <= 4)
    }

    /// A C phase whose store lost an append must fail.
    @Test func concurrentLossFails() throws {
        let directory = try directory()
        defer { removeTree(directory) }
        #expect(throws: BenchError.self) {
            _ = try ConcurrentPhase.run(LossyConcurrentStore.self, threads: 3, appendsPerThread: 10, directory: directory, name: "lossy")
        }
        // The same store without the flaw passes.
        LossyConcurrentStore.dropsOne = false
        defer { LossyConcurrentStore.dropsOne = true }
        _ = try ConcurrentPhase.run(LossyConcurrentStore.self, threads: 3, appendsPerThread: 10, directory: directory, name: "lossy")
    }

    /// A store that answers fast and wrong must fail the run.
    @Test func wrongAnswersFail() throws {
        let directory = try directory()
        defer { removeTree(directory) }
        for flaw in LossyStore.Flaw.allCases {
            LossyStore.flaw = flaw
            let round = SystemRound<LossyStore>(
                system: .sqlite, sizes: Self.sizes, expectations: Self.expectations, directory: directory)
            #expect(throws: BenchError.self, "flaw \(flaw)") { _ = try round.run() }
        }
    }

    /// eventlog-bench, built beside this test bundle (for open-kill9's child).
    static func benchExecutable() -> String? {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            let candidate = url.appendingPathComponent("eventlog-bench").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// SQLite with one deliberate flaw per run.
final class LossyStore: Store {
    enum Flaw: CaseIterable { case scanSkipsOne, streamDropsLast, pointReadsNeighbour }
    nonisolated(unsafe) static var flaw = Flaw.scanSkipsOne
    let inner: SQLitePeer

    init(directory: String, mode: OpenMode, config: StoreConfig) throws {
        inner = try SQLitePeer(directory: directory, mode: mode, config: config)
    }

    func append(_ events: EventChunk.Events, _ range: Range<Int>) throws { try inner.append(events, range) }
    func finishBulk() throws { try inner.finishBulk() }
    func close() throws { try inner.close() }

    func scanAll(into sum: inout ReadSum) throws {
        var all = ReadSum()
        try inner.scanAll(into: &all)
        if Self.flaw == .scanSkipsOne {
            all.events -= 1
        }
        sum.add(all)
    }

    static var readsStreams: Bool { true }

    func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int {
        var mine = ReadSum()
        let count = try inner.readStream(name, into: &mine)
        if Self.flaw == .streamDropsLast && count > 0 {
            mine.sum &-= 1
        }
        sum.add(mine)
        return count
    }

    func read(position: UInt64, into sum: inout ReadSum) throws -> Bool {
        let target = Self.flaw == .pointReadsNeighbour && position > 0 ? position - 1 : position
        return try inner.read(position: target, into: &sum)
    }
}

/// SQLite's C phase store, but the appender of event 7 does not write it
/// (while `dropsOne`).
final class LossyConcurrentStore: ConcurrentStore {
    nonisolated(unsafe) static var dropsOne = true
    let inner: SQLitePeer

    init(concurrentAt directory: String, config: StoreConfig) throws {
        inner = try SQLitePeer(concurrentAt: directory, config: config)
    }

    func makeAppender() throws -> Appender { Appender(inner: try inner.makeAppender()) }
    func scanAndClose() throws -> ReadSum { try inner.scanAndClose() }

    final class Appender: ConcurrentAppender {
        let inner: SQLitePeer.Appender
        init(inner: SQLitePeer.Appender) { self.inner = inner }
        func appendOne(_ events: EventChunk.Events, _ j: Int) throws {
            if j == 7 && LossyConcurrentStore.dropsOne { return }
            try inner.appendOne(events, j)
        }
        func close() throws { try inner.close() }
    }
}
