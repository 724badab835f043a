import Histogram
import Workload

/// Events per batch (one transaction each) in A1 and A2.
public let batchSize = 100

/// How much each phase does (WORKLOAD.md defaults; `--quick` shrinks them).
public struct PhaseSizes: Sendable, Equatable {
    /// Events in A1 (and the position range of R3).
    public var n = 1_000_000
    /// Events appended in A2 (batches of 100, durable each).
    public var a2 = 100_000
    /// Single durable appends in A3.
    public var a3 = 2_000
    /// Random whole streams read in R2.
    public var r2 = 1_000
    /// Random point reads in R3.
    public var r3 = 100_000
    /// The concurrent-appenders phases (C1…, every system): thread counts, and single
    /// durable appends per thread.
    public var threads = [1, 2, 4, 8]
    public var appendsPerThread = 2_000
    /// EventLog's open-after-kill phase: events the killed writer had
    /// acknowledged (at least) when it was killed; 0 skips it.
    public var crashEvents = 1_000_000

    public init() {}

    public static let standard = PhaseSizes()
    public static var quick: PhaseSizes {
        var sizes = PhaseSizes()
        sizes.n = 100_000
        sizes.a2 = 10_000
        sizes.a3 = 500
        sizes.r2 = 200
        sizes.r3 = 20_000
        sizes.appendsPerThread = 250
        sizes.crashEvents = 100_000
        return sizes
    }
}

/// One timed append run.
public struct AppendMeasure: Sendable {
    public var events = 0
    /// Time inside the store calls (generation excluded), including the
    /// final durability step and close for A1.
    public var seconds = 0.0
    public var logicalBytes: UInt64 = 0
    public var allocations: UInt64 = 0
    /// A1's final durability step plus close.
    public var finishSeconds = 0.0
}

/// One timed read run and what it read.
public struct ReadMeasure: Sendable {
    /// Streams (R2) or reads (R3) or events (R1) requested.
    public var operations = 0
    public var read = ReadSum()
    public var seconds = 0.0
    public var allocations: UInt64 = 0
}

/// Latencies of single appends (nanoseconds), as an HDR histogram (3 significant digits).
public struct LatencyMeasure: Sendable {
    public var histogram = LatencyMeasure.emptyHistogram()
    /// Exact mean, microseconds.
    public var meanMicroseconds = 0.0
    public var seconds = 0.0
    public var allocations: UInt64 = 0

    public static func emptyHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
    }

    public var count: UInt64 { histogram.totalCount }
    /// Microseconds at percentile `p` (0…100).
    public func microseconds(atPercentile p: Double) -> Double { Double(histogram.valueAtPercentile(p)) / 1000 }
}

/// A figure outside the common phases (EventLog's extra phases).
public struct Figure: Sendable {
    public let phase: String
    public let metric: String
    public let value: Double
    public init(_ phase: String, _ metric: String, _ value: Double) {
        self.phase = phase
        self.metric = metric
        self.value = value
    }
}

/// What one system did in one round, and what it read: the phase runner
/// checks every read against the generator and throws on a mismatch; the
/// tests check the outcome again.
public struct RoundOutcome: Sendable {
    public let system: SystemID
    /// "" or "-lz4" (EventLog's compressed store).
    public var suffix = ""
    public var a1: AppendMeasure?
    /// Allocated bytes of all the store's files after A1 and close.
    public var diskBytes: UInt64 = 0
    public var r1: ReadMeasure?
    /// nil: the system cannot read streams yet.
    public var r2: ReadMeasure?
    public var r3: ReadMeasure?
    public var a2: AppendMeasure?
    public var a3: LatencyMeasure?
    public var peakRSS: UInt64?
    /// Peak RSS minus the RSS when the system's round began: its own memory.
    public var rssGrowth: UInt64?
    /// Each kind of resident memory at its peak over the system's round
    /// (`MemorySampler`: anonymous, file-backed, shared), and when it began.
    public var residentPeak: ResidentMemory?
    public var residentAtStart: ResidentMemory?
    /// Each phase's peaks of resident memory by kind, in the order the
    /// phases ran (`MemorySampler.endPhase()`); empty when no sampler ran.
    public var phaseMemory: [(phase: String, peak: ResidentMemory)] = []
    /// Latency histograms of EventLog's concurrent-appender phases, by phase name.
    public var concurrentLatency: [String: LatencyMeasure] = [:]
    public var extra: [Figure] = []

    public init(system: SystemID) { self.system = system }
}

/// Appends the generator's next `count` events to `store` in batches of
/// `batchSize`, generating them in untimed chunks (`append_n` in common.h).
/// Only the store calls are timed.
func appendEvents<S: Store>(
    to store: S, from generator: inout EventGenerator, count: Int, chunk: inout EventChunk
) throws -> AppendMeasure {
    var run = AppendMeasure()
    run.events = count
    var done = 0
    while done < count {
        let m = min(count - done, chunk.capacity)
        chunk.fill(from: &generator, count: m)
        run.logicalBytes += chunk.logicalBytes
        let events = chunk.events
        let allocationsBefore = allocations()
        let start = now()
        var i = 0
        while i < m {
            let end = min(i + batchSize, m)
            try store.append(events, i..<end)
            i = end
        }
        run.seconds += now() - start
        run.allocations += allocations() - allocationsBefore
        done += m
    }
    return run
}

/// The phases of WORKLOAD.md for one system, one round: A1 (+ on-disk
/// size), R1, R2, R3 on store A, then A2 and A3 on store B, in the order of
/// `run_all` in peers/src/common.h. Generic over the store, so every timed
/// call is a direct call.
public struct SystemRound<S: Store> {
    public let system: SystemID
    public var config: StoreConfig
    public let sizes: PhaseSizes
    public let expectations: Expectations
    /// Parent directory of this round's stores (each is deleted after use).
    public let directory: String
    /// Appended to phase names and store paths ("-lz4").
    public var suffix = ""
    /// Run A2 and A3 (store B).
    public var durablePhases = true
    /// Keep the stores after use.
    public var keep = false
    /// Runs on store A's path after A1 closed it, before R1 (untimed by the
    /// runner): EventLog's open-after-clean-shutdown phase.
    public var afterBulkClose: ((String) throws -> [Figure])?
    /// The round's memory sampler: each phase's peaks go into
    /// `RoundOutcome.phaseMemory` (A1 with its sync and close; R1 with the
    /// reopen before it; A2 with store B's open; A3 with its close).
    public var memory: MemorySampler?

    public init(system: SystemID, sizes: PhaseSizes, expectations: Expectations, directory: String) {
        precondition(expectations.n == sizes.n)
        self.system = system
        self.config = system.config
        self.sizes = sizes
        self.expectations = expectations
        self.directory = directory
    }

    public func run() throws -> RoundOutcome {
        var outcome = RoundOutcome(system: system)
        outcome.suffix = suffix
        let pathA = directory + "/\(system.name)\(suffix)-a"
        try runStoreA(at: pathA, into: &outcome)
        if !keep { removeTree(pathA) }
        if durablePhases {
            let pathB = directory + "/\(system.name)\(suffix)-b"
            try runStoreB(at: pathB, into: &outcome)
            if !keep { removeTree(pathB) }
        }
        return outcome
    }

    private func phase(_ name: String) -> String { name + suffix }

    /// Ends phase `name` in the sampler, if any, keeping its peaks.
    private func endPhase(_ name: String, _ outcome: inout RoundOutcome) {
        guard let memory else { return }
        outcome.phaseMemory.append((phase(name), memory.endPhase()))
    }

    func runStoreA(at path: String, into outcome: inout RoundOutcome) throws {
        removeTree(path)
        try createDirectory(path)

        // A1: append everything, then one durability step and close, timed.
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var chunk = EventChunk()
        var store: S? = try S(directory: path, mode: .bulk, config: config)
        var a1 = try appendEvents(to: store!, from: &generator, count: sizes.n, chunk: &chunk)
        let allocationsBefore = allocations()
        let start = now()
        try store!.finishBulk()
        try store!.close()
        store = nil
        fsyncPath(path)
        a1.finishSeconds = now() - start
        a1.seconds += a1.finishSeconds
        a1.allocations += allocations() - allocationsBefore
        guard a1.logicalBytes == expectations.logicalBytes else {
            throw BenchError("\(system) \(phase("A1")): appended \(a1.logicalBytes) logical bytes, expected \(expectations.logicalBytes)")
        }
        outcome.a1 = a1
        endPhase("A1", &outcome)
        outcome.diskBytes = allocatedBytes(under: path)
        if let afterBulkClose {
            outcome.extra += try afterBulkClose(path)
            endPhase("open-clean", &outcome)
        }

        // R1, R2, R3 on the reopened store.
        let reader = try S(directory: path, mode: .reading, config: config)
        outcome.r1 = try scan(reader)
        endPhase("R1", &outcome)
        if S.readsStreams {
            outcome.r2 = try readStreams(reader)
            endPhase("R2", &outcome)
        }
        outcome.r3 = try readPoints(reader)
        try reader.close()
        endPhase("R3", &outcome)
    }

    /// R1: every event in position order.
    func scan(_ store: S) throws -> ReadMeasure {
        var measure = ReadMeasure()
        measure.operations = sizes.n
        var sum = ReadSum()
        let allocationsBefore = allocations()
        let start = now()
        try store.scanAll(into: &sum)
        measure.seconds = now() - start
        measure.allocations = allocations() - allocationsBefore
        measure.read = sum
        let expected = expectations.scan
        guard sum == expected else {
            throw BenchError("\(system) \(phase("R1")) check failed: read \(sum), expected \(expected)")
        }
        return measure
    }

    /// R2: random whole streams, each checked for its length (versions are
    /// checked by the store: 0, 1, 2, … with no gap).
    func readStreams(_ store: S) throws -> ReadMeasure {
        let draws = Expectations.streamDraws(sizes.r2)
        var measure = ReadMeasure()
        measure.operations = sizes.r2
        var sum = ReadSum()
        let name = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
        defer { name.deallocate() }
        let allocationsBefore = allocations()
        let start = now()
        for k in draws {
            let length = writeStreamName(k, into: name)
            let count = try store.readStream(UnsafeRawBufferPointer(start: name, count: length), into: &sum)
            guard count == Int(expectations.streamCounts[Int(k)]) else {
                throw BenchError("\(system) \(phase("R2")) check failed: stream order-\(k) has \(count) events, expected \(expectations.streamCounts[Int(k)])")
            }
        }
        measure.seconds = now() - start
        measure.allocations = allocations() - allocationsBefore
        measure.read = sum
        let expected = expectations.streams(sizes.r2)
        guard sum == expected else {
            throw BenchError("\(system) \(phase("R2")) check failed: read \(sum), expected \(expected)")
        }
        return measure
    }

    /// R3: random positions.
    func readPoints(_ store: S) throws -> ReadMeasure {
        var measure = ReadMeasure()
        measure.operations = sizes.r3
        var sum = ReadSum()
        var rng = SplitMix64(seed: WorkloadSeed.positions)
        let n = UInt64(sizes.n)
        let allocationsBefore = allocations()
        let start = now()
        for _ in 0..<sizes.r3 {
            let position = rng.next() % n
            guard try store.read(position: position, into: &sum) else {
                throw BenchError("\(system) \(phase("R3")) check failed: position \(position) not found")
            }
        }
        measure.seconds = now() - start
        measure.allocations = allocations() - allocationsBefore
        measure.read = sum
        let expected = expectations.points(sizes.r3)
        guard sum == expected else {
            throw BenchError("\(system) \(phase("R3")) check failed: read \(sum), expected \(expected)")
        }
        return measure
    }

    /// A2 (fresh store B, batches of 100, durable each), then A3 (the same
    /// store and generator, single durable appends, the latency of each).
    func runStoreB(at path: String, into outcome: inout RoundOutcome) throws {
        removeTree(path)
        try createDirectory(path)
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var chunk = EventChunk()
        let store = try S(directory: path, mode: .durable, config: config)
        outcome.a2 = try appendEvents(to: store, from: &generator, count: sizes.a2, chunk: &chunk)
        endPhase("A2", &outcome)

        var a3 = LatencyMeasure()
        var single = EventChunk(capacity: 1)
        var total: UInt64 = 0
        for _ in 0..<sizes.a3 {
            single.fill(from: &generator, count: 1)
            let events = single.events
            let allocationsBefore = allocations()
            let start = nanoseconds()
            try store.append(events, 0..<1)
            let elapsed = nanoseconds() - start
            a3.allocations += allocations() - allocationsBefore
            _ = a3.histogram.record(max(elapsed, 1))
            total += elapsed
        }
        a3.seconds = Double(total) / 1e9
        a3.meanMicroseconds = sizes.a3 > 0 ? Double(total) / Double(sizes.a3) / 1000 : 0
        outcome.a3 = a3
        try store.close()
        endPhase("A3", &outcome)
    }
}
