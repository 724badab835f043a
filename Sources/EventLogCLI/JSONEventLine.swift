import EventLog
import struct Foundation.UUID

/// Turns one input line of `eventlog append` into a `NewEvent` and the
/// stream version the line expects:
///
///     {"stream": "order-1", "type": "OrderPlaced", "data": <any JSON value>,
///      "metadata": {"key": "value"}, "timestamp": 1700000000000000,
///      "id": "<UUID>", "expectedVersion": 4}
///
/// `data` keeps the exact bytes it had on the line (it is not re-serialized)
/// and the event's content type defaults to `application/json`. `metadata`
/// maps `eventId`, `schemaVersion`, `contentType`, `correlationId` and
/// `causationId` to their `EventMetadata` fields and every other key to a
/// free header, whose value must be a string. `id` is the event id (the same
/// field as `metadata.eventId`; when both are given they must be the same
/// UUID). `expectedVersion` is a non-negative integer, `"any"`, `"no_stream"`
/// or `"stream_exists"`. `metadata`, `timestamp`, `id` and `expectedVersion`
/// may be absent or null; other top-level keys are ignored.
enum JSONEventLine {
    static let defaultContentType = "application/json"

    /// Why a line is not a valid event.
    struct Malformed: Error {
        var reason: String
    }

    /// One parsed input line.
    struct Parsed {
        var event: NewEvent
        /// The version the line's stream must have before the line's batch (nil: no expectation of its own).
        var expectedVersion: ExpectedVersion?
    }

    static func parse(_ line: [UInt8]) throws(Malformed) -> NewEvent {
        try parseLine(line).event
    }

    static func parseLine(_ line: [UInt8]) throws(Malformed) -> Parsed {
        let top: JSONValue
        let members: [JSONMember]
        do {
            (top, members) = try JSONScanner.scan(line)
        } catch {
            throw Malformed(reason: "invalid JSON at column \(error.offset + 1): \(error.reason)")
        }
        guard top.kind == .object else { throw Malformed(reason: "expected a JSON object, found \(top.kind.name)") }
        let fields = try uniqueMembers(members, in: line, of: "the event")

        let stream = try requiredString("stream", fields, line)
        let type = try requiredString("type", fields, line)
        guard let data = fields["data"] else { throw Malformed(reason: "missing \"data\"") }
        var metadata = EventMetadata(contentType: defaultContentType)
        if let value = fields["metadata"], value.kind != .null {
            try decodeMetadata(value, in: line, into: &metadata)
        }
        var timestamp: Timestamp?
        if let value = fields["timestamp"], value.kind != .null {
            guard let micros = JSONScanner.decodeInteger(line, value) else {
                throw Malformed(reason: "\"timestamp\" must be an integer (microseconds since 1970-01-01T00:00:00Z)")
            }
            timestamp = micros
        }
        if let value = fields["id"], value.kind != .null {
            let text = try string(value, "id", line)
            guard let id = UUID(uuidString: text) else { throw Malformed(reason: "\"id\" is not a UUID: \"\(text)\"") }
            if let given = metadata.eventID, given != id {
                throw Malformed(reason: "\"id\" and \"metadata.eventId\" differ: an event has one id")
            }
            metadata.eventID = id
        }
        var expectedVersion: ExpectedVersion?
        if let value = fields["expectedVersion"], value.kind != .null {
            expectedVersion = try decodeExpectedVersion(value, line)
        }
        let event = NewEvent(
            stream: stream, type: type, data: Array(line[data.range]), metadata: metadata, timestamp: timestamp)
        return Parsed(event: event, expectedVersion: expectedVersion)
    }

    private static func decodeExpectedVersion(_ value: JSONValue, _ line: [UInt8]) throws(Malformed) -> ExpectedVersion {
        let expected: ExpectedVersion?
        switch value.kind {
        case .number: expected = JSONScanner.decodeInteger(line, value).flatMap { $0 >= 0 ? .exact(UInt64($0)) : nil }
        case .string: expected = JSONScanner.decodeString(line, value).flatMap(ExpectedVersion.init(keyword:))
        default: expected = nil
        }
        guard let expected else {
            // A number or a string is quoted as written (cut short), so the person sees the typo.
            let found = value.kind == .number || value.kind == .string
                ? String(decoding: line[value.range].prefix(40), as: UTF8.self) : value.kind.name
            throw Malformed(reason: "\"expectedVersion\" must be \(ExpectedVersion.acceptedForms), found \(found)")
        }
        return expected
    }

    // MARK: Metadata

    private static func decodeMetadata(_ value: JSONValue, in line: [UInt8], into metadata: inout EventMetadata) throws(Malformed) {
        guard value.kind == .object else { throw Malformed(reason: "\"metadata\" must be an object, found \(value.kind.name)") }
        let members: [JSONMember]
        do { (_, members) = try JSONScanner.scan(line, range: value.range) } catch {
            throw Malformed(reason: "invalid JSON at column \(error.offset + 1): \(error.reason)")
        }
        var seen = Set<String>()
        for member in members {
            guard let key = JSONScanner.decodeString(line, member.key) else {
                throw Malformed(reason: "a metadata key holds an unpaired surrogate escape")
            }
            guard seen.insert(key).inserted else { throw Malformed(reason: "duplicate metadata key \"\(key)\"") }
            let field = "metadata.\(key)"
            switch key {
            case "eventId":
                let text = try string(member.value, field, line)
                guard let id = UUID(uuidString: text) else { throw Malformed(reason: "\"\(field)\" is not a UUID: \"\(text)\"") }
                metadata.eventID = id
            case "schemaVersion":
                guard let version = JSONScanner.decodeInteger(line, member.value), version >= 0, version <= Int64(UInt32.max) else {
                    throw Malformed(reason: "\"\(field)\" must be an integer within 0...\(UInt32.max)")
                }
                metadata.schemaVersion = UInt32(version)
            case "contentType":
                metadata.contentType = try string(member.value, field, line)
            case "correlationId":
                metadata.correlationID = try string(member.value, field, line)
            case "causationId":
                metadata.causationID = try string(member.value, field, line)
            default:
                metadata.headers.append(EventMetadata.Header(key, try string(member.value, field, line)))
            }
        }
    }

    // MARK: Helpers

    /// The members by key; a key given twice is malformed (which one would win is anyone's guess).
    private static func uniqueMembers(
        _ members: [JSONMember], in line: [UInt8], of what: String
    ) throws(Malformed) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for member in members {
            guard let key = JSONScanner.decodeString(line, member.key) else {
                throw Malformed(reason: "a key of \(what) holds an unpaired surrogate escape")
            }
            guard fields.updateValue(member.value, forKey: key) == nil else {
                throw Malformed(reason: "duplicate key \"\(key)\"")
            }
        }
        return fields
    }

    private static func requiredString(_ key: String, _ fields: [String: JSONValue], _ line: [UInt8]) throws(Malformed) -> String {
        guard let value = fields[key] else { throw Malformed(reason: "missing \"\(key)\"") }
        let text = try string(value, key, line)
        guard !text.isEmpty else { throw Malformed(reason: "\"\(key)\" is empty") }
        return text
    }

    private static func string(_ value: JSONValue, _ field: String, _ line: [UInt8]) throws(Malformed) -> String {
        guard value.kind == .string else { throw Malformed(reason: "\"\(field)\" must be a string, found \(value.kind.name)") }
        guard let text = JSONScanner.decodeString(line, value) else {
            throw Malformed(reason: "\"\(field)\" holds an unpaired surrogate escape")
        }
        return text
    }
}
