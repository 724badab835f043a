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
///     {"cursor":"projector","position":2,"updated_at":1700000000000000}
///     {"parked":"group:mailer","position":1,"deliveries":5}
///     {"export_end":9,"batches":1,"records":2,"stream_states":1,"cursors":1,"parked":1}
///
/// The writer here and the reader (`ExportReader`) are the one definition of it.
enum ExportFormat {
    /// The value of the header's `eventlog_export`: this layout. Layout 2
    /// added the `cursor` and `parked` lines and their counts on the last line.
    static let version = 2
    /// The layouts import reads: 1 (without cursors) and 2.
    static let readableVersions: ClosedRange<UInt64> = 1...2

    struct Header: Equatable {
        /// The layout the file declares (`eventlog_export`); what `writeHeader` writes is always `version`.
        var layout = ExportFormat.version
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
            if !EncodedMetadataJSON.write(event.metadataBytes, headers: .pairs, into: &output) {
                // Not a section this reads: decoding it writes what it holds, or throws the defect.
                output.truncate(to: mark)
                writeMetadata(try library { try event.metadata() }, into: &output)
            }
        }
        if !event.keyBytes.isEmpty {
            output.append(literal: ",\"key\":")
            output.appendJSONString(event.keyBytes)
        }
        if event.isTombstone { output.append(literal: ",\"tombstone\":true") }
        if event.isForgotten { output.append(literal: ",\"forgotten\":true") }
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

    /// A named cursor as the cursor journal keeps it (Format.md §15).
    static func writeCursor(_ cursor: ConsumerSnapshot.Cursor, into output: inout OutputWriter) {
        output.append("{\"cursor\":")
        output.appendJSONString(cursor.name)
        output.append(",\"position\":")
        output.append(cursor.position)
        output.append(",\"updated_at\":")
        output.append(cursor.updatedAt)
        output.append(byte: UInt8(ascii: "}"))
    }

    /// An event a consumer group parked, under the group's cursor name.
    static func writeParked(_ parked: ConsumerSnapshot.Parked, into output: inout OutputWriter) {
        output.append("{\"parked\":")
        output.appendJSONString(parked.cursor)
        output.append(",\"position\":")
        output.append(parked.position)
        output.append(",\"deliveries\":")
        output.append(UInt64(parked.deliveries))
        output.append(byte: UInt8(ascii: "}"))
    }

    /// The counts of what the export holds; import checks them.
    struct Counts: Equatable {
        var batches = 0
        var records = 0
        var streamStates = 0
        var cursors = 0
        var parked = 0
    }

    /// The lines after the batches of a whole-log export, each ended: every
    /// stream's state, every cursor, every parked event, then the last line
    /// with `counts` (whose stream-state, cursor and parked counts are set here).
    static func writeTrailer(
        streams: [StreamSnapshot], consumers: ConsumerSnapshot, endPosition: UInt64, counts: Counts, into output: inout OutputWriter
    ) throws(OutputError) {
        for state in streams {
            writeStreamState(state, into: &output)
            try output.appendLineEnd()
        }
        for cursor in consumers.cursors {
            writeCursor(cursor, into: &output)
            try output.appendLineEnd()
        }
        for parked in consumers.parked {
            writeParked(parked, into: &output)
            try output.appendLineEnd()
        }
        var counts = counts
        counts.streamStates = streams.count
        counts.cursors = consumers.cursors.count
        counts.parked = consumers.parked.count
        writeEnd(endPosition: endPosition, counts, into: &output)
        try output.appendLineEnd()
    }

    static func writeEnd(endPosition: UInt64, _ counts: Counts, into output: inout OutputWriter) {
        output.append("{\"export_end\":")
        output.append(endPosition)
        output.append(",\"batches\":")
        output.append(counts.batches)
        output.append(",\"records\":")
        output.append(counts.records)
        output.append(",\"stream_states\":")
        output.append(counts.streamStates)
        output.append(",\"cursors\":")
        output.append(counts.cursors)
        output.append(",\"parked\":")
        output.append(counts.parked)
        output.append(byte: UInt8(ascii: "}"))
    }
}
