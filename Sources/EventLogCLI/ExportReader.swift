import EventLog
import struct Foundation.UUID

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads the lines of the export format (`ExportFormat`) for `eventlog
/// import`: each line's kind from its first key, every key checked (an
/// unknown key is an error naming it), values decoded into what
/// `LogImporter` takes. A malformed line is `ExportReader.Malformed`; the
/// caller adds the line number.
struct ExportReader {
    struct Malformed: Error {
        var reason: String
    }

    /// One line of an export.
    enum Line {
        case header(ExportFormat.Header)
        case batch(position: UInt64, recordCount: Int, firstTimestamp: Timestamp)
        /// A record: its fields are read from the line (`record`), valid until the next line is parsed.
        case record
        case streamState(StreamSnapshot)
        case cursor(ConsumerSnapshot.Cursor)
        case parked(ConsumerSnapshot.Parked)
        /// The last line: its counts of cursors and parked events are nil in layout 1, which has neither.
        case end(endPosition: UInt64, counts: ExportFormat.Counts, hasConsumerCounts: Bool)
    }

    /// A string value's UTF-8 bytes: where it lies in the line, or decoded when it held escapes.
    enum Text {
        case raw(Range<Int>)
        case decoded([UInt8])
    }

    /// The record of the last `.record` line.
    struct Record {
        var position: UInt64 = 0
        var stream = Text.raw(0..<0)
        var version: UInt64 = 0
        var type = Text.raw(0..<0)
        var timestamp: Timestamp = 0
        var metadata: EventMetadata?
        var key: Text?
        var isTombstone = false
        var isMarker = false
        /// Its data key was forgotten in the exported log (its data and metadata are empty).
        var isForgotten = false
    }

    private(set) var record = Record()
    /// The data of the last record, decoded from base64 (reused).
    private(set) var data: [UInt8] = []

    // MARK: Lines

    mutating func parse(_ line: [UInt8]) throws(Malformed) -> Line {
        // A record line as export writes it, the bulk of an export, in one pass; any other through the general path.
        if line.count > 12, line[2] == UInt8(ascii: "p"), parseCanonicalRecord(line) { return .record }
        return try parseGeneral(line)
    }

    /// True when `other` read the same record from `line` as this reader
    /// did: every field, the data and the metadata. How the one pass and the
    /// general path are checked against each other (the fuzz target
    /// `import-json`, `ExportReaderPathsTests`).
    func readTheSameRecord(as other: ExportReader, from line: [UInt8]) -> Bool {
        let a = record
        let b = other.record
        return a.position == b.position && a.version == b.version && a.timestamp == b.timestamp
            && a.stream.bytes(in: line) == b.stream.bytes(in: line) && a.type.bytes(in: line) == b.type.bytes(in: line)
            && a.key?.bytes(in: line) == b.key?.bytes(in: line) && a.metadata == b.metadata
            && a.isTombstone == b.isTombstone && a.isMarker == b.isMarker && a.isForgotten == b.isForgotten
            && data == other.data
    }

    /// Any line, through the JSON scanner: what `parse` does with a line
    /// `parseCanonicalRecord` does not take (the fuzz target `import-json`
    /// checks that the two read a line both take the same way).
    mutating func parseGeneral(_ line: [UInt8]) throws(Malformed) -> Line {
        let top: JSONValue
        let members: [JSONMember]
        do {
            (top, members) = try JSONScanner.scan(line)
        } catch {
            throw Malformed(reason: "invalid JSON at column \(error.offset + 1): \(error.reason)")
        }
        guard top.kind == .object, let first = members.first else {
            throw Malformed(reason: "expected a JSON object with keys, found \(top.kind == .object ? "{}" : top.kind.name)")
        }
        switch try Self.key(first, line) {
        case "position": try parseRecord(members, line); return .record
        case "batch": return try Self.parseBatch(members, line)
        case "eventlog_export": return .header(try Self.parseHeader(members, line))
        case "stream_state": return .streamState(try Self.parseStreamState(members, line))
        case "cursor": return .cursor(try Self.parseCursor(members, line))
        case "parked": return .parked(try Self.parseParked(members, line))
        case "export_end": return try Self.parseEnd(members, line)
        case let other:
            throw Malformed(reason: "unknown line kind \"\(other)\" (a line starts with \"eventlog_export\", \"batch\", \"position\", \"stream_state\", \"cursor\", \"parked\" or \"export_end\")")
        }
    }

    private mutating func parseRecord(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) {
        var r = Record()
        var seen: UInt16 = 0
        var hasData = false
        for member in members {
            let name = try Self.key(member, line)
            let bit: UInt16
            switch name {
            case "position": bit = 1; r.position = try Self.unsigned(member.value, name, line)
            case "stream": bit = 2; r.stream = try Self.text(member.value, name, line)
            case "version": bit = 4; r.version = try Self.unsigned(member.value, name, line)
            case "type": bit = 8; r.type = try Self.text(member.value, name, line)
            case "timestamp": bit = 16; r.timestamp = try Self.integer(member.value, name, line)
            case "data_base64":
                bit = 32
                guard member.value.kind == .string else { throw Malformed(reason: "\"data_base64\" must be a string") }
                let inner = (member.value.range.lowerBound + 1)..<(member.value.range.upperBound - 1)
                guard Self.decodeBase64(line, inner, into: &data) else { throw Malformed(reason: "\"data_base64\" is not base64") }
                hasData = true
            case "metadata": bit = 64; r.metadata = try Self.parseMetadata(member.value, line)
            case "key": bit = 128; r.key = try Self.text(member.value, name, line)
            case "tombstone": bit = 256; r.isTombstone = try Self.bool(member.value, name, line)
            case "marker": bit = 512; r.isMarker = try Self.bool(member.value, name, line)
            // A forgotten event (its data key destroyed): its data and metadata
            // are empty; an encrypted log imports it forgotten (LogImporter).
            case "forgotten": bit = 1024; r.isForgotten = try Self.bool(member.value, name, line)
            default: throw Malformed(reason: "unknown key \"\(name)\" in a record line")
            }
            guard seen & bit == 0 else { throw Malformed(reason: "duplicate key \"\(name)\"") }
            seen |= bit
        }
        for (bit, name) in [(UInt16(2), "stream"), (4, "version"), (8, "type"), (16, "timestamp")] where seen & bit == 0 {
            throw Malformed(reason: "missing \"\(name)\"")
        }
        guard hasData else { throw Malformed(reason: "missing \"data_base64\"") }
        record = r
    }

    private static func parseBatch(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) -> Line {
        var fields = try Fields(members, line, allowed: batchKeys, what: "a batch line")
        let position = try fields.unsigned("batch")
        let count = try fields.unsigned("record_count")
        guard count >= 1 else { throw Malformed(reason: "\"record_count\" must be at least 1") }
        guard count <= UInt64(Limits.maxBatchRecords) else {
            throw Malformed(reason: "\"record_count\" \(count) is above the maximum of \(Limits.maxBatchRecords)")
        }
        return .batch(position: position, recordCount: Int(count), firstTimestamp: try fields.integer("first_timestamp"))
    }

    private static func parseHeader(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) -> ExportFormat.Header {
        var fields = try Fields(
            members, line,
            allowed: ["eventlog_export", "format_version", "log_id", "start_position", "end_position", "index_interval",
                      "stream_states", "settings"],
            what: "the header")
        let layout = try fields.unsigned("eventlog_export")
        guard ExportFormat.readableVersions.contains(layout) else {
            let readable = ExportFormat.readableVersions
            throw Malformed(reason: "export layout \(layout) is not one this build reads (it reads \(readable.lowerBound) to \(readable.upperBound))")
        }
        let idText = try fields.string("log_id")
        guard let id = UUID(uuidString: idText) else { throw Malformed(reason: "\"log_id\" is not a UUID: \"\(idText)\"") }
        let start = try fields.unsigned("start_position")
        let end = try fields.unsigned("end_position")
        guard start <= end else { throw Malformed(reason: "\"start_position\" \(start) is after \"end_position\" \(end)") }
        let interval = try fields.unsigned("index_interval")
        guard interval >= 64, interval <= 1 << 24 else { throw Malformed(reason: "\"index_interval\" must be within 64...16777216") }
        guard let settingsValue = fields.take("settings") else { throw Malformed(reason: "missing \"settings\"") }
        return ExportFormat.Header(
            layout: Int(layout), formatVersion: Int(try fields.unsigned("format_version")), logID: id, startPosition: start, endPosition: end,
            indexInterval: Int(interval), hasStreamStates: try fields.bool("stream_states"),
            settings: try parseSettings(settingsValue, line))
    }

    private static func parseSettings(_ value: JSONValue, _ line: [UInt8]) throws(Malformed) -> LogSettings {
        var fields = try Fields(
            object: value, line,
            allowed: ["retain_age_seconds", "retain_bytes", "retain_cursors", "key_compaction", "tombstone_retention_seconds"],
            what: "\"settings\"")
        var settings = LogSettings()
        if let age = try fields.optionalUnsigned("retain_age_seconds") {
            guard age >= 1, age <= UInt64(Int64.max) / 1_000_000 else { throw Malformed(reason: "\"settings.retain_age_seconds\" is out of range") }
            settings.retainAge = .seconds(Int64(age))
        }
        settings.retainBytes = try fields.optionalUnsigned("retain_bytes")
        guard let cursors = fields.take("retain_cursors"), cursors.kind == .array else {
            throw Malformed(reason: "\"settings.retain_cursors\" must be an array of strings")
        }
        settings.retainCursors = try stringArray(cursors, line, "settings.retain_cursors")
        settings.keyCompaction = try fields.bool("key_compaction")
        let tombstones = try fields.unsigned("tombstone_retention_seconds")
        guard tombstones <= UInt64(UInt32.max) else { throw Malformed(reason: "\"settings.tombstone_retention_seconds\" is out of range") }
        settings.tombstoneRetention = .seconds(Int64(tombstones))
        return settings
    }

    private static func parseStreamState(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) -> StreamSnapshot {
        var fields = try Fields(
            members, line,
            allowed: ["stream_state", "next_version", "truncate_before", "deleted", "first_position", "last_position",
                      "last_append", "max_age_microseconds", "max_count"],
            what: "a stream_state line")
        let name = try fields.string("stream_state")
        let deletion: StreamDeletion
        switch try fields.string("deleted") {
        case "none": deletion = .none
        case "soft": deletion = .soft
        case "hard": deletion = .hard
        case let other: throw Malformed(reason: "\"deleted\" must be \"none\", \"soft\" or \"hard\", found \"\(other)\"")
        }
        var lastAppend: StreamSnapshot.LastAppend?
        guard let last = fields.take("last_append") else { throw Malformed(reason: "missing \"last_append\"") }
        if last.kind != .null {
            var append = try Fields(
                object: last, line, allowed: ["batch_position", "first_version", "event_count", "record_count", "id_digest"],
                what: "\"last_append\"")
            let eventCount = try append.unsigned("event_count")
            let recordCount = try append.unsigned("record_count")
            guard eventCount <= UInt64(UInt32.max), recordCount <= UInt64(UInt32.max) else {
                throw Malformed(reason: "\"last_append\" counts must be at most \(UInt32.max)")
            }
            let digestText = try append.string("id_digest")
            guard digestText.utf8.count == 16, let digest = UInt64(digestText, radix: 16) else {
                throw Malformed(reason: "\"last_append.id_digest\" must be 16 hexadecimal digits")
            }
            lastAppend = StreamSnapshot.LastAppend(
                batchPosition: try append.unsigned("batch_position"), firstVersion: try append.unsigned("first_version"),
                eventCount: UInt32(eventCount), recordCount: UInt32(recordCount), idDigest: digest)
        }
        return StreamSnapshot(
            name: name, nextVersion: try fields.unsigned("next_version"), truncateBefore: try fields.unsigned("truncate_before"),
            deletion: deletion, firstPosition: try fields.optionalUnsigned("first_position"),
            lastPosition: try fields.optionalUnsigned("last_position"), lastAppend: lastAppend,
            maxAgeMicroseconds: try fields.optionalUnsigned("max_age_microseconds") ?? 0,
            maxCount: try fields.optionalUnsigned("max_count") ?? 0)
    }

    private static func parseEnd(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) -> Line {
        var fields = try Fields(
            members, line, allowed: ["export_end", "batches", "records", "stream_states", "cursors", "parked"], what: "the last line")
        var counts = ExportFormat.Counts(
            batches: Int(clamping: try fields.unsigned("batches")), records: Int(clamping: try fields.unsigned("records")),
            streamStates: Int(clamping: try fields.unsigned("stream_states")))
        let cursors = try fields.optionalUnsigned("cursors")
        let parked = try fields.optionalUnsigned("parked")
        guard (cursors == nil) == (parked == nil) else { throw Malformed(reason: "the last line has \"cursors\" and \"parked\", or neither") }
        counts.cursors = Int(clamping: cursors ?? 0)
        counts.parked = Int(clamping: parked ?? 0)
        return .end(endPosition: try fields.unsigned("export_end"), counts: counts, hasConsumerCounts: cursors != nil)
    }

    private static func parseCursor(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) -> ConsumerSnapshot.Cursor {
        var fields = try Fields(members, line, allowed: ["cursor", "position", "updated_at"], what: "a cursor line")
        return ConsumerSnapshot.Cursor(
            name: try fields.string("cursor"), position: try fields.unsigned("position"), updatedAt: try fields.integer("updated_at"))
    }

    private static func parseParked(_ members: [JSONMember], _ line: [UInt8]) throws(Malformed) -> ConsumerSnapshot.Parked {
        var fields = try Fields(members, line, allowed: ["parked", "position", "deliveries"], what: "a parked line")
        let cursor = try fields.string("parked")
        let position = try fields.unsigned("position")
        let deliveries = try fields.unsigned("deliveries")
        guard deliveries <= UInt64(UInt32.max) else { throw Malformed(reason: "\"deliveries\" must be at most \(UInt32.max)") }
        return ConsumerSnapshot.Parked(cursor: cursor, position: position, deliveries: UInt32(deliveries))
    }

    private static func parseMetadata(_ value: JSONValue, _ line: [UInt8]) throws(Malformed) -> EventMetadata {
        var fields = try Fields(
            object: value, line,
            allowed: metadataKeys, what: "\"metadata\"")
        var metadata = EventMetadata()
        if let text = try fields.optionalString(MetadataFieldName.eventID.key) {
            guard let id = UUID(uuidString: text) else { throw Malformed(reason: "\"metadata.event_id\" is not a UUID: \"\(text)\"") }
            metadata.eventID = id
        }
        if let version = try fields.optionalUnsigned(MetadataFieldName.schemaVersion.key) {
            guard version <= UInt64(UInt32.max) else { throw Malformed(reason: "\"metadata.schema_version\" must be at most \(UInt32.max)") }
            metadata.schemaVersion = UInt32(version)
        }
        metadata.contentType = try fields.optionalString(MetadataFieldName.contentType.key)
        metadata.correlationID = try fields.optionalString(MetadataFieldName.correlationID.key)
        metadata.causationID = try fields.optionalString(MetadataFieldName.causationID.key)
        if let headers = fields.take("headers"), headers.kind != .null {
            guard headers.kind == .array else { throw Malformed(reason: "\"metadata.headers\" must be an array of [name, value] pairs") }
            for pair in try elements(of: headers, line) {
                let both = try stringArray(pair, line, "metadata.headers")
                guard pair.kind == .array, both.count == 2 else {
                    throw Malformed(reason: "\"metadata.headers\" must be an array of [name, value] pairs")
                }
                metadata.headers.append(EventMetadata.Header(both[0], both[1]))
            }
        }
        return metadata
    }

    private static let metadataKeys = Set(MetadataFieldName.allCases.map(\.key) + ["headers"])
    private static let batchKeys: Set<String> = ["batch", "record_count", "first_timestamp"]

    // MARK: Values

    /// The members of an object, by key, each key at most once and every key allowed.
    private struct Fields {
        var values: [String: JSONValue] = [:]
        let line: [UInt8]
        let what: String

        init(_ members: [JSONMember], _ line: [UInt8], allowed: Set<String>, what: String) throws(Malformed) {
            self.line = line
            self.what = what
            for member in members {
                let name = try ExportReader.key(member, line)
                guard allowed.contains(name) else { throw Malformed(reason: "unknown key \"\(name)\" in \(what)") }
                guard values.updateValue(member.value, forKey: name) == nil else { throw Malformed(reason: "duplicate key \"\(name)\"") }
            }
        }

        init(object value: JSONValue, _ line: [UInt8], allowed: Set<String>, what: String) throws(Malformed) {
            guard value.kind == .object else { throw Malformed(reason: "\(what) must be an object, found \(value.kind.name)") }
            let members: [JSONMember]
            do { (_, members) = try JSONScanner.scan(line, range: value.range) } catch {
                throw Malformed(reason: "invalid JSON at column \(error.offset + 1): \(error.reason)")
            }
            try self.init(members, line, allowed: allowed, what: what)
        }

        mutating func take(_ name: String) -> JSONValue? { values.removeValue(forKey: name) }

        mutating func required(_ name: String) throws(Malformed) -> JSONValue {
            guard let value = take(name) else { throw Malformed(reason: "missing \"\(name)\" in \(what)") }
            return value
        }

        mutating func unsigned(_ name: String) throws(Malformed) -> UInt64 {
            try ExportReader.unsigned(try required(name), name, line)
        }

        mutating func optionalUnsigned(_ name: String) throws(Malformed) -> UInt64? {
            guard let value = take(name), value.kind != .null else { return nil }
            return try ExportReader.unsigned(value, name, line)
        }

        mutating func integer(_ name: String) throws(Malformed) -> Int64 {
            try ExportReader.integer(try required(name), name, line)
        }

        mutating func bool(_ name: String) throws(Malformed) -> Bool {
            try ExportReader.bool(try required(name), name, line)
        }

        mutating func string(_ name: String) throws(Malformed) -> String {
            try ExportReader.string(try required(name), name, line)
        }

        mutating func optionalString(_ name: String) throws(Malformed) -> String? {
            guard let value = take(name), value.kind != .null else { return nil }
            return try ExportReader.string(value, name, line)
        }
    }

    static func key(_ member: JSONMember, _ line: [UInt8]) throws(Malformed) -> String {
        guard let key = JSONScanner.decodeString(line, member.key) else { throw Malformed(reason: "a key holds an unpaired surrogate escape") }
        return key
    }

    static func unsigned(_ value: JSONValue, _ name: String, _ line: [UInt8]) throws(Malformed) -> UInt64 {
        guard value.kind == .number else { throw Malformed(reason: "\"\(name)\" must be a non-negative integer, found \(value.kind.name)") }
        var result: UInt64 = 0
        var any = false
        for i in value.range {
            let b = line[i]
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else {
                throw Malformed(reason: "\"\(name)\" must be a non-negative integer")
            }
            let (times10, o1) = result.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw Malformed(reason: "\"\(name)\" is too large") }
            result = sum
            any = true
        }
        guard any else { throw Malformed(reason: "\"\(name)\" must be a non-negative integer") }
        return result
    }

    static func integer(_ value: JSONValue, _ name: String, _ line: [UInt8]) throws(Malformed) -> Int64 {
        guard let number = JSONScanner.decodeInteger(line, value) else {
            throw Malformed(reason: "\"\(name)\" must be an integer (microseconds since 1970-01-01T00:00:00Z)")
        }
        return number
    }

    static func bool(_ value: JSONValue, _ name: String, _ line: [UInt8]) throws(Malformed) -> Bool {
        guard value.kind == .bool else { throw Malformed(reason: "\"\(name)\" must be true or false, found \(value.kind.name)") }
        return line[value.range.lowerBound] == UInt8(ascii: "t")
    }

    static func string(_ value: JSONValue, _ name: String, _ line: [UInt8]) throws(Malformed) -> String {
        guard value.kind == .string else { throw Malformed(reason: "\"\(name)\" must be a string, found \(value.kind.name)") }
        guard let text = JSONScanner.decodeString(line, value) else { throw Malformed(reason: "\"\(name)\" holds an unpaired surrogate escape") }
        return text
    }

    static func text(_ value: JSONValue, _ name: String, _ line: [UInt8]) throws(Malformed) -> Text {
        guard value.kind == .string else { throw Malformed(reason: "\"\(name)\" must be a string, found \(value.kind.name)") }
        let inner = (value.range.lowerBound + 1)..<(value.range.upperBound - 1)
        if !line[inner].contains(UInt8(ascii: "\\")) { return .raw(inner) }
        guard let text = JSONScanner.decodeString(line, value) else { throw Malformed(reason: "\"\(name)\" holds an unpaired surrogate escape") }
        return .decoded(Array(text.utf8))
    }

    static func elements(of array: JSONValue, _ line: [UInt8]) throws(Malformed) -> [JSONValue] {
        // JSONScanner reports an object's members only; an array's elements are found by scanning it as members of nothing.
        var result: [JSONValue] = []
        var i = array.range.lowerBound + 1
        let end = array.range.upperBound - 1
        func skipSpace() { while i < end, line[i] == 0x20 || line[i] == 0x09 || line[i] == 0x0A || line[i] == 0x0D { i += 1 } }
        skipSpace()
        while i < end {
            // Each element is one JSON value: find its end by scanning growing ranges is costly; scan to the next top-level comma.
            var depth = 0
            var inString = false
            let startIndex = i
            while i < end {
                let b = line[i]
                if inString {
                    if b == UInt8(ascii: "\\") { i += 1 } else if b == UInt8(ascii: "\"") { inString = false }
                } else if b == UInt8(ascii: "\"") {
                    inString = true
                } else if b == UInt8(ascii: "[") || b == UInt8(ascii: "{") {
                    depth += 1
                } else if b == UInt8(ascii: "]") || b == UInt8(ascii: "}") {
                    depth -= 1
                } else if b == UInt8(ascii: ","), depth == 0 {
                    break
                }
                i += 1
            }
            let value: JSONValue
            do { (value, _) = try JSONScanner.scan(line, range: startIndex..<i) } catch {
                throw Malformed(reason: "invalid JSON at column \(error.offset + 1): \(error.reason)")
            }
            result.append(value)
            if i < end { i += 1 }  // the comma
            skipSpace()
        }
        return result
    }

    static func stringArray(_ array: JSONValue, _ line: [UInt8], _ name: String) throws(Malformed) -> [String] {
        guard array.kind == .array else { throw Malformed(reason: "\"\(name)\" must be an array of strings") }
        var strings: [String] = []
        for element in try elements(of: array, line) { strings.append(try string(element, name, line)) }
        return strings
    }

    // MARK: Base64

    private static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// The 12 bits of each pair of base64 characters, indexed by the pair
    /// as a little-endian `UInt16` (the first character in the low byte);
    /// 0xFFFF when either is not a base64 character.
    private static let base64PairValues: [UInt16] = {
        let single = base64Values
        var table = [UInt16](repeating: 0xFFFF, count: 65536)
        for first in 0..<256 where single[first] != 0xFF {
            for second in 0..<256 where single[second] != 0xFF {
                table[first | second << 8] = UInt16(single[first]) << 6 | UInt16(single[second])
            }
        }
        return table
    }()

    /// Decodes standard base64 with padding (what `export` writes) from
    /// `line[range]` into `output`; false when it is not that.
    static func decodeBase64(_ line: [UInt8], _ range: Range<Int>, into output: inout [UInt8]) -> Bool {
        line.withUnsafeBufferPointer { decodeBase64($0, range, into: &output) }
    }

    static func decodeBase64(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into output: inout [UInt8]) -> Bool {
        output.removeAll(keepingCapacity: true)
        let count = range.count
        guard count % 4 == 0 else { return false }
        if count == 0 { return true }
        guard let base = bytes.baseAddress else { return false }
        let input = UnsafeRawPointer(base)
        var padding = 0
        if bytes[range.upperBound - 1] == UInt8(ascii: "=") { padding += 1 }
        if bytes[range.upperBound - 2] == UInt8(ascii: "=") { padding += 1 }
        let fullEnd = range.upperBound - (padding > 0 ? 4 : 0)
        var i = range.lowerBound
        // Room first, then the bytes written in place (no append per byte).
        output.append(contentsOf: repeatElement(0, count: (fullEnd - i) / 4 * 3))
        let valid = output.withUnsafeMutableBytes { out -> Bool in
            guard let target = out.baseAddress else { return fullEnd == i }
            return base64PairValues.withUnsafeBufferPointer { pairs -> Bool in
                // Four characters are two pairs, each 12 bits from the table: three bytes.
                var o = 0
                while i < fullEnd {
                    let a = pairs[Int(UInt16(littleEndian: input.loadUnaligned(fromByteOffset: i, as: UInt16.self)))]
                    let b = pairs[Int(UInt16(littleEndian: input.loadUnaligned(fromByteOffset: i + 2, as: UInt16.self)))]
                    guard (a | b) & 0xF000 == 0 else { return false }
                    let n = UInt32(a) << 12 | UInt32(b)
                    target.storeBytes(of: UInt8(truncatingIfNeeded: n >> 16), toByteOffset: o, as: UInt8.self)
                    target.storeBytes(of: UInt8(truncatingIfNeeded: n >> 8), toByteOffset: o + 1, as: UInt8.self)
                    target.storeBytes(of: UInt8(truncatingIfNeeded: n), toByteOffset: o + 2, as: UInt8.self)
                    i += 4
                    o += 3
                }
                return true
            }
        }
        guard valid else { return false }
        if padding > 0 {
            let table = base64Values
            let a = table[Int(bytes[i])], b = table[Int(bytes[i + 1])]
            let c = padding == 1 ? table[Int(bytes[i + 2])] : 0
            guard (a | b | c) & 0xC0 == 0 else { return false }
            let n = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
            // The bits padding drops must be zero (canonical base64): one text, one value.
            guard padding == 1 ? n & 0xFF == 0 : n & 0xFFFF == 0 else { return false }
            output.append(UInt8(truncatingIfNeeded: n >> 16))
            if padding == 1 { output.append(UInt8(truncatingIfNeeded: n >> 8)) }
        }
        return true
    }
}

extension ExportReader.Text {
    /// The text's bytes (a copy).
    func bytes(in line: [UInt8]) -> [UInt8] {
        switch self {
        case .raw(let range): return Array(line[range])
        case .decoded(let bytes): return bytes
        }
    }

    /// Lends the text's bytes (from `line` when it held no escape).
    func withBytes<R>(in line: [UInt8], _ body: (UnsafeRawBufferPointer) throws(EventLogError) -> R) throws(EventLogError) -> R {
        switch self {
        case .raw(let range):
            let result: Result<R, EventLogError> = line.withUnsafeBytes { bytes in
                do throws(EventLogError) {
                    return .success(try body(UnsafeRawBufferPointer(rebasing: bytes[range])))
                } catch {
                    return .failure(error)
                }
            }
            return try result.get()
        case .decoded(let bytes):
            let result: Result<R, EventLogError> = bytes.withUnsafeBytes { buffer in
                do throws(EventLogError) { return .success(try body(buffer)) } catch { return .failure(error) }
            }
            return try result.get()
        }
    }
}

// MARK: - The canonical record line, read in one pass

/// A cursor over a line's bytes for `ExportReader.parseCanonicalRecord`.
private struct ByteCursor {
    let bytes: UnsafeBufferPointer<UInt8>
    var i = 0

    var atEnd: Bool { i == bytes.count }

    /// Consumes `text` when the bytes at the cursor are exactly it.
    @inline(__always)
    mutating func literal(_ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard bytes.count - i >= n else { return false }
        let base = text.utf8Start
        for k in 0..<n where bytes[i + k] != base[k] { return false }
        i += n
        return true
    }

    /// A non-negative integer as JSON writes it (no leading zero, no sign,
    /// fraction or exponent: what follows is checked by the caller's next
    /// literal); nil when absent or above `UInt64.max`.
    @inline(__always)
    mutating func unsigned() -> UInt64? {
        guard i < bytes.count else { return nil }
        let first = bytes[i]
        if first == UInt8(ascii: "0") {
            i += 1
            return 0
        }
        guard first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9") else { return nil }
        var value: UInt64 = 0
        while i < bytes.count {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit < 10 else { break }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            guard !o1, !o2 else { return nil }
            value = sum
            i += 1
        }
        return value
    }

    /// An integer that fits in an `Int64`, as JSON writes it.
    @inline(__always)
    mutating func signed() -> Int64? {
        let negative = i < bytes.count && bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        guard let magnitude = unsigned() else { return nil }
        if negative {
            if magnitude == UInt64(Int64.max) + 1 { return .min }
            guard magnitude <= UInt64(Int64.max) else { return nil }
            return -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// The inside of a string literal of plain ASCII (no escape, no control
    /// character, no byte above 0x7F), the opening quote already consumed;
    /// consumes the closing quote. Nil for any other string.
    @inline(__always)
    mutating func plainString() -> Range<Int>? {
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return start..<(i - 1)
            }
            guard c >= 0x20, c < 0x80, c != UInt8(ascii: "\\") else { return nil }
            i += 1
        }
        return nil
    }

    /// Whether `bytes[range]` is exactly `text`.
    @inline(__always)
    func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        let base = text.utf8Start
        for k in 0..<range.count where bytes[range.lowerBound + k] != base[k] { return false }
        return true
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A UUID in its 36-character text form (hex digits of either case, dashes at 8, 13, 18 and 23).
    func uuid(_ range: Range<Int>) -> UUID? {
        guard range.count == 36 else { return nil }
        var raw: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &raw) { out -> Bool in
            var j = range.lowerBound
            var o = 0
            while o < 16 {
                let offset = j - range.lowerBound
                if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                    guard bytes[j] == UInt8(ascii: "-") else { return false }
                    j += 1
                }
                guard let high = JSONScanner<[UInt8]>.hexValue(bytes[j]), let low = JSONScanner<[UInt8]>.hexValue(bytes[j + 1]) else {
                    return false
                }
                out[o] = UInt8(high << 4 | low)
                o += 1
                j += 2
            }
            return j == range.upperBound
        }
        return ok ? UUID(uuid: raw) : nil
    }
}

extension ExportReader {
    /// Reads a record line written exactly as `export` writes it (its keys
    /// in that order, plain ASCII strings, canonical numbers, no space) in
    /// one pass: no scan of the JSON first, no `String` per key, no
    /// dictionary. False for any other line, which the general path then
    /// reads (and reports, when it is malformed): a line this accepts is
    /// one the general path reads the same way.
    mutating func parseCanonicalRecord(_ line: [UInt8]) -> Bool {
        // The headers of the last metadata, reused (their storage, not their strings).
        var headers = record.metadata?.headers ?? []
        record.metadata = nil
        headers.removeAll(keepingCapacity: true)
        return line.withUnsafeBufferPointer { bytes -> Bool in
            var c = ByteCursor(bytes: bytes)
            var r = Record()
            guard c.literal("{\"position\":"), let position = c.unsigned() else { return false }
            r.position = position
            guard c.literal(",\"stream\":\""), let stream = c.plainString() else { return false }
            r.stream = .raw(stream)
            guard c.literal(",\"version\":"), let version = c.unsigned() else { return false }
            r.version = version
            guard c.literal(",\"type\":\""), let type = c.plainString() else { return false }
            r.type = .raw(type)
            guard c.literal(",\"timestamp\":"), let timestamp = c.signed() else { return false }
            r.timestamp = timestamp
            guard c.literal(",\"data_base64\":\"") else { return false }
            let dataStart = c.i
            guard let base = bytes.baseAddress, dataStart < bytes.count,
                  let quote = memchr(base + dataStart, Int32(UInt8(ascii: "\"")), bytes.count - dataStart)
            else { return false }
            let dataEnd = UnsafePointer<UInt8>(base).distance(to: quote.assumingMemoryBound(to: UInt8.self))
            guard Self.decodeBase64(bytes, dataStart..<dataEnd, into: &data) else { return false }
            c.i = dataEnd + 1
            if c.literal(",\"metadata\":{") {
                guard let metadata = Self.canonicalMetadata(&c, headers: &headers) else { return false }
                r.metadata = metadata
            }
            if c.literal(",\"key\":\"") {
                guard let key = c.plainString() else { return false }
                r.key = .raw(key)
            }
            if c.literal(",\"tombstone\":true") { r.isTombstone = true }
            if c.literal(",\"forgotten\":true") { r.isForgotten = true }
            if c.literal(",\"marker\":true") { r.isMarker = true }
            guard c.literal("}"), c.atEnd else { return false }
            record = r
            return true
        }
    }

    /// The members of a metadata object after its `{`, up to and with its
    /// `}`, in the order export writes them; nil for anything else.
    private static func canonicalMetadata(_ c: inout ByteCursor, headers: inout [EventMetadata.Header]) -> EventMetadata? {
        var metadata = EventMetadata()
        if c.literal("}") { return metadata }
        var next = 0  // the first field still allowed: fields come in export's order, each once
        while true {
            guard c.literal("\""), let key = c.plainString(), c.literal(":") else { return nil }
            if next <= 0, c.equals(key, "event_id") {
                guard c.literal("\""), let text = c.plainString(), let id = c.uuid(text) else { return nil }
                metadata.eventID = id
                next = 1
            } else if next <= 1, c.equals(key, "schema_version") {
                guard let version = c.unsigned(), version <= UInt64(UInt32.max) else { return nil }
                metadata.schemaVersion = UInt32(version)
                next = 2
            } else if next <= 2, c.equals(key, "content_type") {
                guard c.literal("\""), let text = c.plainString() else { return nil }
                metadata.contentType = c.string(text)
                next = 3
            } else if next <= 3, c.equals(key, "correlation_id") {
                guard c.literal("\""), let text = c.plainString() else { return nil }
                metadata.correlationID = c.string(text)
                next = 4
            } else if next <= 4, c.equals(key, "causation_id") {
                guard c.literal("\""), let text = c.plainString() else { return nil }
                metadata.causationID = c.string(text)
                next = 5
            } else if next <= 5, c.equals(key, "headers") {
                guard c.literal("[") else { return nil }
                if !c.literal("]") {
                    while true {
                        guard c.literal("[\""), let name = c.plainString(), c.literal(",\""), let value = c.plainString(),
                              c.literal("]")
                        else { return nil }
                        headers.append(EventMetadata.Header(c.string(name), c.string(value)))
                        if c.literal("]") { break }
                        guard c.literal(",") else { return nil }
                    }
                }
                metadata.headers = headers
                next = 6
            } else {
                return nil
            }
            if c.literal("}") { return metadata }
            guard c.literal(",") else { return nil }
        }
    }
}
