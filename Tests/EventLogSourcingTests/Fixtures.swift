import EventLog
import EventLogSourcing
import Foundation
import Logging

/// A fresh directory under the system temporary directory, removed when the test ends.
final class TempDir {
    let path: String

    init(_ label: String = "sourcing") {
        path = FileManager.default.temporaryDirectory.path + "/\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    var logPath: String { path + "/log" }
}

/// splitmix64: the seeded generator of the randomized tests.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func openLog(_ dir: TempDir) throws -> Log {
    var options = LogOptions(segmentBytes: 4 << 20, durability: .none)
    var logger = Logger(label: "EventLogSourcingTests")
    logger.logLevel = .warning
    options.logger = logger
    return try Log.open(at: dir.logPath, options: options)
}

// MARK: The order domain of the tests

struct OrderPlaced: Codable, Sendable, Equatable {
    var customer: String
}

struct ItemAdded: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int
}

struct OrderCancelled: Codable, Sendable, Equatable {
    var reason: String
}

enum OrderEvent: Sendable, Equatable {
    case placed(OrderPlaced)
    case itemAdded(ItemAdded)
    case cancelled(OrderCancelled)
}

struct Order: Aggregate, Equatable {
    typealias Event = OrderEvent
    var customer: String?
    var items: [String: Int] = [:]
    var cancelled = false
    /// Events applied to reach this state (a snapshot carries it too).
    var applied = 0

    init() {}

    mutating func apply(_ event: OrderEvent) {
        applied += 1
        switch event {
        case .placed(let placed): customer = placed.customer
        case .itemAdded(let item): items[item.sku, default: 0] += item.quantity
        case .cancelled: cancelled = true
        }
    }
}

/// The same state with another snapshot schema version (its snapshots are ignored by `Order`'s store and vice versa).
struct OrderV2: Aggregate, Equatable {
    typealias Event = OrderEvent
    static var snapshotSchemaVersion: UInt32 { 2 }
    var order = Order()
    init() {}
    mutating func apply(_ event: OrderEvent) { order.apply(event) }
}

func orderRegistry() -> EventRegistry<OrderEvent> {
    var registry = EventRegistry<OrderEvent>()
    registry.register(OrderPlaced.self, type: "OrderPlaced", embed: OrderEvent.placed) {
        if case .placed(let e) = $0 { return e }
        return nil
    }
    registry.register(ItemAdded.self, type: "ItemAdded", embed: OrderEvent.itemAdded) {
        if case .itemAdded(let e) = $0 { return e }
        return nil
    }
    registry.register(OrderCancelled.self, type: "OrderCancelled", embed: OrderEvent.cancelled) {
        if case .cancelled(let e) = $0 { return e }
        return nil
    }
    return registry
}

/// A projection counting the events fed to it and summing their positions:
/// an event fed twice, or lost, changes both.
struct Tally: Projection, Equatable {
    var count = 0
    var sum: UInt64 = 0
    var streams: [String: Int] = [:]
    init() {}
    mutating func apply(_ event: EventView) throws {
        count += 1
        sum &+= event.position
        streams[event.stream, default: 0] += 1
    }
}

/// A `ProjectionStore` in memory, counting its transactions; `failNext` makes the next commit fail.
final class MemoryStore: ProjectionStore, @unchecked Sendable {
    let lock = NSLock()
    var tally = Tally()
    var stored: UInt64?
    var commits = 0
    var resets = 0
    var failNext = false
    var seen: [UInt64] = []

    func checkpoint() throws -> UInt64? { lock.withLock { stored } }

    func commit(_ events: [Event], checkpoint: UInt64) throws {
        try lock.withLock {
            if failNext {
                failNext = false
                throw CocoaError(.fileWriteUnknown)
            }
            for event in events {
                tally.count += 1
                tally.sum &+= event.position
                tally.streams[event.stream, default: 0] += 1
                seen.append(event.position)
            }
            stored = checkpoint
            commits += 1
        }
    }

    func reset(checkpoint: UInt64) throws {
        lock.withLock {
            tally = Tally()
            seen = []
            stored = checkpoint
            resets += 1
        }
    }
}

func plain(_ stream: String, _ n: Int, timestamp: Timestamp? = nil) -> NewEvent {
    NewEvent(stream: stream, type: "Happened", data: Array("\(n)".utf8), timestamp: timestamp)
}
