// EventLogSourcing: event sourcing on an EventLog `Log`.
//
// API at a glance (all blocking calls; each has an `async` form where noted):
//
// Typed events and upcasting (EventRegistry.swift, PayloadCoder.swift)
//   var registry = EventRegistry<OrderEvent>()                       // JSON by default (`PayloadCoder`)
//   registry.register(OrderPlaced.self, type: "OrderPlaced", schemaVersion: 2,
//                     embed: OrderEvent.placed, extract: { if case .placed(let e) = $0 { e } else { nil } })
//   registry.upcast(type: "OrderPlaced", from: 1, PlacedV1.self, to: OrderPlaced.self) { v1 in ... }
//   let new: NewEvent = try registry.encode(event, stream: "order-1")   // records schemaVersion, contentType
//   switch try registry.decode(storedEvent) { case .event(let recorded): ...; case .unknown(let raw): ... }
//
// Aggregates and snapshots (Aggregate.swift, AggregateStore.swift)
//   struct Order: Aggregate { typealias Event = OrderEvent; init(); mutating func apply(_ e: OrderEvent) }
//   let store = AggregateStore<Order>(log: log, registry: registry, options: .init(snapshots: .every(100)))
//   let loaded = try store.load("order-1")                  // latest snapshot, then the events after it
//   let result = try store.execute("order-1", commandID: "K", expecting: .exact(3)) { loaded in
//       Decision([.itemAdded(...)], outgoing: [try OutgoingMessage(type: "ItemAdded", payload: ...)])
//   }                                                        // CommandResult: version, positions, wasDuplicate
//   try store.execute("order-1", commandID: "K", retry: RetryPolicy(maxAttempts: 3)) { ... }
//   errors: SourcingError.versionConflict (and the others of SourcingError); EventLogError from the log
//   snapshots live in the stream "$snapshot-" + stream; command records in "$command-" + command id
//   async: store.async.execute(...), store.async.load(...)   (on the log's executor)
//
// Projections (Projection.swift, ProjectionRunner.swift, StoreProjectionRunner.swift)
//   struct Counter: Projection { init(); mutating func apply(_ event: EventView) throws }
//   let runner = try ProjectionRunner<Counter>(log: log, name: "orders")   // state + checkpoint in "$projection-orders"
//   try runner.catchUp(); try runner.run(shouldStop: { ... }); runner.state; try runner.rebuild(from: .timestamp(t))
//   let external = try StoreProjectionRunner(log: log, name: "orders-sql", store: myStore)   // ProjectionStore
//   async: try await runner.run()   (until the task is cancelled)
//
// Outbox (Outbox.swift, IdempotentConsumer.swift)
//   Decision.outgoing: integration events appended to "outbox" in the command's atomic batch (the relay's filter)
//   let consumer = try IdempotentConsumer(log: log, name: "billing", filter: EventFilter(streamPrefix: "outbox"))
//   try consumer.poll { message in [NewEvent] }   // each message id handled once; effects + ids + checkpoint atomic
//
// Reserved streams: every stream whose name starts with `$` belongs to this library; projection
// runners and idempotent consumers never feed them to user code.

import EventLog

/// The errors of EventLogSourcing. Errors of the log itself (`EventLogError`)
/// pass through unchanged, except an expected-version failure of an
/// aggregate's stream, which is `versionConflict`.
public enum SourcingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stored event's type has no registration (`EventRegistry`) and the
    /// caller asked for known events only.
    case unknownEventType(type: String, stream: String, position: UInt64)
    /// A value no registration of the registry extracts (it cannot be encoded).
    case unregisteredEvent(String)
    /// A stored event of an older schema version has no upcaster from `from`
    /// on its way to the current version `current`.
    case missingUpcaster(type: String, from: UInt32, current: UInt32)
    /// A stored event's schema version is newer than the registration's:
    /// written by a newer build of the application.
    case schemaVersionTooNew(type: String, version: UInt32, current: UInt32)
    /// A payload (an event, an upcaster's input, a snapshot, a command
    /// record or a projection checkpoint) its coder could not decode or encode.
    case undecodable(type: String, position: UInt64?, reason: String)
    /// The aggregate's stream was not at the version the command expected;
    /// nothing was written. `actual` is its version now (nil: no stream).
    case versionConflict(stream: String, expected: ExpectedVersion, actual: UInt64?)
    /// The command id was used before by a command on another stream.
    case commandIDReused(commandID: String, stream: String, originalStream: String)
    /// Another runner committed the projection (or consumer) `name` since this one loaded it.
    case concurrentRunner(name: String)
    /// An argument is wrong (an empty name, a name that would make a reserved stream name too long).
    case invalidArgument(String)

    /// A message a person can act on.
    public var description: String {
        switch self {
        case .unknownEventType(let type, let stream, let position):
            return "event type \(type) (stream \(stream), position \(position)) is not registered"
        case .unregisteredEvent(let value): return "no registration encodes \(value)"
        case .missingUpcaster(let type, let from, let current):
            return "event type \(type): no upcaster from schema version \(from) (the current version is \(current))"
        case .schemaVersionTooNew(let type, let version, let current):
            return "event type \(type) has schema version \(version), newer than this build's \(current)"
        case .undecodable(let type, let position, let reason):
            return "cannot decode \(type)\(position.map { " at position \($0)" } ?? ""): \(reason)"
        case .versionConflict(let stream, let expected, let actual):
            return "stream \(stream): expected version \(expected), actual \(actual.map(String.init) ?? "no stream")"
        case .commandIDReused(let commandID, let stream, let originalStream):
            return "command id \(commandID) was used for stream \(originalStream), not \(stream)"
        case .concurrentRunner(let name): return "another runner committed \(name) meanwhile"
        case .invalidArgument(let message): return "invalid argument: \(message)"
        }
    }
}

/// The names of the streams EventLogSourcing keeps in the log. Every one
/// starts with `$`: projection runners and idempotent consumers skip such
/// streams, so that their own records are never fed back to them.
public enum ReservedStreams {
    /// The prefix of every reserved stream.
    public static let prefix = "$"
    /// The snapshots of the aggregate in `stream`.
    public static func snapshots(of stream: String) -> String { "$snapshot-" + stream }
    /// The record of the command `commandID` (its result, for retries).
    public static func command(_ commandID: String) -> String { "$command-" + commandID }
    /// The checkpoints (state and position) of the projection `name`.
    public static func projection(_ name: String) -> String { "$projection-" + name }
    /// The processed message ids and checkpoints of the idempotent consumer `name`.
    public static func consumer(_ name: String) -> String { "$consumer-" + name }

    /// True for a reserved stream's event (first byte `$`), without allocating.
    static func isReserved(_ view: EventView) -> Bool {
        view.streamBytes.first == UInt8(ascii: "$")
    }
}
