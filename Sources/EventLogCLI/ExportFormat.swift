import EventLog
@_spi(EventLogTool) import EventLog
import struct Foundation.UUID

/// The export format (`eventlog export`, `eventlog import`; README, "The
/// export format"): JSON Lines, one object a line, each line's kind named by
/// its first key:
///
///     {"eventlog_export":1,"format_version":5,"log_id":"…","start_position":0,"end_position":9,
///      "index_interval":4096,"stream_states":true,"settings":{…config --json…}}
///     {"batch":0,"record_count":2,"first_timestamp":1700000000000000}
///     {"position":0,"stream":"order-1","version":0,"type":"OrderPlaced","timestamp":1700000000000000,
///      "data_base64":"…","metadata":{"event_id":"…","headers":[["tenant","acme"]]},"key":"…","tombstone":true}
///     {"position":1,"stream":"order-1","version":1,"type":"$deleted","timestamp":…,"data_base64":"AA==","marker":true}
///     {"stream_state":"order-1","next_version":1,"truncate_before":1,"deleted":"soft","first_position":0,
///      "last_position":0,"last_append":{"batch_position":0,"first_version":0,"event_count":1,"record_count":2,
///      "id_digest":"d77c57323b0f7a00"},"max_age_microseconds":null,"max_count":null}
///     {"export_end":9,"batches":1,"records":2,"stream_states":1}
///
/// The writer here and the reader (`ExportReader`) are the one definition of it.
enum ExportFormat {
    /// The value of the header's `eventlog_export`: this layout.
    static let version = 1

    struct Header: Equatable {
        var formatVersion: Int
        var logID: UUID
        var startPosition: UInt64
        var endPosition: UInt64
        var indexInterval: Int
        var hasStreamStates: Bool
        var settings: LogSettings
    }

    static func writeHeader(_ header: Header, into output: inout OutputWriter) {
        output.append("{\"eventlog_export\":")
        output.append(version)
        output.append(",\"format_version\":")
        output.append(header.formatVersion)
        output.append(",\"log_id\":")
        output.appendJSONString(header.logID.uuidString.lowercased())
        output.append(",\"start_position\":")
        output.append(header.startPosition)
        output.append(",\"end_position\":")
        output.append(header.endPosition)
        output.append(",\"index_interval\":")
        output.append(header.indexInterval)
        output.append(",\"stream_states\":")
        output.append(header.hasStreamStates ? "true" : "false")
        output.append(",\"settings\":")
        RetentionSettingsFormat.writeJSON(header.settings, into: &output)
        output.append(byte: UInt8(ascii: "}"))
    }

    static func writeBatch(_ batch: BatchInfo, into output: inout OutputWriter) {
        output.append(literal: "{\"batch\":")
        output.append(batch.basePosition)
        output.append(literal: ",\"record_count\":")
        output.append(batch.recordCount)
        output.append(literal: ",\"first_timestamp\":")
        output.append(batch.firstTimestamp)
        output.append(byte: UInt8(ascii: "}"))
    }

    /// One record: the keys of `dump --json` for the same things, the data
    /// always as `data_base64` (exact bytes), the metadata only when the
    /// record has a metadata section, its headers as `[name, value]` pairs in
    /// their stored order (names may repeat, or be a field's name).
    static func writeRecord(_ event: EventView, into output: inout OutputWriter) throws(EventLogError) {
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
        output.append(literal: ",\"data_base64\":\"")
        output.appendBase64(event.data)
        output.append(byte: UInt8(ascii: "\""))
        if !event.metadataBytes.isEmpty {
            output.append(literal: ",\"metadata\":")
            let mark = output.count
            if !writeMetadata(encoded: event.metadataBytes, into: &output) {
                // Not a section this reads: decoding it writes what it holds, or throws the defect.
                output.truncate(to: mark)
                let metadata: EventMetadata
                // Every error the library throws is an EventLogError (README, "Errors").
                do { metadata = try event.metadata() } catch let error as EventLogError { throw error } catch {
                    throw .invalidArgument("\(error)")
                }
                writeMetadata(metadata, into: &output)
            }
        }
        if !event.keyBytes.isEmpty {
            output.append(literal: ",\"key\":")
            output.appendJSONString(event.keyBytes)
        }
        if event.isTombstone { output.append(literal: ",\"tombstone\":true") }
        if event.isMarker { output.append(literal: ",\"marker\":true") }
        output.append(byte: UInt8(ascii: "}"))
    }

    static func writeMetadata(_ metadata: EventMetadata, into output: inout OutputWriter) {
        output.append(byte: UInt8(ascii: "{"))
        var members = JSONMembers()
        JSONEventFormat.writeFields(of: metadata, &members, into: &output)
        // export's form: the headers as a list of [name, value] pairs (names may repeat).
        if !metadata.headers.isEmpty {
            members.key("headers", &output)
            output.append(byte: UInt8(ascii: "["))
            for (i, header) in metadata.headers.enumerated() {
                if i > 0 { output.append(byte: UInt8(ascii: ",")) }
                output.append(byte: UInt8(ascii: "["))
                output.appendJSONString(header.name)
                output.append(byte: UInt8(ascii: ","))
                output.appendJSONString(header.value)
                output.append(byte: UInt8(ascii: "]"))
            }
            output.append(byte: UInt8(ascii: "]"))
        }
        output.append(byte: UInt8(ascii: "}"))
    }

    /// Writes an encoded metadata section (Format.md, "Metadata section") as
    /// `writeMetadata(_:into:)` writes the `EventMetadata` it decodes to, but
    /// straight from its bytes (no decoding into strings and arrays). False,
    /// with part of it written, for a section `MetadataCoding.decode` would
    /// not read, or one holding a string that is not plain ASCII: the
    /// caller then truncates the output and goes through the decoded value.
    static func writeMetadata(encoded bytes: UnsafeRawBufferPointer, into output: inout OutputWriter) -> Bool {
        var i = 0
        var lastTag: UInt8 = 0
        var inHeaders = false
        output.append(byte: UInt8(ascii: "{"))
        /// A length-prefixed string at `i`, when it is plain ASCII (what the decoded string would be too).
        func string(_ i: inout Int) -> UnsafeRawBufferPointer? {
            guard let length = Varint.read(bytes, &i), length <= UInt64(bytes.count - i) else { return nil }
            let text = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Int(length))])
            for byte in text where byte >= 0x80 { return nil }
            i += Int(length)
            return text
        }
        while i < bytes.count {
            let tag = bytes[i]
            i += 1
            guard tag >= 1, tag <= 6, tag >= lastTag, tag != lastTag || tag == 6 else { return false }
            if tag != 6 && lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
            switch tag {
            case 1:
                guard bytes.count - i >= 16 else { return false }
                output.append(literal: "\"event_id\":\"")
                for k in 0..<16 {
                    if k == 4 || k == 6 || k == 8 || k == 10 { output.append(byte: UInt8(ascii: "-")) }
                    output.appendHex(UInt64(bytes[i + k]), digits: 2)
                }
                output.append(byte: UInt8(ascii: "\""))
                i += 16
            case 2:
                guard let version = Varint.read(bytes, &i), version <= UInt64(UInt32.max) else { return false }
                output.append(literal: "\"schema_version\":")
                output.append(version)
            case 3, 4, 5:
                guard let text = string(&i) else { return false }
                output.append(literal: tag == 3 ? "\"content_type\":" : tag == 4 ? "\"correlation_id\":" : "\"causation_id\":")
                output.appendJSONString(text)
            default:
                guard let name = string(&i), let value = string(&i) else { return false }
                if inHeaders {
                    output.append(literal: ",[")
                } else {
                    if lastTag != 0 { output.append(byte: UInt8(ascii: ",")) }
                    output.append(literal: "\"headers\":[[")
                    inHeaders = true
                }
                output.appendJSONString(name)
                output.append(byte: UInt8(ascii: ","))
                output.appendJSONString(value)
                output.append(byte: UInt8(ascii: "]"))
            }
            lastTag = tag
        }
        if inHeaders { output.append(byte: UInt8(ascii: "]")) }
        output.append(byte: UInt8(ascii: "}"))
        return true
    }

    static func deletionName(_ deletion: StreamDeletion) -> String {
        switch deletion {
        case .none: return "none"
        case .soft: return "soft"
        case .hard: return "hard"
        }
    }

    static func writeStreamState(_ state: StreamSnapshot, into output: inout OutputWriter) {
        func optional(_ value: UInt64?, _ output: inout OutputWriter) {
            if let value { output.append(value) } else { output.append("null") }
        }
        output.append("{\"stream_state\":")
        output.appendJSONString(state.name)
        output.append(",\"next_version\":")
        output.append(state.nextVersion)
        output.append(",\"truncate_before\":")
        output.append(state.truncateBefore)
        output.append(",\"deleted\":\"")
        output.append(deletionName(state.deletion))
        output.append("\",\"first_position\":")
        optional(state.firstPosition, &output)
        output.append(",\"last_position\":")
        optional(state.lastPosition, &output)
        output.append(",\"last_append\":")
        if let last = state.lastAppend {
            output.append("{\"batch_position\":")
            output.append(last.batchPosition)
            output.append(",\"first_version\":")
            output.append(last.firstVersion)
            output.append(",\"event_count\":")
            output.append(UInt64(last.eventCount))
            output.append(",\"record_count\":")
            output.append(UInt64(last.recordCount))
            output.append(",\"id_digest\":\"")
            output.appendHex(last.idDigest, digits: 16)
            output.append("\"}")
        } else {
            output.append("null")
        }
        output.append(",\"max_age_microseconds\":")
        optional(state.maxAgeMicroseconds == 0 ? nil : state.maxAgeMicroseconds, &output)
        output.append(",\"max_count\":")
        optional(state.maxCount == 0 ? nil : state.maxCount, &output)
        output.append(byte: UInt8(ascii: "}"))
    }

    static func writeEnd(endPosition: UInt64, batches: Int, records: Int, streamStates: Int, into output: inout OutputWriter) {
        output.append("{\"export_end\":")
        output.append(endPosition)
        output.append(",\"batches\":")
        output.append(batches)
        output.append(",\"records\":")
        output.append(records)
        output.append(",\"stream_states\":")
        output.append(streamStates)
        output.append(byte: UInt8(ascii: "}"))
    }
}
