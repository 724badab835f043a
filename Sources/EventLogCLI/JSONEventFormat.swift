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
/// with an explicit key gets `"key"`, a tombstone `"tombstone": true`, and an
/// event whose data key was forgotten (`Log.forgetStream`) `"forgotten": true`
/// (its data and metadata empty), before it.
///
/// `dump --data base64` writes `data_base64` for every event, and
/// `--data hex` writes `data_hex` (lowercase hexadecimal) instead.
enum JSONEventFormat {
    static func write(_ event: EventView, metadata: EventMetadata, data format: DataFormat? = nil, into output: inout OutputWriter) {
        writeHead(event, into: &output)
        writeData(event.data, isJSONType: format != .hex && format != .base64 && isJSON(metadata.contentType), format, into: &output)
        output.append(literal: ",\"metadata\":")
        write(metadata, into: &output)
        writeTail(event, into: &output)
    }

    /// `write(_:metadata:data:into:)` with the metadata written from its
    /// encoded bytes (`EncodedMetadataJSON`): the same line, without
    /// decoding the metadata into strings. False, with part of the line
    /// written, when the section is not one that reads (not plain ASCII,
    /// or a defect): the caller truncates the output and goes through the
    /// decoded metadata, which writes it or reports the defect.
    static func writeFromEncoded(_ event: EventView, data format: DataFormat? = nil, into output: inout OutputWriter) -> Bool {
        let metadata = event.metadataBytes
        var isJSONType = false
        if format != .hex && format != .base64 && !metadata.isEmpty {
            guard let found = EncodedMetadataJSON.contentTypeIsJSON(metadata) else { return false }
            isJSONType = found
        }
        writeHead(event, into: &output)
        writeData(event.data, isJSONType: isJSONType, format, into: &output)
        if metadata.isEmpty {
            output.append(literal: ",\"metadata\":{}")
        } else {
            output.append(literal: ",\"metadata\":")
            guard EncodedMetadataJSON.write(metadata, headers: .members, into: &output) else { return false }
        }
        writeTail(event, into: &output)
        return true
    }

    /// `{"position":…,"stream":…,"version":…,"type":…,"timestamp":…`
    @inline(__always)
    private static func writeHead(_ event: EventView, into output: inout OutputWriter) {
        output.append(literal: "{\"position\":")
        output.append(event.position)
        output.append(literal: ",\"stream\":")
        output.appendJSONString(event.streamBytes)
        output.append(literal: ",\"version\":")
        output.append(event.version)
        output.append(literal: ",\"type\":")
        output.appendJSONString(event.typeBytes)
        output.append(literal: ",\"timestamp\":")
        output.append(event.timestamp)
    }

    /// The data member: `data_hex`, `data` (JSON content, valid) or `data_base64`.
    @inline(__always)
    private static func writeData(_ data: UnsafeRawBufferPointer, isJSONType: Bool, _ format: DataFormat?, into output: inout OutputWriter) {
        if format == .hex {
            output.append(literal: ",\"data_hex\":\"")
            output.appendHex(data)
            output.append(byte: UInt8(ascii: "\""))
        } else if isJSONType && JSONScanner.isValid(data) {
            output.append(literal: ",\"data\":")
            appendOnOneLine(data, into: &output)
        } else {
            output.append(literal: ",\"data_base64\":\"")
            output.appendBase64(data)
            output.append(byte: UInt8(ascii: "\""))
        }
    }

    /// The key, tombstone and marker members, and the closing brace.
    @inline(__always)
    private static func writeTail(_ event: EventView, into output: inout OutputWriter) {
        let key = event.keyBytes
        if !key.isEmpty {
            output.append(literal: ",\"key\":")
            if key.contains(where: { $0 >= 0x80 }) {
                // As it always was: decoded (invalid UTF-8 as U+FFFD), then escaped.
                output.appendJSONString(String(decoding: key, as: UTF8.self))
            } else {
                output.appendJSONString(key)
            }
        }
        if event.isTombstone { output.append(literal: ",\"tombstone\":true") }
        if event.isForgotten { output.append(literal: ",\"forgotten\":true") }
        if event.isMarker { output.append(literal: ",\"marker\":true") }
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
