import EventLog
import Workload

/// Events per batch (one transaction each) in A1 and A2.
let batchSize = 100

/// What the generator produced for A1's events, kept to check the reads.
struct Expectations {
    /// Payload length of the event at each position.
    var payloadLengths: [UInt16]
    /// Sum of len(stream) + len(type) + len(payload).
    var logicalBytes: UInt64 = 0
    /// The read fold over all events: Σ (length + first byte + last byte).
    var readSum: UInt64 = 0

    init(n: Int) { payloadLengths = Array(repeating: 0, count: n) }

    mutating func note(_ events: EventChunk.Events) {
        for i in 0..<events.count {
            let event = events[i]
            payloadLengths[Int(event.position)] = UInt16(event.payload.count)
            logicalBytes += UInt64(event.logicalBytes)
            readSum &+= UInt64(event.payload.count) &+ UInt64(event.payload.first!) &+ UInt64(event.payload.last!)
        }
    }
}

/// The consumer's work per event read, the same as `rsum_add` in
/// peers/src/common.h: fold length, first and last payload byte.
struct ReadSum {
    var events: UInt64 = 0
    var bytes: UInt64 = 0
    var sum: UInt64 = 0

    @inline(__always) mutating func add(_ view: EventView) {
        let data = view.data
        events &+= 1
        bytes &+= UInt64(view.streamBytes.count &+ view.typeBytes.count &+ data.count)
        let first = data.isEmpty ? 0 : data[0]
        let last = data.isEmpty ? 0 : data[data.count - 1]
        sum &+= UInt64(data.count) &+ UInt64(first) &+ UInt64(last)
    }
}

/// What one timed append run measured.
struct AppendRun {
    var seconds = 0.0
    var logicalBytes: UInt64 = 0
    var allocations: UInt64 = 0
}

/// Appends the generator's next `count` events to `log` in batches of
/// `batchSize`, generating them in untimed chunks (`append_n` in common.h).
/// Only the store calls are timed; `note` sees each chunk, untimed.
func appendEvents(
    to log: Log, from generator: inout EventGenerator, count: Int, chunk: inout EventChunk,
    note: (EventChunk.Events) -> Void = { _ in }
) throws -> AppendRun {
    var run = AppendRun()
    var done = 0
    while done < count {
        let m = min(count - done, chunk.capacity)
        chunk.fill(from: &generator, count: m)
        run.logicalBytes += chunk.logicalBytes
        let events = chunk.events
        note(events)

        let allocationsBefore = allocations()
        let start = now()
        var i = 0
        while i < m {
            let end = min(i + batchSize, m)
            let first = i
            try log.appendBatch { (batch: inout BatchBuilder) throws(EventLogError) in
                for j in first..<end {
                    let event = events[j]
                    try batch.append(
                        stream: event.stream, type: event.type, data: event.payload, version: UInt64(event.version))
                }
            }
            i = end
        }
        run.seconds += now() - start
        run.allocations += allocations() - allocationsBefore
        done += m
    }
    return run
}

extension Durability {
    var label: String {
        switch self {
        case .always: return "always"
        case .none: return "none"
        case .interval(let ms): return "interval(\(ms) ms)"
        }
    }
}

/// The phases of WORKLOAD.md on EventLog, one round.
struct Round {
    let options: Options
    /// Parent of this round's stores.
    let directory: String
    var results: Results

    static let bulkDurability = "none + sync()+close() at end (timed)"
    static let durableLabel = "always (fdatasync per append)"

    /// A1 (fresh store, `.none`, one sync + close at the end, timed), its
    /// on-disk size, then R1 and R3 on the same store.
    /// `suffix` names the variant in the phase names ("" or "-lz4").
    mutating func runStoreA(suffix: String, compression: Compression, expectations: inout Expectations?) throws {
        let label = "A1" + suffix
        let path = directory + "/eventlog-a" + suffix
        removeTree(path)
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var chunk = EventChunk()
        var noted = expectations ?? Expectations(n: options.n)
        let mustNote = expectations == nil

        let options = LogOptions(durability: .none, compression: compression)
        let log = try Log.open(at: path, options: options)
        var run = try appendEvents(to: log, from: &generator, count: self.options.n, chunk: &chunk) { events in
            if mustNote { noted.note(events) }
        }
        let allocationsBefore = allocations()
        let start = now()
        try log.sync()
        try log.close()
        let finish = now() - start
        run.seconds += finish
        run.allocations += allocations() - allocationsBefore
        if mustNote { expectations = noted }
        let expected = expectations!
        guard run.logicalBytes == expected.logicalBytes else {
            throw BenchError("\(label): generated \(run.logicalBytes) logical bytes, expected \(expected.logicalBytes)")
        }

        let n = Double(self.options.n)
        let disk = allocatedBytes(under: path)
        results.add(label, "events_per_s", n / run.seconds, durability: Self.bulkDurability)
        results.add(label, "mb_per_s", Double(run.logicalBytes) / 1e6 / run.seconds, durability: Self.bulkDurability)
        results.add(label, "sync_close_ms", finish * 1000, durability: Self.bulkDurability)
        results.add(label, "allocs_per_event", Double(run.allocations) / n, durability: Self.bulkDurability)
        results.add(label, "disk_mb", Double(disk) / 1e6, durability: Self.bulkDurability)
        results.add(label, "disk_ratio", Double(disk) / Double(run.logicalBytes), durability: Self.bulkDurability)
        results.add(label, "logical_mb", Double(run.logicalBytes) / 1e6, durability: Self.bulkDurability)

        try runReads(path: path, suffix: suffix, expected: expected)
        if !self.options.keep { removeTree(path) }
    }

    /// R1 (reopen, scan everything) and R3 (random point reads) on store A.
    mutating func runReads(path: String, suffix: String, expected: Expectations) throws {
        let n = options.n
        let openStart = now()
        let log = try Log.open(at: path, options: LogOptions(readOnly: true))
        let openSeconds = now() - openStart
        defer { try? log.close() }

        // R1: every event in position order.
        var scan = ReadSum()
        var allocationsBefore = allocations()
        var start = now()
        let next = try log.read(from: 0) { view in scan.add(view) }
        var seconds = now() - start
        let scanAllocations = allocations() - allocationsBefore
        guard scan.events == UInt64(n), next == UInt64(n), scan.bytes == expected.logicalBytes,
              scan.sum == expected.readSum
        else {
            throw BenchError(
                "R1\(suffix) check failed: \(scan.events) events, \(scan.bytes) bytes, fold \(scan.sum), next \(next); "
                    + "expected \(n) events, \(expected.logicalBytes) bytes, fold \(expected.readSum)")
        }
        results.add("R1" + suffix, "events_per_s", Double(n) / seconds, durability: "read")
        results.add("R1" + suffix, "mb_per_s", Double(scan.bytes) / 1e6 / seconds, durability: "read")
        results.add("R1" + suffix, "allocs_per_event", Double(scanAllocations) / Double(n), durability: "read")
        results.add("R1" + suffix, "open_ms", openSeconds * 1000, durability: "read")

        // R2 needs a stream index; the engine has none yet.
        if suffix.isEmpty { results.notMeasured("R2", "streams_per_s", reason: "no stream index yet") }

        // R3: random positions; each length checked against the generator.
        // The expected lengths are laid out in read order first (untimed).
        let reads = options.r3Reads
        var positions = SplitMix64(seed: WorkloadSeed.positions)
        var expectedLengths = [UInt16](repeating: 0, count: reads)
        for i in 0..<reads { expectedLengths[i] = expected.payloadLengths[Int(positions.next() % UInt64(n))] }
        positions = SplitMix64(seed: WorkloadSeed.positions)
        var point = ReadSum()
        var mismatches = 0
        allocationsBefore = allocations()
        start = now()
        try expectedLengths.withUnsafeBufferPointer { expectedLengths in
            for i in 0..<reads {
                let position = positions.next() % UInt64(n)
                let length = try log.withEvent(at: position) { view in
                    point.add(view)
                    return view.data.count
                }
                if length != Int(expectedLengths[i]) { mismatches += 1 }
            }
        }
        seconds = now() - start
        let pointAllocations = allocations() - allocationsBefore
        guard mismatches == 0, point.events == UInt64(reads) else {
            throw BenchError("R3\(suffix) check failed: \(mismatches) of \(reads) reads returned a payload of the wrong length")
        }
        results.add("R3" + suffix, "reads_per_s", Double(reads) / seconds, durability: "read")
        results.add("R3" + suffix, "allocs_per_read", Double(pointAllocations) / Double(reads), durability: "read")
        _ = point.sum
    }

    /// A2 (fresh store B, batches of 100, durable each) then A3 (the same
    /// store and generator, single durable appends, latency of each).
    mutating func runStoreB() throws {
        let path = directory + "/eventlog-b"
        removeTree(path)
        var generator = EventGenerator(seed: WorkloadSeed.events)
        var chunk = EventChunk()
        let log = try Log.open(at: path, options: LogOptions(durability: .always))

        let run = try appendEvents(to: log, from: &generator, count: options.a2Events, chunk: &chunk)
        let n = Double(options.a2Events)
        results.add("A2", "events_per_s", n / run.seconds, durability: Self.durableLabel)
        results.add("A2", "mb_per_s", Double(run.logicalBytes) / 1e6 / run.seconds, durability: Self.durableLabel)
        results.add("A2", "batch_us_mean", run.seconds / (n / Double(batchSize)) * 1e6, durability: Self.durableLabel)
        results.add("A2", "allocs_per_event", Double(run.allocations) / n, durability: Self.durableLabel)

        var latencies = [Double](repeating: 0, count: options.a3Appends)
        let allocationsBefore = allocations()
        for i in 0..<options.a3Appends {
            generator.next()
            let stream = generator.stream, type = generator.type, payload = generator.payload
            let version = UInt64(generator.version)
            let start = now()
            try log.appendBatch { (batch: inout BatchBuilder) throws(EventLogError) in
                try batch.append(stream: stream, type: type, data: payload, version: version)
            }
            latencies[i] = (now() - start) * 1e6
        }
        let a3Allocations = allocations() - allocationsBefore
        try log.close()
        if !options.keep { removeTree(path) }

        let mean = latencies.reduce(0, +) / Double(latencies.count)
        latencies.sort()
        results.add("A3", "p50_us", percentile(latencies, 50), durability: Self.durableLabel)
        results.add("A3", "p99_us", percentile(latencies, 99), durability: Self.durableLabel)
        results.add("A3", "p999_us", percentile(latencies, 99.9), durability: Self.durableLabel)
        results.add("A3", "max_us", latencies.last!, durability: Self.durableLabel)
        results.add("A3", "mean_us", mean, durability: Self.durableLabel)
        results.add("A3", "allocs_per_append", Double(a3Allocations) / Double(options.a3Appends), durability: Self.durableLabel)
    }
}

/// Nearest-rank percentile of sorted values, `p` in (0, 100] (`pct` in common.h).
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    var index = Int((p / 100) * Double(sorted.count) + 0.999999) - 1
    index = max(0, min(sorted.count - 1, index))
    return sorted[index]
}
