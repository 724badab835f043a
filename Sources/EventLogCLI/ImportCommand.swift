import ArgumentParser
import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `eventlog import DIR`: builds a new log from what `eventlog export` wrote.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Build a new log from an export (eventlog export), exactly.",
        discussion: """
            Reads the export format (README, "The export format") from stdin or --input FILE and \
            writes a new log into DIR (created when missing; it must hold no log: an existing log, \
            even an empty one, is refused with exit 2). Every record is written at its exported \
            position, with its timestamp, version, event id, metadata, key, tombstone flag and batch, \
            and stream markers as markers, so an export of the new log is byte for byte the one \
            imported. The log gets the export's log id, start position, index interval and settings; \
            --segment-bytes and --compression choose how it is stored. An export of the whole log \
            carries every stream's state, which the new log takes as it is; a partial one (export \
            --from/--to) has its records replayed into the stream table, so it knows no stream \
            before its start.

            A malformed line (invalid JSON, an unknown key, a record out of order or not where its \
            batch puts it, a batch below the end of the one before, malformed base64, a missing last \
            line) ends the import with exit 2 naming the line; nothing is imported then, and the files \
            written so far are removed. The import syncs every file before it ends. With --json it \
            prints one object: lines, batches, records, events, markers, stream_states, \
            start_position and end_position.

            Example: eventlog export /var/lib/orders | ssh backup eventlog import /srv/orders-copy
            """)

    @Argument(help: "The log directory to create.")
    var directory: String

    @Option(help: ArgumentHelp("Read the export from this file instead of stdin.", valueName: "file"))
    var input: String?

    @Option(name: .customLong("segment-bytes"), help: "Segment file size in bytes (default 134217728).")
    var segmentBytes: Int = 128 << 20

    @Option(help: ArgumentHelp("Compress the batches: none or lz4.", valueName: "codec"))
    var compression: String = "none"

    @Flag(help: "Print what was imported as one JSON object.")
    var json = false

    func validate() throws {
        guard compression == "none" || compression == "lz4" else {
            throw ValidationError("--compression must be none or lz4, got \(compression)")
        }
    }

    struct Summary {
        var lines = 0
        var batches = 0
        var records = 0
        var markers = 0
        var streamStates = 0
        var startPosition: UInt64 = 0
        var endPosition: UInt64 = 0
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
            // What to remove when the import fails: the files it wrote, and the directory when it made it.
            let existed = Self.isDirectory(directory)
            if existed, let entries = Self.entries(of: directory), !entries.isEmpty {
                if entries.contains("eventlog.meta") || entries.contains(where: { $0.hasSuffix(".segment") }) {
                    throw CommandFailure(
                        "\(directory) already holds a log: import creates a new log (import into a new directory, or remove this one first)")
                }
                throw CommandFailure("\(directory) is not empty: import creates a new log in a new or empty directory")
            }
            var options = LogOptions(segmentBytes: segmentBytes, durability: .none, compression: compression == "lz4" ? .lz4 : .none)
            options.maintenanceInterval = nil
            do {
                let summary = try Self.importLines(from: LineReader(fd: fd), into: directory, options: &options)
                var output = OutputWriter(fd: 1)
                if json {
                    output.append("{\"lines\":\(summary.lines),\"batches\":\(summary.batches),\"records\":\(summary.records),")
                    output.append("\"events\":\(summary.records - summary.markers),\"markers\":\(summary.markers),")
                    output.append("\"stream_states\":\(summary.streamStates),\"start_position\":\(summary.startPosition),")
                    output.append("\"end_position\":\(summary.endPosition)}")
                } else {
                    output.append(
                        "imported \(summary.records) records (\(summary.records - summary.markers) events, \(summary.markers) markers) "
                            + "in \(summary.batches) batches, positions \(summary.startPosition)..<\(summary.endPosition), "
                            + "\(summary.streamStates) stream states, from \(summary.lines) lines into \(directory)")
                }
                try output.appendLineEnd()
                try output.flush()
            } catch {
                Self.removeImport(directory, removeDirectory: !existed)
                throw error
            }
        }
    }

    /// Reads every line and feeds the importer; returns what it imported.
    static func importLines(from input: LineReader, into directory: String, options: inout LogOptions) throws -> Summary {
        var reader = input
        var parser = ExportReader()
        var summary = Summary()
        var importer: LogImporter?
        var header: ExportFormat.Header?
        var states: [StreamSnapshot] = []
        /// The open batch: its next position and the records still to come.
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
            guard !ended else { throw fail("a line after the last line (\"export_end\")") }
            let parsed: ExportReader.Line
            do { parsed = try parser.parse(line) } catch { throw fail(error.reason) }
            switch parsed {
            case .header(let found):
                guard header == nil else { throw fail("a second header line") }
                guard found.formatVersion >= 1 else { throw fail("\"format_version\" must be at least 1") }
                header = found
                options.indexInterval = found.indexInterval
                do {
                    importer = try LogImporter(
                        at: directory, logID: found.logID, startPosition: found.startPosition, settings: found.settings,
                        options: options)
                } catch {
                    throw CommandFailure("\(error)")
                }
                summary.startPosition = found.startPosition
            case .batch(let position, let count, let firstTimestamp):
                guard let importer, let header else { throw fail("the first line must be the header (\"eventlog_export\")") }
                guard remaining == 0 else { throw fail("a batch line where \(remaining) more records of the batch before were due") }
                guard states.isEmpty else { throw fail("a batch line after the stream states") }
                guard position >= importer.endPosition else {
                    throw fail("batch at position \(position) is below the end of what came before (\(importer.endPosition)): batches come in position order")
                }
                guard position &+ UInt64(count) <= header.endPosition, position &+ UInt64(count) >= position else {
                    throw fail("batch \(position)..<\(position &+ UInt64(count)) ends after the header's end position \(header.endPosition)")
                }
                do { try importer.beginBatch(at: position, firstTimestamp: firstTimestamp) } catch { throw fail("\(error)") }
                batchEnd = position
                remaining = count
                summary.batches += 1
            case .record:
                guard let importer else { throw fail("the first line must be the header (\"eventlog_export\")") }
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
                                    return .success(try Self.append(importer, record, stream: stream, type: type, data: data, line: line))
                                } catch {
                                    return .failure(error)
                                }
                            }
                            try result.get()
                        }
                    }
                } catch {
                    throw fail("\(error.description)")
                }
                batchEnd += 1
                remaining -= 1
                summary.records += 1
                if record.isMarker { summary.markers += 1 }
                if remaining == 0 {
                    do { try importer.endBatch() } catch { throw fail("\(error)") }
                }
            case .streamState(let state):
                guard let header else { throw fail("the first line must be the header (\"eventlog_export\")") }
                guard header.hasStreamStates else { throw fail("a stream_state line in an export whose header says \"stream_states\": false") }
                guard remaining == 0 else { throw fail("a stream_state line where \(remaining) more records of a batch were due") }
                if let last = states.last, !(last.name < state.name) {
                    throw fail("stream_state \"\(state.name)\" out of order: stream states come sorted by name, each once")
                }
                states.append(state)
            case .end(let endPosition, let batches, let records, let streamStates):
                guard let importer, let header else { throw fail("the first line must be the header (\"eventlog_export\")") }
                guard remaining == 0 else { throw fail("the last line where \(remaining) more records of a batch were due") }
                guard endPosition == header.endPosition else {
                    throw fail("\"export_end\" \(endPosition) differs from the header's end position \(header.endPosition)")
                }
                guard batches == summary.batches, records == summary.records, streamStates == states.count else {
                    throw fail("the last line counts \(batches) batches, \(records) records and \(streamStates) stream states, "
                        + "but the export holds \(summary.batches), \(summary.records) and \(states.count)")
                }
                do {
                    try importer.finish(endPosition: endPosition, streams: header.hasStreamStates ? states : nil)
                } catch {
                    throw fail("\(error)")
                }
                summary.endPosition = endPosition
                summary.streamStates = states.count
                ended = true
            }
        }
        summary.lines = lineNumber
        guard header != nil else { throw CommandFailure("the input is empty: an export starts with its header line") }
        guard ended else {
            throw CommandFailure("the input ends at line \(lineNumber) without the export's last line (\"export_end\"): was it cut short?")
        }
        return summary
    }

    /// An importer call for the typed-throws parsing above: every error the
    /// library throws is an `EventLogError` (README, "Errors").
    private static func typed(_ body: () throws -> Void) throws(EventLogError) {
        do { try body() } catch let error as EventLogError { throw error } catch { throw .invalidArgument("\(error)") }
    }

    private static func append(
        _ importer: LogImporter, _ record: ExportReader.Record, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
        data: UnsafeRawBufferPointer, line: [UInt8]
    ) throws(EventLogError) {
        if let key = record.key {
            try key.withBytes(in: line) { keyBytes throws(EventLogError) in
                try typed {
                    try importer.appendRecord(
                        stream: stream, type: type, data: data, metadata: record.metadata, timestamp: record.timestamp,
                        version: record.version, key: keyBytes, isTombstone: record.isTombstone, isMarker: record.isMarker)
                }
            }
        } else {
            try typed {
                try importer.appendRecord(
                    stream: stream, type: type, data: data, metadata: record.metadata, timestamp: record.timestamp,
                    version: record.version, key: nil, isTombstone: record.isTombstone, isMarker: record.isMarker)
            }
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
