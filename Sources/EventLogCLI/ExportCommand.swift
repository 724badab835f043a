import ArgumentParser
import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `eventlog export DIR`: the log as JSON Lines that `eventlog import` turns
/// back into the same log (README, "The export format").
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a log as JSON Lines that eventlog import rebuilds exactly.",
        discussion: """
            Writes, to stdout or --output FILE, a header line (the log id, start and end position, \
            index interval and settings), then each stored batch as a line {"batch": P, "record_count": N, \
            "first_timestamp": T} followed by its N records, one a line, with everything the log \
            assigned: position, stream, version, type, timestamp (microseconds), data_base64, metadata \
            (its headers as [name, value] pairs), key, tombstone, and "marker": true for the stream \
            markers (deletions, truncations, limits). An export of the whole log then lists every \
            stream's state as the stream table keeps it (stream_state lines), every cursor \
            ({"cursor": NAME, "position": P, "updated_at": T}) and every event a consumer group parked \
            ({"parked": "group:NAME", "position": P, "deliveries": N}), and a last line \
            {"export_end": E, ...} with the counts, so that import can tell a cut-short file.

            --from and --to (exclusive) bound the positions: whole batches holding a position in \
            [--from, --to) are written, and the header's start and end positions cover them. Such a \
            partial export carries no stream states and no cursors: import replays the records into its \
            stream table.

            Reads the log read-only (beside a running writer it exports what was appended when it \
            started). Every batch's checksum is verified: damage exits with 1 naming the file and offset. \
            Cursors that damaged records of the cursor journal name are left out of a whole export, which \
            is still written in full, and it exits with 1 naming them; so does a damaged settings file, \
            whose place the default settings take.

            Example: eventlog export /var/lib/orders --output orders.jsonl && eventlog import /tmp/copy --input orders.jsonl
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Option(help: ArgumentHelp("The format: jsonl (the only one).", valueName: "format"))
    var format: String = "jsonl"

    @Option(help: "The first position to export (default: the start of the log).")
    var from: UInt64?

    @Option(help: "Stop before this position: --to is exclusive (default: the end of the log).")
    var to: UInt64?

    @Option(help: ArgumentHelp("Write to this file (created or replaced) instead of stdout.", valueName: "file"))
    var output: String?

    func validate() throws {
        guard format == "jsonl" else { throw ValidationError("--format must be jsonl, got \(format)") }
        if let from, let to, from > to { throw ValidationError("--from \(from) is after --to \(to)") }
    }

    /// Ends the read once the range is written.
    private struct Done: Error {}

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "export") {
            let log = try Log.openReadOnly(directory)
            defer { try? log.close() }
            let logStart = log.startPosition
            let logEnd = log.endPosition
            let lower = min(max(from ?? logStart, logStart), logEnd)
            let upper = max(min(to ?? logEnd, logEnd), lower)
            let (start, end) = try Self.range(of: log, lower: lower, upper: upper)
            let whole = start == logStart && end == logEnd
            // A damaged settings file no open needs (Format.md §10.2): the export is
            // written in full with the defaults (which remove nothing), then exits with 1 naming it.
            var settings = LogSettings()
            var settingsDamage: String?
            do { settings = try log.settings() } catch { settingsDamage = "\(error)" }
            let states = whole ? try log.streamSnapshots() : []
            let consumers = whole ? log.consumerSnapshot() : ConsumerSnapshot()

            let fd: Int32
            if let output {
                fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0 else {
                    throw CommandFailure("cannot create \(output): \(String(cString: strerror(errno)))")
                }
            } else {
                fd = 1
            }
            defer { if fd != 1 { close(fd) } }
            var out = OutputWriter(fd: fd)
            do {
                ExportFormat.writeHeader(
                    ExportFormat.Header(
                        formatVersion: Log.formatVersion, logID: log.logID, startPosition: start, endPosition: end,
                        indexInterval: log.indexInterval, hasStreamStates: whole, settings: settings),
                    into: &out)
                try out.appendLineEnd()
                var counts = ExportFormat.Counts()
                var failure: OutputError?
                if start < end {
                    do {
                        try log.readBatches(from: start, { batch in
                            guard batch.basePosition < end else { throw Done() }
                            ExportFormat.writeBatch(batch, into: &out)
                            counts.batches += 1
                            do { try out.appendLineEnd() } catch { failure = error as? OutputError; throw Done() }
                        }, events: { event in
                            try ExportFormat.writeRecord(event, into: &out)
                            counts.records += 1
                            do { try out.appendLineEnd() } catch { failure = error as? OutputError; throw Done() }
                        })
                    } catch is Done {}
                }
                if let failure { throw failure }
                try ExportFormat.writeTrailer(streams: states, consumers: consumers, endPosition: end, counts: counts, into: &out)
                try out.flush()
                if fd != 1, fsync(fd) != 0 {
                    throw CommandFailure("cannot sync \(output ?? ""): \(String(cString: strerror(errno)))")
                }
                var findings: [String] = []
                if !consumers.damagedOffsets.isEmpty {
                    let names = consumers.damagedCursors.map(\.name)
                    let offsets = consumers.damagedOffsets.map(String.init).joined(separator: ", ")
                    findings.append(
                        "the cursor journal is damaged (at byte \(offsets)): "
                            + (names.isEmpty ? "the cursors it held could not be read" : "cursors \(names.joined(separator: ", ")) were left out")
                            + "; the rest of the log was exported (eventlog repair settles the journal)")
                }
                if let settingsDamage {
                    findings.append(
                        "the settings cannot be read (\(settingsDamage)): the export holds the defaults instead; "
                            + "the rest of the log was exported (eventlog repair moves the file aside)")
                }
                if !findings.isEmpty { throw CommandFailure.finding(findings.joined(separator: "; ")) }
            } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader stopped listening: not a failure
            } catch let error as OutputError {
                throw CommandFailure("cannot write the export: \(error)")
            }
        }
    }

    /// The positions an export of the batches holding a position in
    /// `[lower, upper)` covers: from the first such batch's base (or `lower`)
    /// to the last one's end (or `upper`).
    static func range(of log: Log, lower: UInt64, upper: UInt64) throws -> (UInt64, UInt64) {
        guard lower < upper else { return (lower, lower) }
        var start = lower
        var end = upper
        do {
            try log.readBatches(from: lower) { batch in
                if batch.basePosition < lower { start = batch.basePosition }
                throw Done()
            }
        } catch is Done {}
        do {
            try log.readBatches(from: upper - 1) { batch in
                if batch.basePosition < upper { end = max(upper, batch.endPosition) }
                throw Done()
            }
        } catch is Done {}
        return (start, end)
    }
}
