import EventLog

/// An integration event: a message to other services, appended to an
/// outbox stream in the same atomic batch as the domain events that caused
/// it (`Decision.outgoing`), then delivered by a relay (`eventlog relay`,
/// `EventLogNATS.Relay`, reading with `EventFilter(streamPrefix: "outbox")`).
/// Its event id is its message id (the relay's `Nats-Msg-Id`).
public struct OutgoingMessage: Sendable, Hashable {
    /// The message's type, e.g. `OrderPlaced.v2` (must not start with `$`).
    public var type: String
    /// Its payload.
    public var data: [UInt8]
    /// Its metadata (its schema version, content type, headers). The event
    /// id is set when it is appended: derived from the command id, else random.
    public var metadata: EventMetadata
    /// The outbox stream it goes to; nil: the store's (`AggregateStoreOptions.outboxStream`).
    public var stream: String?

    /// A message of `type` with `data` as its payload.
    public init(type: String, data: [UInt8], metadata: EventMetadata = EventMetadata(), stream: String? = nil) {
        self.type = type
        self.data = data
        self.metadata = metadata
        self.stream = stream
    }

    /// A message of `type` whose payload is `payload` encoded by `coder`,
    /// with `schemaVersion` (its contract's version) and the coder's content type.
    public init<Payload: Encodable>(
        type: String, payload: Payload, schemaVersion: UInt32 = 1, coder: any PayloadCoder = JSONPayloadCoder(),
        headers: [EventMetadata.Header] = [], stream: String? = nil
    ) throws {
        let data: [UInt8]
        do { data = try coder.encode(payload) } catch {
            throw SourcingError.undecodable(type: type, position: nil, reason: "encoding failed: \(error)")
        }
        self.init(
            type: type, data: data,
            metadata: EventMetadata(schemaVersion: schemaVersion, contentType: coder.contentType, headers: headers), stream: stream)
    }
}

/// What a command decided: the aggregate's new domain events and the
/// integration events they cause, appended together or not at all.
public struct Decision<DomainEvent: Sendable>: Sendable, ExpressibleByArrayLiteral {
    /// The domain events, appended to the aggregate's stream in this order.
    public var events: [DomainEvent]
    /// The integration events, appended to their outbox stream in the same batch.
    public var outgoing: [OutgoingMessage]

    /// A decision to append `events` and send `outgoing`.
    public init(_ events: [DomainEvent], outgoing: [OutgoingMessage] = []) {
        self.events = events
        self.outgoing = outgoing
    }

    /// A decision to append these events and send nothing.
    public init(arrayLiteral events: DomainEvent...) {
        self.init(events)
    }
}

/// What a command did; for a command id seen before, what it did the first time.
public struct CommandResult: Sendable, Hashable, Codable {
    /// The aggregate's stream.
    public var stream: String
    /// The stream's version after the command (nil: the stream has no events,
    /// a command that appended nothing to a new stream).
    public var version: UInt64?
    /// The versions of the events the command appended to the stream (nil: none).
    public var versions: ClosedRange<UInt64>?
    /// The positions of the command's whole batch (its events, outgoing
    /// messages, snapshot and record); empty when it appended nothing.
    public var positions: Range<UInt64>
    /// True when the command id had been handled before: this is the
    /// original result, and nothing was appended now.
    public var wasDuplicate: Bool

    /// A result (tests, stores of their own).
    public init(stream: String, version: UInt64?, versions: ClosedRange<UInt64>?, positions: Range<UInt64>, wasDuplicate: Bool) {
        self.stream = stream
        self.version = version
        self.versions = versions
        self.positions = positions
        self.wasDuplicate = wasDuplicate
    }
}
