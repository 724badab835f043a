import ArgumentParser
import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `eventlog import DIR`: builds a new log from what `eventlog export` wrote
/// (`NewLogImport`), or with `--append` appends its events to a log (`AppendedImport`).
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Build a new log from an export (eventlog export), exactly; or append its events to a log (--append).",
        discussion: """
            Reads the export format (README, "The export format") from stdin or --input FILE and \
            writes a new log into DIR (created when missing; it must hold no log: an existing log, \
            even an empty one, is refused with exit 2). Every record is written at its exported \
            position, with its timestamp, version, event id, metadata, key, tombstone flag and batch, \
            and stream markers as markers, so an export of the new log is byte for byte the one \
            imported. The log gets the export's log id, start position, index interval and settings; \
            --segment-bytes and --compression choose how it is stored. An export of the whole log \
            carries every stream's state, which the new log takes as it is, and its cursors (position \
            and when each was last set) and consumer groups' parked events, which go into the new log's \
            cursor journal; a partial one (export --from/--to) has its records replayed into the stream \
            table, so it knows no stream before its start, and has no cursors. With a master key in the \
            environment (EVENTLOG_MASTER_KEY_FILE or EVENTLOG_MASTER_KEY; the scope from \
            EVENTLOG_DATA_KEY_SCOPE) the new log is encrypted: every event sealed, and the events the \
            export marks "forgotten" sealed under a key the new key store records as forgotten, so they \
            stay forgotten.

            With --append, DIR must hold a log, and the export's events are appended after its end: \
            each exported batch is one atomic append, with the events' streams, types, data, timestamps, \
            metadata (event ids included), keys and tombstone flags. The events get new positions (the \
            log's next ones) and their streams' next versions in this log: the exported versions are not \
            expected or checked. The header's log id, start, index interval and settings, the \
            stream_state, cursor and parked lines are checked but left out: they describe the exported \
            log. A stream marker (a deletion, truncation or limits) is refused with exit 2, as its \
            versions mean other events here; a batch whose event ids repeat the log's last append to its \
            streams (the same export imported twice) is refused with exit 3, as is an append a stream \
            refuses (a hard-deleted stream). A failure leaves the batches before it appended (synced) and \
            none after, and its message says how many went in and at which positions.

            A malformed line (invalid JSON, an unknown key, a record out of order or not where its \
            batch puts it, a batch below the end of the one before, malformed base64, a missing last \
            line) ends the import with exit 2 naming the line; without --append nothing is imported \
            then, and the files written so far are removed. The import syncs every file before it ends. \
            With --json it prints one object: lines, batches, records, events, markers, stream_states, \
            cursors, parked, start_position and end_position (with --append: the positions the appended \
            events got), appended, and skipped_lines (with --append: the stream_state, cursor and \
            parked lines left out).

            Example: eventlog export /var/lib/orders | ssh backup eventlog import /srv/orders-copy
            Example: eventlog import /var/lib/orders --append --input /backup/other-orders.jsonl
            """)

    @Argument(help: "The log directory to create (with --append: the log to append to).")
    var directory: String

    @Option(help: ArgumentHelp("Read the export from this file instead of stdin.", valueName: "file"))
    var input: String?

    @Option(name: .customLong("segment-bytes"), help: "Segment file size in bytes (default 134217728).")
    var segmentBytes: Int?

    @Option(help: ArgumentHelp("Compress the batches: none (the default) or lz4.", valueName: "codec"))
    var compression: String?

    @Flag(help: "Append the export's events after the end of the existing log in DIR, as new batches (see above).")
    var append = false

    @Flag(help: "Print what was imported as one JSON object.")
    var json = false

    static let defaultSegmentBytes = 128 << 20

    func validate() throws {
        if let compression, compression != "none" && compression != "lz4" {
            throw ValidationError("--compression must be none or lz4, got \(compression)")
        }
    }

    struct Summary {
        var lines = 0
        var batches = 0
        var records = 0
        var markers = 0
        var streamStates = 0
        var cursors = 0
        var parked = 0
        /// stream_state, cursor and parked lines (what `--append` leaves out).
        var skippedLines = 0
        var startPosition: UInt64 = 0
        var endPosition: UInt64 = 0
        var header: ExportFormat.Header?
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "import") {
            let fd: Int32
            if let input {
                fd = open(input, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw CommandFailure("cannot open \(input): \(String(cString: strerror(errno)))") }
            } else {
                fd = 0
            }
            defer { if fd != 0 { close(fd) } }
            let summary = try append ? appendToLog(from: fd) : createLog(from: fd)
            var output = OutputWriter(fd: 1)
            if json {
                output.append("{\"lines\":\(summary.lines),\"batches\":\(summary.batches),\"records\":\(summary.records),")
                output.append("\"events\":\(summary.records - summary.markers),\"markers\":\(summary.markers),")
                output.append("\"stream_states\":\(summary.streamStates),\"cursors\":\(summary.cursors),\"parked\":\(summary.parked),")
                output.append("\"start_position\":\(summary.startPosition),\"end_position\":\(summary.endPosition),")
                output.append("\"appended\":\(append),\"skipped_lines\":\(summary.skippedLines)}")
            } else if append {
                output.append(
                    "appended \(summary.records) events in \(summary.batches) batches at positions "
                        + "\(summary.startPosition)..<\(summary.endPosition), from \(summary.lines) lines into \(directory)"
                        + (summary.skippedLines > 0
                            ? " (\(summary.skippedLines) stream_state, cursor and parked lines left out: they describe the exported log)" : ""))
            } else {
                output.append(
                    "imported \(summary.records) records (\(summary.records - summary.markers) events, \(summary.markers) markers) "
                        + "in \(summary.batches) batches, positions \(summary.startPosition)..<\(summary.endPosition), "
                        + "\(summary.streamStates) stream states, \(summary.cursors) cursors, \(summary.parked) parked events, "
                        + "from \(summary.lines) lines into \(directory)")
            }
            try output.appendLineEnd()
            try output.flush()
        }
    }

    /// A new log in `directory`; on failure, what was written is removed.
    private func createLog(from fd: Int32) throws -> Summary {
        // What to remove when the import fails: the files it wrote, and the directory when it made it.
        let existed = Self.isDirectory(directory)
        if existed, let entries = Self.entries(of: directory), !entries.isEmpty {
            if entries.contains("eventlog.meta") || entries.contains(where: { $0.hasSuffix(".segment") }) {
                throw CommandFailure(
                    "\(directory) already holds a log: import creates a new log (import into a new directory, remove this one "
                        + "first, or give --append to append the export's events after this log's end)")
            }
            throw CommandFailure("\(directory) is not empty: import creates a new log in a new or empty directory")
        }
        var options = try LogOptions.cli(
            segmentBytes: segmentBytes ?? Self.defaultSegmentBytes, durability: .none, compression: compression == "lz4" ? .lz4 : .none)
        options.maintenanceInterval = nil
        var target = NewLogImport(directory: directory, options: options)
        do {
            var summary = try Self.importLines(from: LineReader(fd: fd), into: &target)
            summary.startPosition = summary.header?.startPosition ?? 0
            summary.skippedLines = 0  // a new log takes every line
            return summary
        } catch {
            Self.removeImport(directory, removeDirectory: !existed)
            throw error
        }
    }

    /// The export's events appended to the log in `directory` (`AppendedImport`).
    private func appendToLog(from fd: Int32) throws -> Summary {
        guard Self.isDirectory(directory), Self.entries(of: directory)?.contains("eventlog.meta") == true else {
            throw CommandFailure("\(directory) holds no log: --append appends to an existing log (leave it out to create one)")
        }
        var options = try LogOptions.cli(durability: .none)
        options.maintenanceInterval = nil
        options.createIfMissing = false
        if let segmentBytes { options.segmentBytes = segmentBytes }
        if let compression { options.compression = compression == "lz4" ? .lz4 : .none }
        let log = try Log.open(at: directory, options: options)
        var target = AppendedImport(log: log)
        do {
            var summary = try Self.importLines(from: LineReader(fd: fd), into: &target)
            try log.close()
            summary.startPosition = target.startPosition
            summary.endPosition = target.endPosition
            summary.streamStates = 0
            summary.cursors = 0
            summary.parked = 0
            return summary
        } catch {
            // What went in stays (each batch is atomic): make it durable and say how far it got.
            try? log.sync()
            try? log.close()
            if let failure = error as? CommandFailure {
                throw CommandFailure("\(failure.message); \(target.progress)", exitCode: failure.exitCode)
            }
            throw CommandFailure("\(error); \(target.progress)")
        }
    }

    /// Reads every line, checks the lines' order and counts, and feeds `target`; returns what it read.
    static func importLines<Target: ImportTarget>(from input: LineReader, into target: inout Target) throws -> Summary {
        var reader = input
        var parser = ExportReader()
        var summary = Summary()
        var header: ExportFormat.Header?
        var states: [StreamSnapshot] = []
        var consumers = ConsumerSnapshot()
        /// The end of the last batch (the header's start first), and the open batch's next position and records still to come.
        var lastEnd: UInt64 = 0
        var batchEnd: UInt64 = 0
        var remaining = 0
        var ended = false
        var lineNumber = 0
        // One line buffer for the whole input: no allocation per line.
        var line: [UInt8] = []
        line.reserveCapacity(64 << 10)
        while true {
            let more: Bool
            do { more = try reader.nextLine(into: &line) } catch { throw CommandFailure("\(error)") }
            guard more else { break }
            lineNumber += 1
            if line.isEmpty || line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            func fail(_ reason: String) -> CommandFailure { .malformed(line: lineNumber, reason) }
            /// A refusal of the target: 3 when a stream refused a write, else 2.
            func refused(_ error: EventLogError) -> CommandFailure {
                CommandFailure(
                    "line \(lineNumber): \(error.description)",
                    exitCode: error.refusingStream != nil ? CommandFailure.refusedWriteExitCode : CommandFailure.malformedInputExitCode)
            }
            guard !ended else { throw fail("a line after the last line (\"export_end\")") }
            let parsed: ExportReader.Line
            do { parsed = try parser.parse(line) } catch { throw fail(error.reason) }
            if header == nil {
                guard case .header = parsed else { throw fail("the first line must be the header (\"eventlog_export\")") }
            }
            switch parsed {
            case .header(let found):
                guard header == nil else { throw fail("a second header line") }
                guard found.formatVersion >= 1 else { throw fail("\"format_version\" must be at least 1") }
                header = found
                lastEnd = found.startPosition
                do { try target.begin(found) } catch { throw refused(error) }
            case .batch(let position, let count, let firstTimestamp):
                guard let header else { continue }
                guard remaining == 0 else { throw fail("a batch line where \(remaining) more records of the batch before were due") }
                guard states.isEmpty, consumers.cursors.isEmpty, consumers.parked.isEmpty else {
                    throw fail("a batch line after the stream states or cursors")
                }
                guard position >= lastEnd else {
                    throw fail("batch at position \(position) is below the end of what came before (\(lastEnd)): batches come in position order")
                }
                guard position &+ UInt64(count) <= header.endPosition, position &+ UInt64(count) >= position else {
                    throw fail("batch \(position)..<\(position &+ UInt64(count)) ends after the header's end position \(header.endPosition)")
                }
                do { try target.beginBatch(at: position, firstTimestamp: firstTimestamp) } catch { throw refused(error) }
                batchEnd = position
                lastEnd = position &+ UInt64(count)
                remaining = count
                summary.batches += 1
            case .record:
                guard remaining > 0 else { throw fail("a record line outside a batch (each batch line announces its records)") }
                let record = parser.record
                guard record.position == batchEnd else {
                    throw fail("record at position \(record.position) where its batch puts position \(batchEnd): a batch's records are consecutive")
                }
                do {
                    try record.stream.withBytes(in: line) { stream throws(EventLogError) in
                        try record.type.withBytes(in: line) { type throws(EventLogError) in
                            let result: Result<Void, EventLogError> = parser.data.withUnsafeBytes { data in
                                do throws(EventLogError) {
                                    return .success(try Self.append(&target, record, stream: stream, type: type, data: data, line: line))
                                } catch {
                                    return .failure(error)
                                }
                            }
                            try result.get()
                        }
                    }
                } catch {
                    throw refused(error)
                }
                batchEnd += 1
                remaining -= 1
                summary.records += 1
                if record.isMarker { summary.markers += 1 }
                if remaining == 0 {
                    do { try target.endBatch() } catch { throw refused(error) }
                }
            case .streamState(let state):
                guard let header else { continue }
                guard header.hasStreamStates else { throw fail("a stream_state line in an export whose header says \"stream_states\": false") }
                guard remaining == 0 else { throw fail("a stream_state line where \(remaining) more records of a batch were due") }
                guard consumers.cursors.isEmpty, consumers.parked.isEmpty else { throw fail("a stream_state line after the cursors") }
                if let last = states.last, !(last.name < state.name) {
                    throw fail("stream_state \"\(state.name)\" out of order: stream states come sorted by name, each once")
                }
                states.append(state)
                summary.skippedLines += 1
            case .cursor(let cursor):
                guard let header else { continue }
                try checkConsumerLine(header, remaining: remaining, "a cursor line", fail)
                guard consumers.parked.isEmpty else { throw fail("a cursor line after the parked events") }
                if let last = consumers.cursors.last, !(last.name < cursor.name) {
                    throw fail("cursor \"\(cursor.name)\" out of order: cursors come sorted by name, each once")
                }
                guard cursor.position <= header.endPosition else {
                    throw fail("cursor \"\(cursor.name)\" at position \(cursor.position) is past the export's end position \(header.endPosition)")
                }
                consumers.cursors.append(cursor)
                summary.skippedLines += 1
            case .parked(let parked):
                guard let header else { continue }
                try checkConsumerLine(header, remaining: remaining, "a parked line", fail)
                if let last = consumers.parked.last, !(last.cursor < parked.cursor || (last.cursor == parked.cursor && last.position < parked.position)) {
                    throw fail("parked event \"\(parked.cursor)\" \(parked.position) out of order: parked events come sorted by cursor, then position, each once")
                }
                guard parked.position < header.endPosition else {
                    throw fail("parked event at position \(parked.position) is not below the export's end position \(header.endPosition)")
                }
                consumers.parked.append(parked)
                summary.skippedLines += 1
            case .end(let endPosition, let counts, let hasConsumerCounts):
                guard let header else { continue }
                guard remaining == 0 else { throw fail("the last line where \(remaining) more records of a batch were due") }
                guard endPosition == header.endPosition else {
                    throw fail("\"export_end\" \(endPosition) differs from the header's end position \(header.endPosition)")
                }
                guard hasConsumerCounts == (header.layout >= 2) else {
                    throw fail(hasConsumerCounts
                        ? "\"cursors\" and \"parked\" on the last line of an export of layout 1"
                        : "the last line lacks \"cursors\" and \"parked\" (an export of layout \(header.layout) has them)")
                }
                let found = ExportFormat.Counts(
                    batches: summary.batches, records: summary.records, streamStates: states.count, cursors: consumers.cursors.count,
                    parked: consumers.parked.count)
                guard counts == found else {
                    throw fail("the last line counts \(counts.batches) batches, \(counts.records) records, \(counts.streamStates) stream states, "
                        + "\(counts.cursors) cursors and \(counts.parked) parked events, but the export holds \(found.batches), "
                        + "\(found.records), \(found.streamStates), \(found.cursors) and \(found.parked)")
                }
                do {
                    try target.finish(endPosition: endPosition, streams: header.hasStreamStates ? states : nil, consumers: consumers)
                } catch {
                    throw refused(error)
                }
                summary.endPosition = endPosition
                summary.streamStates = states.count
                summary.cursors = consumers.cursors.count
                summary.parked = consumers.parked.count
                ended = true
            }
        }
        summary.lines = lineNumber
        summary.header = header
        guard header != nil else { throw CommandFailure("the input is empty: an export starts with its header line") }
        guard ended else {
            throw CommandFailure("the input ends at line \(lineNumber) without the export's last line (\"export_end\"): was it cut short?")
        }
        return summary
    }

    /// A cursor or parked line is in place: in a whole export of layout 2 or later, after the batches.
    private static func checkConsumerLine(
        _ header: ExportFormat.Header, remaining: Int, _ what: String, _ fail: (String) -> CommandFailure
    ) throws {
        guard header.layout >= 2 else { throw fail("\(what) in an export of layout 1, which has none") }
        guard header.hasStreamStates else { throw fail("\(what) in a partial export (its header says \"stream_states\": false)") }
        guard remaining == 0 else { throw fail("\(what) where \(remaining) more records of a batch were due") }
    }

    private static func append<Target: ImportTarget>(
        _ target: inout Target, _ record: ExportReader.Record, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
        data: UnsafeRawBufferPointer, line: [UInt8]
    ) throws(EventLogError) {
        if let key = record.key {
            try key.withBytes(in: line) { keyBytes throws(EventLogError) in
                try target.appendRecord(record, stream: stream, type: type, data: data, key: keyBytes)
            }
        } else {
            try target.appendRecord(record, stream: stream, type: type, data: data, key: nil)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in a directory (nil when it cannot be read).
    static func entries(of path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes what a failed import wrote: every file in the directory (it
    /// was empty or absent before), and the directory when the import made it.
    static func removeImport(_ path: String, removeDirectory: Bool) {
        for name in entries(of: path) ?? [] { unlink(path + "/" + name) }
        if removeDirectory { rmdir(path) }
    }
}
