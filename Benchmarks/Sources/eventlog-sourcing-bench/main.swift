// EventLogSourcing's figures (issue 14), in a release build:
//
//     swift build -c release --package-path Benchmarks --product eventlog-sourcing-bench
//     Benchmarks/.build/release/eventlog-sourcing-bench [--events N] [--loads L]
//
// 1. Loading an aggregate: 10,099 events with a snapshot every 100 (so the
//    latest snapshot is followed by 99 events, the worst case) against an
//    aggregate of 199 events with the same policy (the same work: one
//    snapshot and 99 events) and against a full replay of the 10,099 events.
// 2. A trivial projection's throughput (a count kept in the log), from a
//    log of N plain events (1,000,000 by default); and the same through a
//    `ProjectionStore` that receives owned events and does nothing.
import EventLog
import EventLogSourcing
import Foundation

struct ItemAdded: Codable, Sendable {
    var sku: String
    var quantity: Int
}

struct Cart: Aggregate {
    typealias Event = ItemAdded
    var items: [String: Int] = [:]
    var count = 0
    init() {}
    mutating func apply(_ event: ItemAdded) {
        items[event.sku, default: 0] += event.quantity
        count += 1
    }
}

struct Count: Projection {
    var count = 0
    init() {}
    mutating func apply(_ event: EventView) throws { count += 1 }
}

final class NullStore: ProjectionStore, @unchecked Sendable {
    var stored: UInt64?
    var events = 0
    func checkpoint() throws -> UInt64? { stored }
    func commit(_ events: [Event], checkpoint: UInt64) throws {
        self.events += events.count
        stored = checkpoint
    }
    func reset(checkpoint: UInt64) throws { stored = checkpoint }
}

func argument(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let parsed = Int(arguments[index + 1]) else { return value }
    return parsed
}

func seconds(_ duration: Duration) -> Double {
    let (s, atto) = duration.components
    return Double(s) + Double(atto) / 1e18
}

/// The median of `rounds` timings of `body`, in microseconds.
func medianMicroseconds(rounds: Int, _ body: () throws -> Void) rethrows -> Double {
    var samples: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        let started = clock.now
        try body()
        samples.append(seconds(clock.now - started) * 1e6)
    }
    samples.sort()
    return samples[samples.count / 2]
}

let projectionEvents = argument("--events", default: 1_000_000)
let loads = argument("--loads", default: 200)
let directory = FileManager.default.temporaryDirectory.path + "/eventlog-sourcing-bench-\(UUID().uuidString)"
defer { try? FileManager.default.removeItem(atPath: directory) }

do {
    let options = LogOptions(durability: .none)
    let log = try Log.open(at: directory + "/log", options: options)
    var registry = EventRegistry<ItemAdded>()
    registry.register(ItemAdded.self, type: "ItemAdded")
    let store = AggregateStore<Cart>(log: log, registry: registry, options: AggregateStoreOptions(snapshots: .every(100)))

    // Built through commands of one event each, as an application would.
    func build(_ stream: String, events: Int) throws {
        for n in 0..<events {
            try store.execute(stream) { _ in [ItemAdded(sku: "sku-\(n % 17)", quantity: 1)] }
        }
    }
    try build("cart-long", events: 10_099)
    try build("cart-short", events: 199)
    let long = try store.load("cart-long")
    let short = try store.load("cart-short")
    precondition(long.snapshotVersion == 9_999 && long.replayedEvents == 99 && long.state.count == 10_099)
    precondition(short.snapshotVersion == 99 && short.replayedEvents == 99 && short.state.count == 199)
    let full = try store.load("cart-long", useSnapshots: false)
    precondition(full.state.items == long.state.items)

    let longLoad = try medianMicroseconds(rounds: loads) { _ = try store.load("cart-long") }
    let shortLoad = try medianMicroseconds(rounds: loads) { _ = try store.load("cart-short") }
    let fullLoad = try medianMicroseconds(rounds: max(5, loads / 20)) { _ = try store.load("cart-long", useSnapshots: false) }
    print("aggregate load (median of \(loads)):")
    print(String(format: "  10,099 events, snapshot every 100 (1 snapshot + 99 events): %8.1f µs", longLoad))
    print(String(format: "  199 events, snapshot every 100 (1 snapshot + 99 events):    %8.1f µs", shortLoad))
    print(String(format: "  10,099 events, full replay without snapshots:              %8.1f µs", fullLoad))

    // Where a load's time goes: the stream's state, its latest snapshot, the events after it.
    for stream in ["cart-long", "cart-short"] {
        let info = try medianMicroseconds(rounds: loads) { _ = try log.streamInfo(stream) }
        let snapshot = try medianMicroseconds(rounds: loads) {
            try log.readStream(ReservedStreams.snapshots(of: stream), maxCount: 1, direction: .backward) { _ in }
        }
        let from = (try store.load(stream).snapshotVersion ?? 0) + 1
        let tail = try medianMicroseconds(rounds: loads) { try log.readStream(stream, from: from) { _ in } }
        print(String(format: "  %@: streamInfo %.1f µs, snapshot read %.1f µs, 99 events read (no decoding) %.1f µs", stream, info, snapshot, tail))
    }

    // Projection throughput.
    let before = log.endPosition
    var n = 0
    while n < projectionEvents {
        let size = min(1000, projectionEvents - n)
        try log.appendBatch { batch in
            for i in 0..<size { try batch.append(NewEvent(stream: "s-\((n + i) % 64)", type: "Happened", data: [1, 2, 3, 4, 5, 6, 7, 8])) }
        }
        n += size
    }
    try log.sync()
    let clock = ContinuousClock()
    for round in 1...3 {
        let runner = try ProjectionRunner<Count>(log: log, name: "count-\(round)", options: ProjectionOptions(start: .position(before)))
        let started = clock.now
        let applied = try runner.catchUp()
        let took = seconds(clock.now - started)
        precondition(applied == projectionEvents && runner.state.count == projectionEvents)
        print(String(format: "projection in the log, round %d: %d events in %.3f s = %.2f M events/s", round, applied, took, Double(applied) / took / 1e6))
    }
    for round in 1...3 {
        let nullStore = NullStore()
        let runner = try StoreProjectionRunner(
            log: log, name: "null-\(round)", store: nullStore, options: ProjectionOptions(start: .position(before)))
        let started = clock.now
        let applied = try runner.catchUp()
        let took = seconds(clock.now - started)
        precondition(applied == projectionEvents && nullStore.events == projectionEvents)
        print(String(format: "projection through a store, round %d: %d events in %.3f s = %.2f M events/s", round, applied, took, Double(applied) / took / 1e6))
    }
    try log.close()
} catch {
    FileHandle.standardError.write(Data("eventlog-sourcing-bench: \(error)\n".utf8))
    exit(2)
}
