import EventLog
import struct Foundation.UUID

/// How an `AggregateStore` stores snapshots and command records, and where outgoing messages go.
public struct AggregateStoreOptions: Sendable {
    /// When a command also stores a snapshot (default: every 100 events).
    public var snapshots: SnapshotPolicy
    /// The coder of snapshots and command records (JSON by default).
    public var coder: any PayloadCoder
    /// What loading does with an event of the aggregate's stream whose type
    /// is not registered (default: fail, since the state would be wrong).
    public var unknownEvents: UnknownEventPolicy
    /// The stream of outgoing messages that name none (default `outbox`,
    /// what the relay reads with `EventFilter(streamPrefix: "outbox")`).
    public var outboxStream: String

    /// Options; every argument has the default described on its property.
    public init(
        snapshots: SnapshotPolicy = .every(100), coder: any PayloadCoder = JSONPayloadCoder(),
        unknownEvents: UnknownEventPolicy = .fail, outboxStream: String = "outbox"
    ) {
        self.snapshots = snapshots
        self.coder = coder
        self.unknownEvents = unknownEvents
        self.outboxStream = outboxStream
    }
}

/// Loads aggregates (the latest snapshot, then the events after it) and
/// runs commands on them: decide, then append with the expected version.
///
/// - A command's domain events, its outgoing messages (`Decision.outgoing`),
///   a snapshot when the policy asks, and the command's record are one
///   atomic batch.
/// - A command with an id is done once: its record (in the stream
///   `ReservedStreams.command(id)`, appended with `.noStream`) holds its
///   result, which a repeat of the command returns (`wasDuplicate`) without
///   deciding again, however many commands ran on the aggregate since.
///   Its event ids derive from the command id (`DeterministicID`), so an
///   append repeated after a timeout is also the log's own idempotent retry.
/// - A snapshot is an optimisation: one of another schema version, or of
///   another incarnation of the stream (soft-deleted or truncated since),
///   is ignored, and deleting every snapshot stream changes no loaded state.
///
/// Safe to share between threads. Every call blocks on the disk (use `async`
/// from a task).
public final class AggregateStore<A: Aggregate>: Sendable {
    /// The log it reads and appends to.
    public let log: Log
    /// The registry of the aggregate's events.
    public let registry: EventRegistry<A.Event>
    /// Its options.
    public let options: AggregateStoreOptions

    /// The event type of snapshots (in `ReservedStreams.snapshots(of:)`).
    public static var snapshotType: String { "Snapshot" }
    /// The event type of command records (in `ReservedStreams.command(_:)`).
    public static var commandRecordType: String { "CommandHandled" }
    /// A snapshot's header: the aggregate version it holds the state after.
    static var versionHeader: String { "aggregate-version" }
    /// A snapshot's header: the first version its replay read (the stream's truncate-before point then).
    static var baseHeader: String { "base-version" }

    /// A store of `A` in `log`, decoding its events with `registry`.
    public init(log: Log, registry: EventRegistry<A.Event>, options: AggregateStoreOptions = AggregateStoreOptions()) {
        self.log = log
        self.registry = registry
        self.options = options
    }

    // MARK: Loading

    /// The aggregate in `stream`: from its latest usable snapshot, then the
    /// events after it; from `init()` when the stream has no events.
    ///
    /// - Throws: `SourcingError.unknownEventType` (with `UnknownEventPolicy.fail`),
    ///   `missingUpcaster`, `schemaVersionTooNew`, `undecodable`; what
    ///   `apply` throws; `EventLogError` from the log (`streamDeleted` for a
    ///   hard-deleted stream).
    public func load(_ stream: String) throws -> LoadedAggregate<A> {
        try load(stream, useSnapshots: true)
    }

    /// `load(_:)`, with or without snapshots (without: a full replay, to check a snapshot).
    public func load(_ stream: String, useSnapshots: Bool) throws -> LoadedAggregate<A> {
        guard let info = try log.streamInfo(stream) else {
            return LoadedAggregate(stream: stream, state: A(), version: nil, snapshotVersion: nil, replayedEvents: 0, baseVersion: 0)
        }
        if info.deletion == .hard { throw EventLogError.streamDeleted(stream: stream) }
        guard info.deletion == .none, let current = info.currentVersion else {
            return LoadedAggregate(
                stream: stream, state: A(), version: nil, snapshotVersion: nil, replayedEvents: 0, baseVersion: info.truncateBefore)
        }
        var state = A()
        var from = info.truncateBefore
        var snapshotVersion: UInt64?
        if useSnapshots, let snapshot = try latestSnapshot(of: stream, base: info.truncateBefore, current: current) {
            state = snapshot.state
            snapshotVersion = snapshot.version
            from = snapshot.version + 1
        }
        var last = snapshotVersion
        var replayed = 0
        let registry = self.registry
        let unknownEvents = options.unknownEvents
        try log.readStream(stream, from: from) { view in
            let metadata = try view.metadata()
            if let event = try registry.decode(
                type: view.type, schemaVersion: metadata.schemaVersion, data: Array(view.data), position: view.position) {
                try state.apply(event)
                replayed += 1
            } else if unknownEvents == .fail {
                throw SourcingError.unknownEventType(type: view.type, stream: stream, position: view.position)
            }
            last = view.version
        }
        return LoadedAggregate(
            stream: stream, state: state, version: last ?? current, snapshotVersion: snapshotVersion, replayedEvents: replayed,
            baseVersion: info.truncateBefore)
    }

    /// The newest snapshot of `stream` that is usable: of the current
    /// snapshot schema version, taken of the incarnation starting at `base`,
    /// at most at `current`, and decodable. Nil otherwise (a full replay).
    private func latestSnapshot(of stream: String, base: UInt64, current: UInt64) throws -> (state: A, version: UInt64)? {
        let name = ReservedStreams.snapshots(of: stream)
        guard name.utf8.count <= Limits.maxStreamNameBytes else { return nil }
        var found: (state: A, version: UInt64)?
        let coder = options.coder
        try log.readStream(name, maxCount: 1, direction: .backward) { view in
            let metadata = try view.metadata()
            guard view.type == Self.snapshotType, metadata.schemaVersion == A.snapshotSchemaVersion,
                  let version = metadata[header: Self.versionHeader].flatMap(UInt64.init), version <= current,
                  metadata[header: Self.baseHeader].flatMap(UInt64.init) == base,
                  let state = try? coder.decode(A.self, from: Array(view.data))
            else { return }
            found = (state, version)
        }
        return found
    }

    // MARK: Commands

    /// The result of the command `commandID` when it was handled before (`wasDuplicate` set), else nil.
    public func handledCommand(_ commandID: String) throws -> CommandResult? {
        let name = ReservedStreams.command(commandID)
        guard name.utf8.count <= Limits.maxStreamNameBytes else {
            throw SourcingError.invalidArgument("command id \(commandID) is longer than \(Limits.maxStreamNameBytes - 9) bytes")
        }
        var result: CommandResult?
        let coder = options.coder
        try log.readStream(name, maxCount: 1, direction: .backward) { view in
            let record: CommandRecord
            do { record = try coder.decode(CommandRecord.self, from: Array(view.data)) } catch {
                throw SourcingError.undecodable(type: Self.commandRecordType, position: view.position, reason: "\(error)")
            }
            // The record is its batch's last event.
            let end = view.position + 1
            guard record.batchEvents >= 1, UInt64(record.batchEvents) <= end else {
                throw SourcingError.undecodable(
                    type: Self.commandRecordType, position: view.position, reason: "its batch of \(record.batchEvents) events cannot end here")
            }
            result = CommandResult(
                stream: record.stream, version: record.version,
                versions: record.firstVersion.flatMap { first in record.lastVersion.map { first...$0 } },
                positions: (end - UInt64(record.batchEvents))..<end, wasDuplicate: true)
        }
        return result
    }

    /// Runs a command on the aggregate in `stream`: loads it, lets `decide`
    /// choose the events (and outgoing messages), and appends them expecting
    /// the version loaded.
    ///
    /// - Parameters:
    ///   - stream: the aggregate's stream.
    ///   - commandID: the command's id (an idempotency key): a command seen
    ///     before returns its original result, without calling `decide`.
    ///   - expecting: the version the caller saw (an HTTP `If-Match`); nil:
    ///     whatever is loaded. When the loaded version differs, the command
    ///     fails with `versionConflict` without deciding.
    ///   - metadata: the metadata of every event appended (correlation id,
    ///     headers); its causation id defaults to the command id.
    ///   - decide: the command handler, given the loaded aggregate.
    /// - Returns: the stream's version after the command and the positions written.
    /// - Throws: `SourcingError.versionConflict` when another writer appended
    ///   first (nothing written: load and decide again, `RetryPolicy`);
    ///   `commandIDReused`; what `decide` throws; as `load(_:)`.
    @discardableResult
    public func execute(
        _ stream: String, commandID: String? = nil, expecting: ExpectedVersion? = nil, metadata: EventMetadata = EventMetadata(),
        decide: (LoadedAggregate<A>) throws -> Decision<A.Event>
    ) throws -> CommandResult {
        if let commandID, let original = try handledCommand(commandID) {
            guard original.stream == stream else {
                throw SourcingError.commandIDReused(commandID: commandID, stream: stream, originalStream: original.stream)
            }
            return original
        }
        let loaded = try load(stream)
        if let expecting, !Self.holds(expecting, loaded.version) {
            throw SourcingError.versionConflict(stream: stream, expected: expecting, actual: loaded.version)
        }
        let decision = try decide(loaded)
        return try append(decision, to: loaded, commandID: commandID, metadata: metadata)
    }

    /// `execute(_:commandID:expecting:metadata:decide:)`, tried again after
    /// a version conflict as `retry` allows (each try loads and decides
    /// anew). With `expecting` set, a conflict is final (the caller's
    /// version is stale), so it is not retried.
    @discardableResult
    public func execute(
        _ stream: String, commandID: String? = nil, expecting: ExpectedVersion? = nil, metadata: EventMetadata = EventMetadata(),
        retry: RetryPolicy, decide: (LoadedAggregate<A>) throws -> Decision<A.Event>
    ) throws -> CommandResult {
        let policy = expecting == nil ? retry : RetryPolicy(maxAttempts: 1)
        return try policy.run {
            try execute(stream, commandID: commandID, expecting: expecting, metadata: metadata, decide: decide)
        }
    }

    static func holds(_ expected: ExpectedVersion, _ version: UInt64?) -> Bool {
        switch expected {
        case .any: return true
        case .noStream: return version == nil
        case .streamExists: return version != nil
        case .exact(let v): return version == v
        }
    }

    /// Appends what `decision` holds, with the snapshot the policy asks for and the command's record, as one batch.
    private func append(
        _ decision: Decision<A.Event>, to loaded: LoadedAggregate<A>, commandID: String?, metadata: EventMetadata
    ) throws -> CommandResult {
        let stream = loaded.stream
        var metadata = metadata
        if metadata.causationID == nil { metadata.causationID = commandID }
        var batch: [NewEvent] = []
        var state = loaded.state
        for event in decision.events {
            batch.append(try registry.encode(event, stream: stream, metadata: metadata))
            try state.apply(event)
        }
        for message in decision.outgoing {
            var messageMetadata = message.metadata
            if messageMetadata.correlationID == nil { messageMetadata.correlationID = metadata.correlationID }
            if messageMetadata.causationID == nil { messageMetadata.causationID = metadata.causationID }
            batch.append(NewEvent(stream: message.stream ?? options.outboxStream, type: message.type, data: message.data, metadata: messageMetadata))
        }
        let count = UInt64(decision.events.count)
        // The versions the events will get: after the loaded one, or from the stream's base (0, or where a soft-deleted stream continues).
        let firstVersion = loaded.version.map { $0 + 1 } ?? loaded.baseVersion
        let newVersion = count > 0 ? firstVersion + count - 1 : loaded.version
        if count > 0, let newVersion, let snapshot = try snapshotEvent(of: state, loaded: loaded, newVersion: newVersion) {
            batch.append(snapshot)
        }
        var expectations: [String: ExpectedVersion] = [:]
        if count > 0 { expectations[stream] = loaded.expectedVersion }
        if let commandID {
            let record = CommandRecord(
                stream: stream, version: newVersion, firstVersion: count > 0 ? firstVersion : nil, lastVersion: count > 0 ? newVersion : nil,
                batchEvents: batch.count + 1)
            let data: [UInt8]
            do { data = try options.coder.encode(record) } catch {
                throw SourcingError.undecodable(type: Self.commandRecordType, position: nil, reason: "\(error)")
            }
            let recordStream = ReservedStreams.command(commandID)
            batch.append(NewEvent(
                stream: recordStream, type: Self.commandRecordType, data: data,
                metadata: EventMetadata(schemaVersion: 1, contentType: options.coder.contentType, causationID: commandID)))
            expectations[recordStream] = .noStream
            for index in batch.indices { batch[index].metadata.eventID = DeterministicID.eventID(commandID: commandID, index: index) }
        } else {
            for index in batch.indices { batch[index].metadata.eventID = UUID() }
        }
        if batch.isEmpty {
            let end = log.endPosition
            return CommandResult(stream: stream, version: loaded.version, versions: nil, positions: end..<end, wasDuplicate: false)
        }
        let appended: AppendResult
        do {
            appended = try log.append(batch, expecting: expectations)
        } catch EventLogError.wrongExpectedVersion(let failed, _, let actual) {
            // The same command, handled meanwhile by another caller (its record exists): its result.
            if let commandID, let original = try handledCommand(commandID) {
                guard original.stream == stream else {
                    throw SourcingError.commandIDReused(commandID: commandID, stream: stream, originalStream: original.stream)
                }
                return original
            }
            var now = actual
            if failed != stream { now = try log.streamInfo(stream)?.currentVersion }
            throw SourcingError.versionConflict(stream: stream, expected: loaded.expectedVersion, actual: now)
        }
        let versions = appended.versions(of: stream)
        return CommandResult(
            stream: stream, version: versions?.upperBound ?? loaded.version, versions: versions, positions: appended.positions,
            wasDuplicate: appended.wasRetry)
    }

    /// The snapshot event of `state` at `newVersion` when the policy asks for one (and the snapshot stream's name fits).
    private func snapshotEvent(of state: A, loaded: LoadedAggregate<A>, newVersion: UInt64) throws -> NewEvent? {
        let name = ReservedStreams.snapshots(of: loaded.stream)
        guard name.utf8.count <= Limits.maxStreamNameBytes else { return nil }
        let since = newVersion + 1 - (loaded.snapshotVersion.map { $0 + 1 } ?? loaded.baseVersion)
        let context = SnapshotPolicy.Context(
            stream: loaded.stream, version: newVersion, snapshotVersion: loaded.snapshotVersion, eventsSinceSnapshot: since)
        guard options.snapshots.decide(context) else { return nil }
        let data: [UInt8]
        do { data = try options.coder.encode(state) } catch {
            throw SourcingError.undecodable(type: Self.snapshotType, position: nil, reason: "encoding the snapshot: \(error)")
        }
        return NewEvent(
            stream: name, type: Self.snapshotType, data: data,
            metadata: EventMetadata(
                schemaVersion: A.snapshotSchemaVersion, contentType: options.coder.contentType,
                headers: [.init(Self.versionHeader, String(newVersion)), .init(Self.baseHeader, String(loaded.baseVersion))]))
    }
}

/// A command's record: its result, stored as its batch's last event.
struct CommandRecord: Codable {
    var stream: String
    var version: UInt64?
    var firstVersion: UInt64?
    var lastVersion: UInt64?
    /// Events in the command's batch, the record included.
    var batchEvents: Int
}
