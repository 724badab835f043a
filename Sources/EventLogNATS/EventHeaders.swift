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

    /// Appends the header block (`NATS/1.0` ... blank line) of one event to `out`, allocating nothing beyond what
    /// `out` needs to grow: the relay reuses one array for every event. `logID` is the log id's text as UTF-8.
    static func appendBlock(for event: EventView, metadata: EventMetadata?, logID: [UInt8], into out: inout [UInt8]) {
        // Static strings: copied without reference counting.
        func put(_ text: StaticString) { text.withUTF8Buffer { out += $0 } }
        func end() { put("\r\n") }
        func field(_ name: StaticString, _ value: String) {
            put(name)
            appendEncoded(value, into: &out, isName: false)
            end()
        }
        func rawField(_ name: StaticString, _ value: UnsafeRawBufferPointer) {
            put(name)
            appendEncoded(value, into: &out, isName: false)
            end()
        }
        func number(_ name: StaticString, _ value: UInt64) {
            put(name)
            appendDecimal(value, into: &out)
            end()
        }
        put("NATS/1.0\r\n")
        // The message id (`messageID(eventID:logID:position:)`), written without making a `String`.
        put(FieldNames.messageID)
        if let id = metadata?.eventID {
            appendUUID(id, into: &out)
        } else {
            out += logID
            out.append(UInt8(ascii: "-"))
            appendDecimal(event.position, into: &out)
        }
        end()
        rawField(FieldNames.stream, event.streamBytes)
        rawField(FieldNames.type, event.typeBytes)
        number(FieldNames.position, event.position)
        number(FieldNames.version, event.version)
        put(FieldNames.timestamp)
        if event.timestamp < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(event.timestamp.magnitude, into: &out)
        end()
        put(FieldNames.logID)
        out += logID
        end()
        if let metadata {
            if let id = metadata.eventID {
                put(FieldNames.eventID)
                appendUUID(id, into: &out)
                end()
            }
            if let v = metadata.schemaVersion { number(FieldNames.schemaVersion, UInt64(v)) }
            if let v = metadata.contentType { field(FieldNames.contentType, v) }
            if let v = metadata.correlationID { field(FieldNames.correlationID, v) }
            if let v = metadata.causationID { field(FieldNames.causationID, v) }
            for header in metadata.headers {
                put(FieldNames.freeHeaderPrefix)
                appendEncoded(header.name, into: &out, isName: true)
                put(": ")
                appendEncoded(header.value, into: &out, isName: false)
                end()
            }
        }
        end()
    }

    /// Each field's `Name: ` as the relay writes it: the names above, as static strings (copied without reference
    /// counting, for every event). `NATSRelayWindowTests` checks that they spell the names.
    enum FieldNames {
        static let messageID: StaticString = "Nats-Msg-Id: "
        static let stream: StaticString = "EventLog-Stream: "
        static let type: StaticString = "EventLog-Type: "
        static let position: StaticString = "EventLog-Position: "
        static let version: StaticString = "EventLog-Version: "
        static let timestamp: StaticString = "EventLog-Timestamp: "
        static let logID: StaticString = "EventLog-Log-ID: "
        static let eventID: StaticString = "EventLog-Event-ID: "
        static let schemaVersion: StaticString = "EventLog-Schema-Version: "
        static let contentType: StaticString = "EventLog-Content-Type: "
        static let correlationID: StaticString = "EventLog-Correlation-ID: "
        static let causationID: StaticString = "EventLog-Causation-ID: "
        /// Before a free header's name (no `: `).
        static let freeHeaderPrefix: StaticString = "EventLog-Header-"

        /// Each public name beside the static string the relay writes for it.
        static let all: [(name: String, written: StaticString)] = [
            (EventHeaders.messageID + ": ", messageID), (EventHeaders.stream + ": ", stream), (EventHeaders.type + ": ", type),
            (EventHeaders.position + ": ", position), (EventHeaders.version + ": ", version),
            (EventHeaders.timestamp + ": ", timestamp), (EventHeaders.logID + ": ", logID), (EventHeaders.eventID + ": ", eventID),
            (EventHeaders.schemaVersion + ": ", schemaVersion), (EventHeaders.contentType + ": ", contentType),
            (EventHeaders.correlationID + ": ", correlationID), (EventHeaders.causationID + ": ", causationID),
            (EventHeaders.freeHeaderPrefix, freeHeaderPrefix),
        ]
    }

    /// Appends `value` in decimal ASCII (as `String(value)` spells it).
    static func appendDecimal(_ value: UInt64, into out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var v = value
            var i = digits.count
            repeat {
                i -= 1
                digits[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            } while v > 0
            out += UnsafeBufferPointer(rebasing: digits[i...])
        }
    }

    /// Appends `id` as `UUID.uuidString` spells it (upper-case hex, 8-4-4-4-12).
    static func appendUUID(_ id: UUID, into out: inout [UInt8]) {
        withUnsafeBytes(of: id.uuid) { bytes in
            for (i, b) in bytes.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
                out.append(PercentEncoding.hex[Int(b >> 4)])
                out.append(PercentEncoding.hex[Int(b & 15)])
            }
        }
    }

    /// Appends `bytes` with the bytes a header value (or name) cannot hold as `%XX`; the runs between them are
    /// copied whole.
    static func appendEncoded(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8], isName: Bool) {
        var run = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            let escape = b == UInt8(ascii: "%") || b == 0x0D || b == 0x0A
                || (isName && (b <= 0x20 || b >= 0x7F || b == UInt8(ascii: ":")))
            guard escape else { continue }
            out += UnsafeRawBufferPointer(rebasing: bytes[run..<i])
            PercentEncoding.append(b, escaped: true, into: &out)
            run = i + 1
        }
        out += UnsafeRawBufferPointer(rebasing: bytes[run..<bytes.count])
    }

    /// `appendEncoded` of a string's UTF-8.
    static func appendEncoded(_ text: String, into out: inout [UInt8], isName: Bool) {
        var text = text
        text.withUTF8 { appendEncoded(UnsafeRawBufferPointer($0), into: &out, isName: isName) }
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
