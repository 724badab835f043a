import ArgumentParser
import EventLog

/// `eventlog dump DIR`: prints events in position order (or one stream's in
/// version order), as text or JSON Lines.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print events in position order, or the events of one stream, or the stored batches.",
        usage: """
            eventlog dump <directory> [--from <position>] [--to <position>] [--count <count>] [--type <type> ...] [--stream-prefix <prefix>]
                          [--since <time>] [--until <time>] [--meta <key=value> ...] [--data <format>] [--json]
            eventlog dump <directory> --stream <name> [--backward] [--from-version <version>] [--count <count>] [--type <type> ...]
                          [--since <time>] [--until <time>] [--meta <key=value> ...] [--data <format>] [--json]
            eventlog dump <directory> --batches [--from <position>] [--to <position>] [--count <count>] [--json]
            eventlog dump <segment-file> [--batches] [--from <position>] [--to <position>] [--count <count>] [--type <type> ...]
                          [--stream-prefix <prefix>] [--since <time>] [--until <time>] [--meta <key=value> ...] [--data <format>] [--json]
            """,
        discussion: """
            Without --json, one line per event: position, time (ISO 8601, UTC, microseconds), stream, \
            version (v0, v1, ...), type, then the data as text when it is printable UTF-8, else \
            base64: and its base64.

            With --json, one JSON object per line with the keys position, stream, version, type, \
            timestamp (microseconds since 1970), data (the stored JSON value, when the content type is \
            application/json and the bytes are valid JSON) or data_base64 (otherwise), and metadata.

            The whole log, without filters, includes stream markers (the records of `eventlog streams \
            delete` and `truncate`): in text as "[marker] $deleted soft|hard" or "[marker] $truncated \
            before V" in place of the version and type, in JSON with "marker": true added. Any filter \
            (--type, --stream-prefix, --since, --until, --meta) leaves markers out.

            Filters, all of which an event must pass: --type (repeatable: any of the types), \
            --stream-prefix, --since and --until (the event's timestamp at or after --since and before \
            --until; each an RFC 3339 time such as 2026-11-29T10:00:00Z or 2026-11-29T10:00:00.5+01:00, or \
            a duration back from now: 90s, 30m, 1h, 7d), and --meta KEY=VALUE (repeatable: every one must \
            match). --meta compares the event's metadata entry KEY as --json prints it: event_id (a UUID), \
            schema_version, content_type, correlation_id, causation_id (or their camelCase names), or else \
            the header KEY. --since starts \
            the read at the first event at or after it, found through the time index; --until is checked \
            on each event and the read goes on to the end (or --to), because timestamps need not increase \
            with positions. Example: eventlog dump /var/lib/orders --since 1h --type OrderPlaced --meta \
            tenant=acme

            --data chooses how the data is printed. In text: text (always as text: bytes that are not \
            UTF-8 become U+FFFD, control characters other than tab, line breaks included, are escaped as \
            in JSON: \\n, \\u001b), json (data that is one valid JSON value, whatever its content type, \
            on one line; other data as by default), hex (lowercase, two digits a byte) or base64 (no \
            prefix). With --json: base64 (data_base64 for every event) or hex (data_hex instead of data \
            or data_base64). Example: eventlog dump /var/lib/orders --stream order-7 --data hex

            --stream NAME prints the events of one stream in version order (newest first with \
            --backward), from --from-version when given; versions hidden by a truncation and the events \
            of a soft-deleted stream are not printed, nor is anything for a stream that never existed. A \
            hard-deleted stream exits with 1. --count caps the events printed, after the filters (--type, \
            --since, --until, --meta).

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

            Given a segment file instead of a log directory (a .segment file, such as one eventlog \
            repair moved into DIR/damaged-<time>/), dump reads that file on its own, read-only: its \
            events (or with --batches its batches) as for a log, every batch's checksum and chain \
            verified; --stream is for log directories only, and --since is checked on each event. The \
            file's log id is not checked. Damage ends the output with exit 1, naming the file and byte \
            offset, after the events before it. Example: eventlog dump \
            /var/lib/orders/damaged-20261129T070000Z/00000000000000004096.segment --json
            """)

    @Argument(help: "The log directory, or a segment file.")
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

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Print events stamped at or after this time only (\(TimeBound.formats)).", valueName: "time"),
        transform: { try TimeBound.parse($0) })
    var since: Timestamp?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Print events stamped before this time only (exclusive; the formats of --since).", valueName: "time"),
        transform: { try TimeBound.parse($0) })
    var until: Timestamp?

    @Option(
        name: .customLong("meta"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp("Print events whose metadata entry KEY is VALUE only (repeatable: all must match).", valueName: "key=value"),
        transform: MetadataCondition.parse)
    var metadataConditions: [MetadataCondition] = []

    @Option(
        name: .customLong("data"),
        help: ArgumentHelp("Print the data as text, json, hex or base64 (with --json: base64 or hex).", valueName: "format"))
    var dataFormat: DataFormat?

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
                ("--type", !types.isEmpty), ("--stream-prefix", streamPrefix != nil), ("--since", since != nil),
                ("--until", until != nil), ("--meta", !metadataConditions.isEmpty), ("--data", dataFormat != nil),
            ]
            if let (name, _) = eventOptions.first(where: { $0.1 }) {
                throw ValidationError("\(name) selects events; it does not go with --batches (which takes --from, --to, --count and --json)")
            }
        }
        if let since, let until, until <= since {
            throw ValidationError("--until (\(iso8601(until))) is not after --since (\(iso8601(since))); --until is exclusive")
        }
        if json, let dataFormat, !dataFormat.goesWithJSON {
            throw ValidationError("--data \(dataFormat.rawValue) is a text format; with --json, --data takes base64 or hex")
        }
        if stream != nil && SegmentFileDump.isFile(directory) {
            throw ValidationError("--stream reads a log directory; \(directory) is a segment file (dump it without --stream)")
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
            if SegmentFileDump.isFile(directory) {
                var output = OutputWriter(fd: 1)
                let dump = SegmentFileDump(
                    path: directory, from: from, to: to, count: count, types: types, streamPrefix: streamPrefix,
                    conditions: conditions, batches: batches, json: json, data: dataFormat)
                do {
                    try dump.run(into: &output)
                } catch let error as OutputError where error.isBrokenPipe {
                    return
                }
                return
            }
            let log = try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false, readOnly: true))
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
    struct EnoughPrinted: Error {}

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

    /// `--since`, `--until` and `--meta`.
    var conditions: EventConditions {
        EventConditions(since: since, until: until, metadata: metadataConditions)
    }

    /// The whole log, from `--from` (or the first event at or after
    /// `--since`) to `--to`, through `--type`, `--stream-prefix` and the `conditions`.
    private func dumpLog(_ log: Log, into output: inout OutputWriter) throws {
        var start = try firstPosition(of: log)
        if let since { start = max(start, try log.position(atOrAfter: since)) }
        let stop = to ?? .max
        let limit = count ?? .max
        guard start < stop, limit > 0 else { return }
        let conditions = self.conditions
        let line = lineFormat
        if types.isEmpty && streamPrefix == nil && conditions.isEmpty {
            try log.read(from: start, maxCount: min(limit, Int(clamping: stop - start))) { event in
                try Self.writeLine(event, json: line.json, data: line.data, into: &output)
            }
            return
        }
        let filter = EventFilter(streamPrefix: streamPrefix, types: types.isEmpty ? nil : Set(types))
        // `--to` and `--count` end the read from its body.
        var printed = 0
        try log.read(from: start, filter: filter) { event in
            if event.position >= stop { throw EnoughPrinted() }
            guard try conditions.matches(event) else { return }
            try Self.writeLine(event, json: line.json, data: line.data, into: &output)
            printed += 1
            if printed >= limit { throw EnoughPrinted() }
        }
    }

    /// One stream, in version order (or reversed), through `--type` and the `conditions`.
    private func dumpStream(_ stream: String, of log: Log, into output: inout OutputWriter) throws {
        let limit = count ?? .max
        guard limit > 0 else { return }
        let conditions = self.conditions
        let line = lineFormat
        let types = self.types
        var printed = 0
        try log.readStream(
            stream, from: fromVersion, maxCount: types.isEmpty && conditions.isEmpty ? limit : .max,
            direction: backward ? .backward : .forward
        ) { event in
            guard types.isEmpty || types.contains(where: { $0.utf8.elementsEqual(event.typeBytes) }) else { return }
            guard try conditions.matches(event) else { return }
            try Self.writeLine(event, json: line.json, data: line.data, into: &output)
            printed += 1
            if printed >= limit { throw EnoughPrinted() }
        }
    }

    /// `--json` and `--data`, read once: an argument's value read through its
    /// property wrapper costs a generic metadata lookup, too much per event.
    private var lineFormat: (json: Bool, data: DataFormat?) { (json, dataFormat) }

    /// Buffers `event` as the line `dump` prints (with `json`, the `dump --json`
    /// object), its data as `data` says (nil: the default of each format).
    static func writeLine(_ event: EventView, json: Bool, data: DataFormat? = nil, into output: inout OutputWriter) throws {
        if json {
            // From the encoded metadata when it reads (no strings made); else the line again from the decoded metadata.
            let lineStart = output.count
            if !JSONEventFormat.writeFromEncoded(event, data: data, into: &output) {
                output.truncate(to: lineStart)
                JSONEventFormat.write(event, metadata: try metadata(of: event), data: data, into: &output)
            }
        } else {
            _ = try metadata(of: event)  // damaged metadata is a finding in every format
            TextEventFormat.write(event, data: data, into: &output)
        }
        try output.appendLineEnd()
    }

    /// The event's decoded metadata; damaged metadata is a finding (exit 1).
    static func metadata(of event: EventView) throws -> EventMetadata {
        if event.metadataBytes.isEmpty { return EventMetadata() }
        do { return try event.metadata() } catch {
            throw CommandFailure.finding("event \(event.position) has damaged metadata: \(error)")
        }
    }
}
