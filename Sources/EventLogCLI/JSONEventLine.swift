import EventLog
import struct Foundation.Data
import struct Foundation.UUID

/// Turns one input line of `eventlog append` into a `NewEvent` and the
/// stream version the line expects:
///
///     {"stream": "order-1", "type": "OrderPlaced", "data": <any JSON value>,
///      "metadata": {"key": "value"}, "timestamp": 1700000000000000,
///      "id": "<UUID>", "expected_version": 4}
///
/// `data` keeps the exact bytes it had on the line (it is not re-serialized)
/// and the event's content type defaults to `application/json`. `metadata`
/// maps `event_id`, `schema_version`, `content_type`, `correlation_id` and
/// `causation_id` (`MetadataFieldName`; their camelCase names too) to their
/// `EventMetadata` fields and every other key to a
/// free header, whose value must be a string. `id` is the event id (the same
/// field as `metadata.event_id`; when both are given they must be the same
/// UUID). `expected_version` (or its earlier name `expectedVersion`) is a
/// non-negative integer, `"any"`, `"no_stream"` or `"stream_exists"`.
/// `metadata`, `timestamp`, `id` and `expected_version`
/// may be absent or null.
///
/// Instead of `data`, `data_base64` gives the data's bytes in base64 (what
/// `dump --json` prints for data that is not JSON; the content type then
/// defaults to `application/octet-stream`). So that `dump --json` output can
/// be appended again, `position` and `version` (which the log assigns) are
/// accepted and ignored when they are integers or null, and `marker` when it
/// is false or null (a stream marker cannot be appended). Any other key is an
/// error naming it: a misspelt `expected_version` must not silently drop the
/// expectation. `key` (a string: the key key compaction keeps the latest
/// event of; absent or null: the stream name) and `tombstone` (a boolean)
/// are optional.
enum JSONEventLine {
    static let defaultContentType = "application/json"
    static let binaryContentType = "application/octet-stream"

    /// Every top-level key a line may have.
    static let keys: Set<String> = [
        "stream", "type", "data", "data_base64", "metadata", "timestamp", "id", "expected_version", "expectedVersion", "position",
        "version", "marker", "key", "tombstone",
    ]

    /// Keys of earlier versions, still read but never suggested.
    static let legacyKeys: Set<String> = ["expectedVersion"]

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
        for key in fields.keys.sorted() where !keys.contains(key) {
            throw Malformed(reason: "unknown key \"\(key)\"" + (suggestion(for: key).map { " (did you mean \"\($0)\"?)" } ?? ""))
        }
        for key in ["position", "version"] {
            if let value = fields[key], value.kind != .null, JSONScanner.decodeInteger(line, value) == nil {
                throw Malformed(reason: "\"\(key)\" must be an integer or null (the log assigns it; dump --json prints it)")
            }
        }
        if let value = fields["marker"], value.kind != .null {
            guard value.kind == .bool, line[value.range.lowerBound] == UInt8(ascii: "f") else {
                throw Malformed(reason: "a stream marker (\"marker\": true) cannot be appended: use eventlog streams DIR delete or truncate")
            }
        }

        let stream = try requiredString("stream", fields, line)
        let type = try requiredString("type", fields, line)
        let dataBytes: [UInt8]
        var contentType = defaultContentType
        switch (fields["data"], fields["data_base64"]) {
        case (let data?, nil):
            dataBytes = Array(line[data.range])
        case (nil, let encoded?):
            let text = try string(encoded, "data_base64", line)
            guard let decoded = Data(base64Encoded: text) else { throw Malformed(reason: "\"data_base64\" is not base64") }
            dataBytes = Array(decoded)
            contentType = binaryContentType
        case (_?, _?):
            throw Malformed(reason: "both \"data\" and \"data_base64\": an event has one data")
        case (nil, nil):
            throw Malformed(reason: "missing \"data\" (or \"data_base64\")")
        }
        var metadata = EventMetadata(contentType: contentType)
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
                throw Malformed(reason: "\"id\" and \"metadata.event_id\" differ: an event has one id")
            }
            metadata.eventID = id
        }
        var expectedVersion: ExpectedVersion?
        if fields["expected_version"] != nil && fields["expectedVersion"] != nil {
            throw Malformed(reason: "both \"expected_version\" and \"expectedVersion\" (its earlier name): a line has one expectation")
        }
        if let value = fields["expected_version"] ?? fields["expectedVersion"], value.kind != .null {
            expectedVersion = try decodeExpectedVersion(value, line)
        }
        var key: String?
        if let value = fields["key"], value.kind != .null {
            let text = try string(value, "key", line)
            guard !text.isEmpty, text.utf8.count <= Limits.maxKeyBytes else {
                throw Malformed(reason: "\"key\" must be 1 to \(Limits.maxKeyBytes) UTF-8 bytes (leave it out: the key is then the stream name)")
            }
            key = text
        }
        var isTombstone = false
        if let value = fields["tombstone"], value.kind != .null {
            guard value.kind == .bool else { throw Malformed(reason: "\"tombstone\" must be true or false") }
            isTombstone = line[value.range.lowerBound] == UInt8(ascii: "t")
        }
        let event = NewEvent(
            stream: stream, type: type, data: dataBytes, metadata: metadata, timestamp: timestamp, key: key, isTombstone: isTombstone)
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
            throw Malformed(reason: "\"expected_version\" must be \(ExpectedVersion.acceptedForms), found \(found)")
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
            let name = MetadataFieldName(key: key)
            // Both spellings of one field are one key.
            guard seen.insert(name?.key ?? key).inserted else { throw Malformed(reason: "duplicate metadata key \"\(key)\"") }
            let field = "metadata.\(key)"
            switch name {
            case .eventID?:
                let text = try string(member.value, field, line)
                guard let id = UUID(uuidString: text) else { throw Malformed(reason: "\"\(field)\" is not a UUID: \"\(text)\"") }
                metadata.eventID = id
            case .schemaVersion?:
                guard let version = JSONScanner.decodeInteger(line, member.value), version >= 0, version <= Int64(UInt32.max) else {
                    throw Malformed(reason: "\"\(field)\" must be an integer within 0...\(UInt32.max)")
                }
                metadata.schemaVersion = UInt32(version)
            case .contentType?:
                metadata.contentType = try string(member.value, field, line)
            case .correlationID?:
                metadata.correlationID = try string(member.value, field, line)
            case .causationID?:
                metadata.causationID = try string(member.value, field, line)
            case nil:
                metadata.headers.append(EventMetadata.Header(key, try string(member.value, field, line)))
            }
        }
    }

    // MARK: Helpers

    /// The members by key; a key given twice is malformed (which one would win is anyone's guess).
    /// The known key `key` probably meant: the same letters, case and
    /// underscores aside (`expected_version`, `Stream`).
    static func suggestion(for key: String) -> String? {
        func folded(_ text: String) -> String { text.lowercased().filter { $0 != "_" && $0 != "-" } }
        let target = folded(key)
        // The names the tool prints, not the earlier camelCase ones it still reads.
        return keys.subtracting(legacyKeys).sorted().first { folded($0) == target }
    }

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
