import EventLog
import struct Foundation.UUID

/// Writes a stored event as one JSON object (the `dump --json` line):
///
///     {"position": 0, "stream": "order-1", "version": 0, "type": "OrderPlaced",
///      "timestamp": 1700000000000000, "data": {...}, "metadata": {...}}
///
/// `data` is the stored bytes as they are, when the event's content type is
/// `application/json` and the bytes are one valid JSON value (line breaks,
/// which JSON allows only as whitespace there, become spaces so the line
/// stays one line); otherwise `data_base64` holds them. `metadata` always
/// appears: `event_id`, `schema_version`, `content_type`, `correlation_id`
/// and `causation_id` when set (`MetadataFieldName`), then every header as a string. A stream marker
/// (a deletion or truncation record) gets `"marker": true` last; an event
/// with an explicit key gets `"key"`, a tombstone `"tombstone": true`, before it.
///
/// `dump --data base64` writes `data_base64` for every event, and
/// `--data hex` writes `data_hex` (lowercase hexadecimal) instead.
enum JSONEventFormat {
    static func write(_ event: EventView, metadata: EventMetadata, data format: DataFormat? = nil, into output: inout OutputWriter) {
        output.append("{\"position\":")
        output.append(event.position)
        output.append(",\"stream\":")
        output.appendJSONString(event.streamBytes)
        output.append(",\"version\":")
        output.append(event.version)
        output.append(",\"type\":")
        output.appendJSONString(event.typeBytes)
        output.append(",\"timestamp\":")
        output.append(event.timestamp)
        if format == .hex {
            output.append(",\"data_hex\":\"")
            output.appendHex(event.data)
            output.append(byte: UInt8(ascii: "\""))
        } else if format != .base64 && isJSON(metadata.contentType) && JSONScanner.isValid(event.data) {
            output.append(",\"data\":")
            appendOnOneLine(event.data, into: &output)
        } else {
            output.append(",\"data_base64\":\"")
            output.appendBase64(event.data)
            output.append(byte: UInt8(ascii: "\""))
        }
        output.append(",\"metadata\":")
        write(metadata, into: &output)
        if !event.keyBytes.isEmpty {
            output.append(",\"key\":")
            output.appendJSONString(String(decoding: event.keyBytes, as: UTF8.self))
        }
        if event.isTombstone { output.append(",\"tombstone\":true") }
        if event.isMarker { output.append(",\"marker\":true") }
        output.append(byte: UInt8(ascii: "}"))
    }

    static func write(_ metadata: EventMetadata, into output: inout OutputWriter) {
        output.append(byte: UInt8(ascii: "{"))
        var members = JSONMembers()
        writeFields(of: metadata, &members, into: &output)
        // dump's form: each header a member of its own.
        for header in metadata.headers {
            members.key(header.name, &output)
            output.appendJSONString(header.value)
        }
        output.append(byte: UInt8(ascii: "}"))
    }

    /// The metadata's fields (`MetadataFieldName`), each set one a member,
    /// in their order; its headers are left to the caller (dump and export
    /// write them differently).
    static func writeFields(of metadata: EventMetadata, _ members: inout JSONMembers, into output: inout OutputWriter) {
        if let id = metadata.eventID {
            members.key(MetadataFieldName.eventID.key, &output)
            output.appendJSONString(id.uuidString.lowercased())
        }
        if let version = metadata.schemaVersion {
            members.key(MetadataFieldName.schemaVersion.key, &output)
            output.append(UInt64(version))
        }
        if let contentType = metadata.contentType {
            members.key(MetadataFieldName.contentType.key, &output)
            output.appendJSONString(contentType)
        }
        if let correlation = metadata.correlationID {
            members.key(MetadataFieldName.correlationID.key, &output)
            output.appendJSONString(correlation)
        }
        if let causation = metadata.causationID {
            members.key(MetadataFieldName.causationID.key, &output)
            output.appendJSONString(causation)
        }
    }

    /// True for `application/json`, in any case, with or without parameters (`; charset=utf-8`).
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return mediaType.filter { $0 != " " && $0 != "\t" }.lowercased() == "application/json"
    }

    /// Valid JSON holds line breaks only as whitespace between tokens, where a space means the same.
    static func appendOnOneLine(_ json: UnsafeRawBufferPointer, into output: inout OutputWriter) {
        guard json.contains(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else {
            output.append(json)
            return
        }
        for byte in json {
            output.append(byte: byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") ? UInt8(ascii: " ") : byte)
        }
    }
}

/// The members of one JSON object being written: a comma before each but the first.
struct JSONMembers {
    private var first = true

    /// Writes `"name":`, after a comma unless it is the first member.
    mutating func key(_ name: String, _ output: inout OutputWriter) {
        if !first { output.append(byte: UInt8(ascii: ",")) }
        first = false
        output.appendJSONString(name)
        output.append(byte: UInt8(ascii: ":"))
    }
}
