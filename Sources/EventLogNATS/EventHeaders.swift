import EventLog
import NATSClient
import struct Foundation.UUID

/// How an event's fields travel as NATS headers, both ways (the relay writes
/// them, the inbox reads them). README, "Scale out with NATS JetStream",
/// lists them.
///
/// Header values are UTF-8 with `%`, CR and LF percent-encoded (`%25`, `%0D`,
/// `%0A`), so that any value the log holds can travel; a free header's name
/// is percent-encoded the same way where it holds a byte a NATS header name
/// cannot (anything but visible ASCII, and `:` and `%`).
public enum EventHeaders {
    /// JetStream's deduplication id: the event id when the event has one, else `<log id>-<position>`.
    public static let messageID = "Nats-Msg-Id"
    /// The event's stream name (the inbox appends to `<intoStreamPrefix>` + this).
    public static let stream = "EventLog-Stream"
    /// The event's type.
    public static let type = "EventLog-Type"
    /// The event's global position in the log it was relayed from.
    public static let position = "EventLog-Position"
    /// The event's version in its stream.
    public static let version = "EventLog-Version"
    /// Microseconds since 1970.
    public static let timestamp = "EventLog-Timestamp"
    /// `EventMetadata.eventID`, as a UUID string.
    public static let eventID = "EventLog-Event-ID"
    /// `EventMetadata.schemaVersion`, in decimal.
    public static let schemaVersion = "EventLog-Schema-Version"
    /// `EventMetadata.contentType`.
    public static let contentType = "EventLog-Content-Type"
    /// `EventMetadata.correlationID`.
    public static let correlationID = "EventLog-Correlation-ID"
    /// `EventMetadata.causationID`.
    public static let causationID = "EventLog-Causation-ID"
    /// The log the event was relayed from (its `Log.logID`).
    public static let logID = "EventLog-Log-ID"
    /// Before each free header's (encoded) name: `EventLog-Header-tenant: acme`.
    public static let freeHeaderPrefix = "EventLog-Header-"

    /// The id JetStream deduplicates by.
    public static func messageID(eventID: UUID?, logID: UUID, position: UInt64) -> String {
        eventID?.uuidString ?? "\(logID.uuidString)-\(position)"
    }

    /// `messageID(eventID:logID:position:)` with the log id already as text (formatting a UUID costs a `sprintf`).
    static func messageID(eventID: UUID?, logIDText: String, position: UInt64) -> String {
        eventID?.uuidString ?? "\(logIDText)-\(position)"
    }

    /// The header block (`NATS/1.0` ... blank line) for one event.
    static func block(for event: EventView, metadata: EventMetadata?, logID: String, logIDValue: UUID) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out += "NATS/1.0\r\n".utf8
        func field(_ name: String, _ value: String) {
            out += name.utf8
            out += ": ".utf8
            appendEncoded(value.utf8, into: &out, isName: false)
            out += "\r\n".utf8
        }
        func rawField(_ name: String, _ value: UnsafeRawBufferPointer) {
            out += name.utf8
            out += ": ".utf8
            appendEncoded(value, into: &out, isName: false)
            out += "\r\n".utf8
        }
        field(messageID, messageID(eventID: metadata?.eventID, logIDText: logID, position: event.position))
        rawField(stream, event.streamBytes)
        rawField(type, event.typeBytes)
        field(position, String(event.position))
        field(version, String(event.version))
        field(timestamp, String(event.timestamp))
        field(Self.logID, logID)
        if let metadata {
            if let id = metadata.eventID { field(eventID, id.uuidString) }
            if let v = metadata.schemaVersion { field(schemaVersion, String(v)) }
            if let v = metadata.contentType { field(contentType, v) }
            if let v = metadata.correlationID { field(correlationID, v) }
            if let v = metadata.causationID { field(causationID, v) }
            for header in metadata.headers {
                out += freeHeaderPrefix.utf8
                appendEncoded(header.name.utf8, into: &out, isName: true)
                out += ": ".utf8
                appendEncoded(header.value.utf8, into: &out, isName: false)
                out += "\r\n".utf8
            }
        }
        out += "\r\n".utf8
        return out
    }

    /// Appends `bytes` with the bytes a header value (or name) cannot hold as `%XX`.
    static func appendEncoded<C: Sequence<UInt8>>(_ bytes: C, into out: inout [UInt8], isName: Bool) {
        for b in bytes {
            let escape = b == UInt8(ascii: "%") || b == 0x0D || b == 0x0A
                || (isName && (b <= 0x20 || b >= 0x7F || b == UInt8(ascii: ":")))
            PercentEncoding.append(b, escaped: escape, into: &out)
        }
    }

    /// Undoes `appendEncoded` (a `%` not followed by two hex digits stays as it is).
    public static func decode(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        let u = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x41...0x46: return c - 0x41 + 10
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let h = hexValue(u[i + 1]), let l = hexValue(u[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The metadata the headers of a relayed message carry (others become free headers, `Nats-*` ones excepted).
    public static func metadata(from headers: NATSHeaders?) -> EventMetadata {
        var metadata = EventMetadata()
        guard let headers else { return metadata }
        headers.forEachField { name, raw in
            let value = decode(raw)
            if sameName(name, eventID) {
                metadata.eventID = value.utf8.count == 36 ? UUID(uuidString: value) : nil
            } else if sameName(name, schemaVersion) {
                metadata.schemaVersion = UInt32(value)
            } else if sameName(name, contentType) {
                metadata.contentType = value
            } else if sameName(name, correlationID) {
                metadata.correlationID = value
            } else if sameName(name, causationID) {
                metadata.causationID = value
            } else if hasNamePrefix(name, "EventLog-") {
                if hasNamePrefix(name, freeHeaderPrefix) {
                    metadata.headers.append(.init(decode(String(name.dropFirst(freeHeaderPrefix.count))), value))
                }
                // The others (stream, type, position, version, timestamp, log id) are the event's own fields.
            } else if !hasNamePrefix(name, "Nats-") {
                metadata.headers.append(.init(name, value))
            }
        }
        return metadata
    }

    /// Header names compare without regard to ASCII case (as NATS does), without allocating.
    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && hasNamePrefix(a, b)
    }

    static func hasNamePrefix(_ name: String, _ prefix: String) -> Bool {
        var n = name.utf8.makeIterator()
        for p in prefix.utf8 {
            guard let c = n.next(), c | 0x20 == p | 0x20, (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A || c == p else { return false }
        }
        return true
    }
}
