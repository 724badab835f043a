import ArgumentParser
import EventLog

/// `eventlog dump DIR`: prints events in position order (or one stream's in
/// version order), as text or JSON Lines.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print events in position order, or the events of one stream.",
        discussion: """
            Without --json, one line per event: position, time (ISO 8601, UTC, microseconds), stream, \
            version (v0, v1, ...), type, then the data as text when it is printable UTF-8, else \
            base64: and its base64.

            With --json, one JSON object per line with the keys position, stream, version, type, \
            timestamp (microseconds since 1970), data (the stored JSON value, when the content type is \
            application/json and the bytes are valid JSON) or data_base64 (otherwise), and metadata.

            The whole log, without filters, includes stream markers (the records of `eventlog streams \
            delete` and `truncate`): in text as "[marker] $deleted soft|hard" or "[marker] $truncated \
            before V" in place of the version and type, in JSON with "marker": true added. --type and \
            --stream-prefix filter the whole log (markers are left out then).

            --stream NAME prints the events of one stream in version order (newest first with \
            --backward), from --from-version when given; versions hidden by a truncation and the events \
            of a soft-deleted stream are not printed, nor is anything for a stream that never existed. A \
            hard-deleted stream exits with 1. --count caps the events printed, after --type.

            --batches prints the stored batches instead of their events, one line each, in position \
            order: the segment file, the batch's byte offset in it, its length in bytes, its CRC32C (8 hex \
            digits), its codec (none or lz4), its base position, its record count (events and stream \
            markers) and its first timestamp (ISO 8601); with --json one object per line with the keys \
            segment, offset, length, crc (the same hex string), codec, base_position, record_count and \
            first_timestamp (microseconds since 1970). --from and --to keep the batches holding a \
            position in [--from, --to), --count caps the batches printed. Each batch's checksum is \
            verified: a damaged one exits with 1, naming its file and byte offset, after the lines \
            before it. Example: eventlog dump /var/lib/orders --batches --from 1000 --count 5

            --from below the log start (positions retention removed: see eventlog compact) exits with 1 \
            and names the start; without --from, dump prints from the start.

            The log is opened read-only, so dump works beside a running writer; it prints the events \
            that were appended when it started.
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Option(help: "The first position to print (default: the start of the log; below it: exit 1).")
    var from: UInt64?

    @Option(help: "Stop before this position: --to is exclusive (default: the end of the log).")
    var to: UInt64?

    @Option(help: ArgumentHelp("Print the events of this stream only, in version order.", valueName: "name"))
    var stream: String?

    @Flag(help: "With --stream: newest version first.")
    var backward = false

    @Option(
        name: .customLong("from-version"),
        help: ArgumentHelp("With --stream: the first version to print (default: the first, or with --backward the last).", valueName: "version"))
    var fromVersion: UInt64?

    @Option(help: "Print at most this many events (with --batches: batches).")
    var count: Int?

    @Option(name: .customLong("type"), help: ArgumentHelp("Print events of this type only (repeatable).", valueName: "type"))
    var types: [String] = []

    @Option(name: .customLong("stream-prefix"), help: ArgumentHelp("Print events of streams starting with this only (the whole log).", valueName: "prefix"))
    var streamPrefix: String?

    @Flag(help: "Print the stored batches (segment file, offset, length, CRC32C, codec, base position, record count, first timestamp) instead of events.")
    var batches = false

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        if let from, let to, to < from {
            throw ValidationError("--to (\(to)) is before --from (\(from)); --to is exclusive")
        }
        if let count, count < 0 { throw ValidationError("--count must not be negative, got \(count)") }
        if batches {
            let eventOptions = [
                ("--stream", stream != nil), ("--backward", backward), ("--from-version", fromVersion != nil),
                ("--type", !types.isEmpty), ("--stream-prefix", streamPrefix != nil),
            ]
            if let (name, _) = eventOptions.first(where: { $0.1 }) {
                throw ValidationError("\(name) selects events; it does not go with --batches (which takes --from, --to, --count and --json)")
            }
        }
        if stream != nil {
            if from != nil || to != nil {
                throw ValidationError("--from and --to are positions in the whole log; with --stream, use --from-version")
            }
            if streamPrefix != nil { throw ValidationError("--stream-prefix filters the whole log; it does not go with --stream") }
        } else {
            if backward { throw ValidationError("--backward needs --stream") }
            if fromVersion != nil { throw ValidationError("--from-version needs --stream") }
        }
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "dump") {
            let log = try Log.open(at: directory, options: LogOptions(createIfMissing: false, readOnly: true))
            defer { try? log.close() }
            var output = OutputWriter(fd: 1)
            do {
                do {
                    if batches {
                        try dumpBatches(of: log, into: &output)
                    } else if let stream {
                        try dumpStream(stream, of: log, into: &output)
                    } else {
                        try dumpLog(log, into: &output)
                    }
                } catch is EnoughPrinted {}
                try output.flush()
            } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader stopped listening (`dump | head`): not a failure
            } catch {
                // Print what was read before the damage, then report it.
                try? output.flush()
                throw error
            }
        }
    }

    /// Thrown from a read's body to end the read early (`--count` reached, or `--to` passed).
    private struct EnoughPrinted: Error {}

    /// `--from`, or the log start without it; a `--from` below the start is a finding.
    private func firstPosition(of log: Log) throws -> UInt64 {
        let logStart = log.startPosition
        if let from, from < logStart {
            // The read would go on from the start: say that the events asked for are gone instead.
            throw CommandFailure.finding("position \(from) was removed by retention; the log starts at \(logStart)")
        }
        return from ?? logStart
    }

    /// The batches holding a position in [`--from`, `--to`), at most `--count`.
    private func dumpBatches(of log: Log, into output: inout OutputWriter) throws {
        let start = try firstPosition(of: log)
        let stop = to ?? .max
        let limit = count ?? .max
        guard start < stop, limit > 0 else { return }
        var printed = 0
        try log.readBatches(from: start) { batch in
            if batch.basePosition >= stop { throw EnoughPrinted() }
            BatchListing.write(batch, json: json, into: &output)
            try output.appendLineEnd()
            printed += 1
            if printed >= limit { throw EnoughPrinted() }
        }
    }

    /// The whole log, from `--from` to `--to`, through `--type` and `--stream-prefix`.
    private func dumpLog(_ log: Log, into output: inout OutputWriter) throws {
        let start = try firstPosition(of: log)
        let stop = to ?? .max
        let limit = count ?? .max
        guard start < stop, limit > 0 else { return }
        if types.isEmpty && streamPrefix == nil {
            try log.read(from: start, maxCount: min(limit, Int(clamping: stop - start))) { event in
                try write(event, into: &output)
            }
            return
        }
        let filter = EventFilter(streamPrefix: streamPrefix, types: types.isEmpty ? nil : Set(types))
        // maxCount counts matching events only: `--to` ends the read from its body.
        try log.read(from: start, maxCount: limit, filter: filter) { event in
            if event.position >= stop { throw EnoughPrinted() }
            try write(event, into: &output)
        }
    }

    /// One stream, in version order (or reversed), through `--type`.
    private func dumpStream(_ stream: String, of log: Log, into output: inout OutputWriter) throws {
        let limit = count ?? .max
        guard limit > 0 else { return }
        var printed = 0
        try log.readStream(
            stream, from: fromVersion, maxCount: types.isEmpty ? limit : .max, direction: backward ? .backward : .forward
        ) { event in
            guard types.isEmpty || types.contains(where: { $0.utf8.elementsEqual(event.typeBytes) }) else { return }
            try write(event, into: &output)
            printed += 1
            if printed >= limit { throw EnoughPrinted() }
        }
    }

    private func write(_ event: EventView, into output: inout OutputWriter) throws {
        try Self.writeLine(event, json: json, into: &output)
    }

    /// Buffers `event` as the line `dump` prints (with `json`, the `dump --json` object).
    static func writeLine(_ event: EventView, json: Bool, into output: inout OutputWriter) throws {
        let metadata = try metadata(of: event)
        if json {
            JSONEventFormat.write(event, metadata: metadata, into: &output)
        } else {
            writeText(event, into: &output)
        }
        try output.appendLineEnd()
    }

    private static func metadata(of event: EventView) throws -> EventMetadata {
        if event.metadataBytes.isEmpty { return EventMetadata() }
        do { return try event.metadata() } catch {
            throw CommandFailure.finding("event \(event.position) has damaged metadata: \(error.description)")
        }
    }

    /// `42  2024-05-01T12:00:00.123456Z  order-1  v0  OrderPlaced  {"total":10}`, and for a stream
    /// marker `43  2024-05-01T12:00:01.000000Z  order-1  [marker] $deleted  soft`.
    static func writeText(_ event: EventView, into output: inout OutputWriter) {
        output.append(event.position)
        output.append("  ")
        output.appendISO8601(event.timestamp)
        output.append("  ")
        appendName(event.streamBytes, into: &output)
        if event.isMarker {
            output.append("  [marker] ")
        } else {
            output.append("  v")
            output.append(event.version)
            output.append("  ")
        }
        appendName(event.typeBytes, into: &output)
        output.append("  ")
        if event.isMarker, let effect = markerEffect(event) {
            output.append(effect)
        } else if isPrintableUTF8(event.data) {
            output.append(event.data)
        } else {
            output.append("base64:")
            output.appendBase64(event.data)
        }
    }

    /// What a stream marker does, from its type and data (Format.md §13.1):
    /// `soft`, `hard`, `before 5`; nil for a marker this build does not know.
    static func markerEffect(_ event: EventView) -> String? {
        if event.typeBytes.elementsEqual("$deleted".utf8) {
            guard event.data.count == 1, event.data[0] <= 1 else { return nil }
            return event.data[0] == 1 ? "hard" : "soft"
        }
        if event.typeBytes.elementsEqual("$truncated".utf8) {
            var before: UInt64 = 0
            var shift: UInt64 = 0
            for (i, byte) in event.data.enumerated() {
                guard shift < 64 else { return nil }
                before |= UInt64(byte & 0x7F) << shift
                shift += 7
                if byte & 0x80 == 0 { return i == event.data.count - 1 ? "before \(before)" : nil }
            }
            return nil
        }
        return nil
    }

    /// A name as is when printable, else as a quoted, escaped string (so it cannot break the line).
    private static func appendName(_ bytes: UnsafeRawBufferPointer, into output: inout OutputWriter) {
        if isPrintableUTF8(bytes) && !bytes.contains(UInt8(ascii: " ")) && !bytes.contains(UInt8(ascii: "\t")) {
            output.append(bytes)
        } else {
            output.appendJSONString(bytes)
        }
    }

    /// True when `bytes` are valid UTF-8 without control characters (a tab is allowed).
    static func isPrintableUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let value = scalar.value
                if value == 0x09 { continue }
                if value < 0x20 || value == 0x7F || (0x80...0x9F).contains(value) || value == 0x2028 || value == 0x2029 {
                    return false
                }
            case .error: return false
            case .emptyInput: return true
            }
        }
    }
}
