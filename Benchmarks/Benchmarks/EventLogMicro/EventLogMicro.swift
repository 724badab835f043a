// Micro-benchmarks of EventLog's hot paths, through its public API, with
// malloc counts (ordo-one/benchmark, MallocInterposer). The committed static
// thresholds (Thresholds/) hold each benchmark's allocation count; the
// tolerance below is zero, so a new allocation on a hot path fails
// `swift package benchmark thresholds check`. See ../../README.md.
//
// CRC32C, the batch encoder and the record decoder are internal to the
// library: they are measured here through the public calls that are little
// more than them (verify, an append to a `.none` log, a one-batch read).
import Benchmark
import EventLog
import Foundation
import Workload

/// A log of standard events in a fresh temporary directory, and a chunk of
/// generated events to append.
final class Fixture: @unchecked Sendable {
    let directory: String
    let log: Log
    let events: Int
    var chunk = EventChunk(capacity: 10_000)
    var random = SplitMix64(seed: WorkloadSeed.positions)

    /// A log holding `events` events (appended in batches of 100, `.none`),
    /// left open with `durability`.
    init(events: Int, durability: Durability = .none) throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        directory = base + "/eventlog-micro-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var generator = EventGenerator()
        chunk.fill(from: &generator, count: chunk.capacity)
        if events > 0 {
            let writer = try Log.open(at: directory, options: LogOptions(durability: .none))
            var done = 0
            while done < events {
                let count = min(events - done, chunk.capacity)
                chunk.fill(from: &generator, count: count)
                try Self.append(chunk.events, 0..<count, to: writer)
                done += count
            }
            try writer.close()
            chunk.fill(from: &generator, count: chunk.capacity)
        }
        log = try Log.open(at: directory, options: LogOptions(durability: durability))
        self.events = events
    }

    /// Appends `events[range]` in batches of 100.
    @inline(__always)
    static func append(_ events: EventChunk.Events, _ range: Range<Int>, to log: Log) throws {
        var i = range.lowerBound
        while i < range.upperBound {
            let end = min(i + 100, range.upperBound)
            let first = i
            try log.appendBatch { (batch: inout BatchBuilder) throws in
                for j in first..<end {
                    let event = events[j]
                    try batch.append(stream: event.stream, type: event.type, data: event.payload)
                }
            }
            i = end
        }
    }

    func remove() {
        try? log.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

nonisolated(unsafe) var fixture: Fixture?

func makeFixture(events: Int) -> () async throws -> Void {
    { fixture = try Fixture(events: events) }
}

func removeFixture() async throws {
    fixture?.remove()
    fixture = nil
}

let benchmarks: @Sendable () -> Void = {
    // Allocation counts are deterministic: no tolerance. Wall clock on this
    // shared machine is not: it is reported, not checked.
    let noNewAllocations = BenchmarkThresholds(absolute: BenchmarkThresholds.Absolute.strict)
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        maxDuration: .seconds(1),
        maxIterations: 10_000,
        thresholds: [.mallocCountTotal: noNewAllocations])

    // CRC32C over every byte of a 10,000-event log (2.3 MB): what `verify`
    // spends its time on (it also opens and maps the files).
    Benchmark(
        "crc32c-verify-10k-events",
        configuration: .init(
            maxIterations: 200,
            thresholds: [.mallocCountTotal: BenchmarkThresholds(relative: [.p90: 5])]),
        closure: { benchmark in
            let path = fixture!.directory
            for _ in benchmark.scaledIterations { blackHole(try Log.verify(at: path)) }
        },
        setup: makeFixture(events: 10_000), teardown: removeFixture)

    // Batch encode: 100 events encoded (with their CRC32Cs) into the
    // writer's buffer and written to the active segment, no sync.
    Benchmark(
        "append-batch-of-100",
        configuration: .init(maxIterations: 5_000),
        closure: { benchmark in
            let f = fixture!
            let events = f.chunk.events
            for i in benchmark.scaledIterations {
                let first = (i % 100) * 100
                try Fixture.append(events, first..<(first + 100), to: f.log)
            }
        },
        setup: makeFixture(events: 0), teardown: removeFixture)

    Benchmark(
        "append-one-event",
        configuration: .init(maxIterations: 20_000),
        closure: { benchmark in
            let f = fixture!
            let events = f.chunk.events
            for i in benchmark.scaledIterations {
                try Fixture.append(events, (i % 10_000)..<(i % 10_000 + 1), to: f.log)
            }
        },
        setup: makeFixture(events: 0), teardown: removeFixture)

    // Batch decode: one batch of 100 read whole (its checksum verified,
    // every record decoded and lent).
    Benchmark(
        "read-batch-of-100",
        configuration: .init(scalingFactor: .kilo),
        closure: { benchmark in
            let f = fixture!
            var sum = 0
            for _ in benchmark.scaledIterations {
                let batch = f.random.next() % UInt64(f.events / 100)
                try f.log.read(from: batch * 100, maxCount: 100) { view in sum &+= view.data.count }
            }
            blackHole(sum)
        },
        setup: makeFixture(events: 100_000), teardown: removeFixture)

    // Index lookup: a point read by position (sparse index, then the
    // record's own checksum).
    Benchmark(
        "point-read-of-100k",
        configuration: .init(scalingFactor: .kilo),
        closure: { benchmark in
            let f = fixture!
            var sum = 0
            for _ in benchmark.scaledIterations {
                let position = f.random.next() % UInt64(f.events)
                sum &+= try f.log.withEvent(at: position) { view in view.data.count }
            }
            blackHole(sum)
        },
        setup: makeFixture(events: 100_000), teardown: removeFixture)

    Benchmark(
        "scan-100k-events",
        configuration: .init(maxIterations: 100),
        closure: { benchmark in
            let f = fixture!
            for _ in benchmark.scaledIterations {
                var sum = 0
                try f.log.read(from: 0) { view in sum &+= view.data.count }
                blackHole(sum)
            }
        },
        setup: makeFixture(events: 100_000), teardown: removeFixture)
}
