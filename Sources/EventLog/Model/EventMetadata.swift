import struct Foundation.UUID

/// What travels with an event besides its data: the facts a consumer needs to
/// interpret it (schema version, content type) and to trace it (event id,
/// correlation and causation ids), plus free string headers.
///
/// Every field is optional and costs nothing on disk when absent.
public struct EventMetadata: Sendable, Hashable {
    /// A free string header, kept in the order given.
    public struct Header: Sendable, Hashable {
        /// The header's name.
        public var name: String
        /// The header's value.
        public var value: String
        /// A header named `name` with `value`.
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The event's identity, chosen by the producer (used for idempotent retries).
    public var eventID: UUID?
    /// The version of the event type's schema; integration events carry it as a contract.
    public var schemaVersion: UInt32?
    /// The media type of `data`, e.g. `application/json`.
    public var contentType: String?
    /// Id of the conversation or process this event belongs to.
    public var correlationID: String?
    /// Id of the message or command that caused this event.
    public var causationID: String?
    /// Free headers (at most `Limits.maxHeaders`).
    public var headers: [Header]

    /// Metadata; every field is optional, and empty metadata takes no space in the record.
    public init(
        eventID: UUID? = nil, schemaVersion: UInt32? = nil, contentType: String? = nil,
        correlationID: String? = nil, causationID: String? = nil, headers: [Header] = []
    ) {
        self.eventID = eventID
        self.schemaVersion = schemaVersion
        self.contentType = contentType
        self.correlationID = correlationID
        self.causationID = causationID
        self.headers = headers
    }

    /// True when no field is set (the record then has no metadata section).
    public var isEmpty: Bool {
        eventID == nil && schemaVersion == nil && contentType == nil && correlationID == nil
            && causationID == nil && headers.isEmpty
    }

    /// The value of the first header with this name.
    public subscript(header name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}
