import EventLog
import Synchronization
import struct Foundation.UUID

/// How an `IdempotentConsumer` reads and what it remembers.
public struct IdempotentConsumerOptions: Sendable {
    /// How it reads and commits (its filter, batch size, commit policy, start point).
    public var projection: ProjectionOptions
    /// How many of the latest message ids it remembers (at least 1): a
    /// duplicate arriving after this many newer messages is handled again.
    public var rememberedIDs: Int

    /// Options: `projection`'s defaults; the last 100,000 message ids.
    public init(projection: ProjectionOptions = ProjectionOptions(), rememberedIDs: Int = 100_000) {
        self.projection = projection
        self.rememberedIDs = max(1, rememberedIDs)
    }
}

/// The receiving side of integration events: handles each message once by
/// its message id, however often it arrives in the log (a relay or an inbox
/// that delivered it again, a producer that retried).
///
/// The message id is the `Nats-Msg-Id` header when there is one (what
/// `eventlog inbox` records), else the event id. A message with neither is
/// handled every time it is read (once per position).
///
/// The handler returns the events its handling appends (its effects in the
/// log). At each commit those events, the ids of the messages handled and
/// the checkpoint are one atomic append (to `ReservedStreams.consumer(name)`
/// and the events' own streams): after a crash, the consumer resumes from
/// the last commit, so a message's effects in the log are there exactly
/// once. Effects outside the log (an e-mail sent by the handler) happen at
/// least once: a crash before the commit handles the message again.
///
/// One thread drives it (`step`, `catchUp`, `run`).
public final class IdempotentConsumer: Sendable {
    /// The log it reads and appends to.
    public let log: Log
    /// Its name: its record stream and cursor are named after it.
    public let name: String
    let driver: ProjectionDriver<ConsumerSink>

    /// The event type of its records.
    public static var recordType: String { "MessagesHandled" }
    /// The header that carries a message id across NATS (`eventlog inbox`).
    public static var messageIDHeader: String { "Nats-Msg-Id" }

    /// A consumer resumed from its last record (reading back far enough to
    /// remember `options.rememberedIDs` message ids). Handles nothing yet.
    ///
    /// - Parameters:
    ///   - log: the log it reads and appends to.
    ///   - name: its name (its record stream is `ReservedStreams.consumer(name)`).
    ///   - options: how it reads, commits and remembers.
    ///   - handler: handles one message; returns the events to append with
    ///     its record (each with its own stream). Throwing stops the step:
    ///     nothing since the last commit is appended, and those messages are
    ///     handled again at the next step.
    public init(
        log: Log, name: String, options: IdempotentConsumerOptions = IdempotentConsumerOptions(),
        handler: @escaping @Sendable (Event) throws -> [NewEvent]
    ) throws {
        let stream = ReservedStreams.consumer(name)
        guard !name.isEmpty, stream.utf8.count <= Limits.maxStreamNameBytes else {
            throw SourcingError.invalidArgument("consumer name \(name) is empty or too long")
        }
        self.log = log
        self.name = name
        var sink = ConsumerSink(log: log, stream: stream, coder: options.projection.coder, capacity: options.rememberedIDs, handler: handler)
        var checkpoint: UInt64?
        sink.streamVersion = try log.streamInfo(stream)?.currentVersion
        // Newest record first: its checkpoint, then ids back to the capacity.
        var records: [[String]] = []
        var remembered = 0
        let coder = options.projection.coder
        if let last = sink.streamVersion {
            var version = last
            reading: while remembered < options.rememberedIDs {
                var found = false
                try log.readStream(stream, from: version, maxCount: 256, direction: .backward) { view in
                    guard remembered < options.rememberedIDs else { return }
                    let record: ConsumerRecord
                    do { record = try coder.decode(ConsumerRecord.self, from: Array(view.data)) } catch {
                        throw SourcingError.undecodable(type: IdempotentConsumer.recordType, position: view.position, reason: "\(error)")
                    }
                    if checkpoint == nil { checkpoint = record.checkpoint }
                    records.append(record.ids)
                    remembered += record.ids.count
                    found = true
                    version = view.version
                }
                if !found || version == 0 { break reading }
                version -= 1
            }
        }
        for ids in records.reversed() { sink.remember(ids) }
        driver = try ProjectionDriver(log: log, options: options.projection, cursor: stream, sink: sink, checkpoint: checkpoint)
    }

    /// The next position it reads.
    public var position: UInt64 { driver.position }
    /// The checkpoint of its last commit.
    public var committedPosition: UInt64 { driver.committedPosition }
    /// Messages passed over as duplicates since this consumer was created.
    public var duplicates: Int { driver.state.withLock { $0.sink.duplicates } }

    /// True when it remembers handling (and committed) the message `id`.
    public func hasHandled(_ id: String) -> Bool { driver.state.withLock { $0.sink.remembered.contains(id) } }

    /// Reads one batch and handles it; commits when due. Returns the messages read.
    @discardableResult
    public func step() throws -> Int { try driver.step().applied }

    /// Handles every message up to the end of the log, then commits.
    @discardableResult
    public func catchUp() throws -> Int { try driver.catchUp() }

    /// Commits what was handled since the last commit.
    public func commit() throws { try driver.commit() }

    /// Runs until `shouldStop` returns true, then commits. Blocks the calling thread.
    public func run(shouldStop: () -> Bool) throws { try driver.run(shouldStop: shouldStop) }

    /// Runs until the task is cancelled, on the log's executor, then commits.
    public func run() async throws { try await driver.run() }
}

/// A consumer's record: the ids it handled in one commit and the checkpoint after them.
struct ConsumerRecord: Codable {
    var ids: [String]
    var checkpoint: UInt64
}

/// The handled ids, the handler's pending effects, and the commit that writes them with the checkpoint.
struct ConsumerSink: ProjectionSink {
    let log: Log
    let stream: String
    let coder: any PayloadCoder
    let capacity: Int
    let handler: @Sendable (Event) throws -> [NewEvent]
    var streamVersion: UInt64?
    /// Committed ids, oldest first in `order`.
    var remembered: Set<String> = []
    var order: [String] = []
    var orderStart = 0
    var pendingIDs: [String] = []
    var pendingSet: Set<String> = []
    var pendingEffects: [NewEvent] = []
    var duplicates = 0

    init(log: Log, stream: String, coder: any PayloadCoder, capacity: Int, handler: @escaping @Sendable (Event) throws -> [NewEvent]) {
        self.log = log
        self.stream = stream
        self.coder = coder
        self.capacity = capacity
        self.handler = handler
    }

    mutating func remember(_ ids: [String]) {
        for id in ids where remembered.insert(id).inserted { order.append(id) }
        while order.count - orderStart > capacity {
            remembered.remove(order[orderStart])
            orderStart += 1
        }
        if orderStart > capacity {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    static func messageID(_ event: Event) -> String? {
        event.metadata[header: IdempotentConsumer.messageIDHeader] ?? event.metadata.eventID?.uuidString
    }

    mutating func apply(_ view: EventView) throws {
        let event = try view.event()
        let id = Self.messageID(event)
        if let id, remembered.contains(id) || pendingSet.contains(id) {
            duplicates += 1
            return
        }
        pendingEffects += try handler(event)
        if let id {
            pendingIDs.append(id)
            pendingSet.insert(id)
        }
    }

    mutating func commit(checkpoint: UInt64) throws {
        let data: [UInt8]
        do { data = try coder.encode(ConsumerRecord(ids: pendingIDs, checkpoint: checkpoint)) } catch {
            throw SourcingError.undecodable(type: IdempotentConsumer.recordType, position: nil, reason: "\(error)")
        }
        var batch = pendingEffects
        for index in batch.indices where batch[index].metadata.eventID == nil { batch[index].metadata.eventID = UUID() }
        batch.append(NewEvent(
            stream: stream, type: IdempotentConsumer.recordType, data: data,
            metadata: EventMetadata(eventID: UUID(), schemaVersion: 1, contentType: coder.contentType)))
        let result: AppendResult
        do {
            result = try log.append(batch, expecting: [stream: streamVersion.map { .exact($0) } ?? .noStream])
        } catch EventLogError.wrongExpectedVersion {
            throw SourcingError.concurrentRunner(name: stream)
        }
        streamVersion = result.versions(of: stream)?.upperBound
        remember(pendingIDs)
        discard()
    }

    mutating func discard() {
        pendingIDs.removeAll()
        pendingSet.removeAll()
        pendingEffects.removeAll()
    }

    mutating func reset(checkpoint: UInt64) throws {
        discard()
    }
}
