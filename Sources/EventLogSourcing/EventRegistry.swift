import EventLog

/// An event read from the log and decoded: the domain event and where it was.
public struct RecordedEvent<DomainEvent: Sendable>: Sendable {
    /// The decoded event, upcast to its type's current schema version.
    public var event: DomainEvent
    /// Its type name as stored.
    public var type: String
    /// The stream it belongs to.
    public var stream: String
    /// Its version in the stream.
    public var version: UInt64
    /// Its global position.
    public var position: UInt64
    /// When it happened (microseconds since 1970).
    public var timestamp: Timestamp
    /// Its metadata as stored (its `schemaVersion` is the stored one, before upcasting).
    public var metadata: EventMetadata
}

/// A stored event as the registry sees it: decoded, or of a type it does not know.
public enum Decoded<DomainEvent: Sendable>: Sendable {
    /// A registered type, decoded (and upcast).
    case event(RecordedEvent<DomainEvent>)
    /// A type with no registration: the event as stored, for the caller to decide.
    case unknown(Event)
}

/// What to do with a stored event whose type has no registration.
public enum UnknownEventPolicy: Sendable, Hashable {
    /// Throw `SourcingError.unknownEventType` (the default for aggregates:
    /// a state rebuilt without one of its events would be wrong).
    case fail
    /// Pass over it: the caller chose to, knowing the type is not its concern.
    case skip
}

/// Maps event type names to `Codable` payload types, each with its current
/// schema version and content type, and upgrades old payloads on read
/// (upcasters keyed by type and schema version, chained to the current one).
///
/// `DomainEvent` is the type the application works with, usually an enum
/// with a case per event type: each registration says how a payload becomes
/// a `DomainEvent` (`embed`) and how to find it in one (`extract`). When the
/// application has one event type, `register(_:type:schemaVersion:coder:)`
/// needs neither.
///
/// A value type: build it once at start-up, then share it (it is `Sendable`).
/// Registering a type name twice, or two upcasters for the same type and
/// version, is a programming error and stops the program.
public struct EventRegistry<DomainEvent: Sendable>: Sendable {
    struct Registration: Sendable {
        let type: String
        let schemaVersion: UInt32
        let contentType: String
        let decode: @Sendable ([UInt8]) throws -> DomainEvent
        /// The payload's bytes when `event` is of this registration, else nil.
        let encode: @Sendable (DomainEvent) throws -> [UInt8]?
    }

    struct UpcastKey: Hashable, Sendable {
        let type: String
        let from: UInt32
    }

    /// The coder of registrations that name none.
    public let coder: any PayloadCoder
    private var registrations: [String: Registration] = [:]
    /// Registration order: `encode` asks each in turn.
    private var order: [String] = []
    private var upcasters: [UpcastKey: @Sendable ([UInt8]) throws -> [UInt8]] = [:]

    /// An empty registry whose registrations use `coder` unless they name their own.
    public init(coder: any PayloadCoder = JSONPayloadCoder()) {
        self.coder = coder
    }

    /// The registered type names, in registration order.
    public var types: [String] { order }

    /// The current schema version of `type`, nil when it is not registered.
    public func schemaVersion(of type: String) -> UInt32? { registrations[type]?.schemaVersion }

    /// Registers `payload` under the type name `type` at its current `schemaVersion`.
    ///
    /// - Parameters:
    ///   - payload: the `Codable` type stored as the event's data.
    ///   - type: the event type name stored in the log (must not start with `$`).
    ///   - schemaVersion: the payload's current schema version (1 for a type never changed).
    ///   - coder: its coder; nil: the registry's.
    ///   - embed: makes a domain event of a decoded payload.
    ///   - extract: the payload when a domain event is of this type, else nil.
    public mutating func register<Payload: Codable & Sendable>(
        _ payload: Payload.Type, type: String, schemaVersion: UInt32 = 1, coder: (any PayloadCoder)? = nil,
        embed: @escaping @Sendable (Payload) -> DomainEvent, extract: @escaping @Sendable (DomainEvent) -> Payload?
    ) {
        precondition(registrations[type] == nil, "event type \(type) is registered twice")
        let coder = coder ?? self.coder
        registrations[type] = Registration(
            type: type, schemaVersion: schemaVersion, contentType: coder.contentType,
            decode: { bytes in embed(try coder.decode(Payload.self, from: bytes)) },
            encode: { event in try extract(event).map { try coder.encode($0) } })
        order.append(type)
    }

    /// Registers the registry's only event type: the domain event is the payload.
    public mutating func register(
        _ payload: DomainEvent.Type, type: String, schemaVersion: UInt32 = 1, coder: (any PayloadCoder)? = nil
    ) where DomainEvent: Codable {
        register(payload, type: type, schemaVersion: schemaVersion, coder: coder, embed: { $0 }, extract: { $0 })
    }

    /// Adds the upcaster that turns a payload of `type` at schema version
    /// `from` into one at `from + 1`, on the bytes as stored.
    public mutating func upcast(type: String, from version: UInt32, _ transform: @escaping @Sendable ([UInt8]) throws -> [UInt8]) {
        let key = UpcastKey(type: type, from: version)
        precondition(upcasters[key] == nil, "event type \(type) has two upcasters from schema version \(version)")
        upcasters[key] = transform
    }

    /// Adds the upcaster from schema version `from` to `from + 1` of `type`
    /// as a conversion between the two versions' `Codable` types, each
    /// through `coder` (nil: the registry's).
    public mutating func upcast<Old: Decodable & Sendable, New: Encodable & Sendable>(
        type: String, from version: UInt32, _ old: Old.Type, to new: New.Type, coder: (any PayloadCoder)? = nil,
        _ convert: @escaping @Sendable (Old) throws -> New
    ) {
        let coder = coder ?? self.coder
        upcast(type: type, from: version) { bytes in try coder.encode(try convert(try coder.decode(Old.self, from: bytes))) }
    }

    // MARK: Writing

    /// The `NewEvent` for `event` in `stream`: its registration's type name,
    /// payload bytes, and, in `metadata`, the current schema version and the content type.
    ///
    /// - Throws: `SourcingError.unregisteredEvent` when no registration
    ///   extracts it; what its coder throws, as `SourcingError.undecodable`.
    public func encode(_ event: DomainEvent, stream: String, metadata: EventMetadata = EventMetadata()) throws -> NewEvent {
        for type in order {
            guard let registration = registrations[type] else { continue }
            let data: [UInt8]?
            do { data = try registration.encode(event) } catch {
                throw SourcingError.undecodable(type: type, position: nil, reason: "encoding failed: \(error)")
            }
            guard let data else { continue }
            var metadata = metadata
            metadata.schemaVersion = registration.schemaVersion
            metadata.contentType = registration.contentType
            return NewEvent(stream: stream, type: type, data: data, metadata: metadata)
        }
        throw SourcingError.unregisteredEvent("\(event)")
    }

    // MARK: Reading

    /// The domain event in a stored payload of `type` at `schemaVersion`
    /// (nil counts as 1: events written without one), upcast to the current
    /// version; nil when `type` is not registered.
    ///
    /// - Throws: `SourcingError.missingUpcaster` for a gap in the chain,
    ///   `schemaVersionTooNew`, `undecodable` (naming `position`).
    public func decode(type: String, schemaVersion: UInt32?, data: [UInt8], position: UInt64? = nil) throws -> DomainEvent? {
        guard let registration = registrations[type] else { return nil }
        var version = schemaVersion ?? 1
        if version > registration.schemaVersion {
            throw SourcingError.schemaVersionTooNew(type: type, version: version, current: registration.schemaVersion)
        }
        var bytes = data
        while version < registration.schemaVersion {
            guard let upcaster = upcasters[UpcastKey(type: type, from: version)] else {
                throw SourcingError.missingUpcaster(type: type, from: version, current: registration.schemaVersion)
            }
            do { bytes = try upcaster(bytes) } catch {
                throw SourcingError.undecodable(type: type, position: position, reason: "upcasting from schema version \(version): \(error)")
            }
            version += 1
        }
        do { return try registration.decode(bytes) } catch {
            throw SourcingError.undecodable(type: type, position: position, reason: "\(error)")
        }
    }

    /// A stored event, decoded (and upcast), or `.unknown` when its type is not registered.
    public func decode(_ event: Event) throws -> Decoded<DomainEvent> {
        guard let decoded = try decode(
            type: event.type, schemaVersion: event.metadata.schemaVersion, data: event.data, position: event.position)
        else { return .unknown(event) }
        return .event(RecordedEvent(
            event: decoded, type: event.type, stream: event.stream, version: event.version, position: event.position,
            timestamp: event.timestamp, metadata: event.metadata))
    }

    /// A lent event, decoded (and upcast), or `.unknown` (an owned copy) when its type is not registered.
    public func decode(_ view: EventView) throws -> Decoded<DomainEvent> {
        let type = view.type
        let metadata = try view.metadata()
        guard let decoded = try decode(type: type, schemaVersion: metadata.schemaVersion, data: Array(view.data), position: view.position)
        else { return .unknown(try view.event()) }
        return .event(RecordedEvent(
            event: decoded, type: type, stream: view.stream, version: view.version, position: view.position,
            timestamp: view.timestamp, metadata: metadata))
    }

    /// A stored event that must be of a registered type.
    ///
    /// - Throws: `SourcingError.unknownEventType` when it is not; otherwise as `decode(_:)`.
    public func decodeKnown(_ event: Event) throws -> RecordedEvent<DomainEvent> {
        switch try decode(event) {
        case .event(let recorded): return recorded
        case .unknown(let event): throw SourcingError.unknownEventType(type: event.type, stream: event.stream, position: event.position)
        }
    }
}
