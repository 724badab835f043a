import ArgumentParser
import EventLog

/// `eventlog tail DIR`: prints events from a position or a cursor to the
/// end of the log, then (with `-f`) follows new ones; with `--cursor` it
/// commits what it printed.
struct TailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print events from a position or a cursor on, and follow new ones.",
        discussion: """
            Prints the events from --from (default: the start of the log) to the end of the log, in the \
            format of dump (--json: the dump --json lines), then exits 0. With -f it then waits for new \
            events and prints them as they are appended, also by other processes, until SIGINT or \
            SIGTERM, or until standard output is closed (exit 0 each). --stream NAME keeps the events of \
            that stream (the exact name, as dump --stream), --stream-prefix PREFIX those of the streams \
            whose name starts with PREFIX, --type (repeatable) those of the types given; stream markers \
            are printed when nothing filters.

            --from takes start (the first event still in the log), end (only what is appended from now \
            on: with -f), a position, -N (the last N events before the end of the log that the filters \
            pass: tail reads back from the end until it has them) or an RFC 3339 time such as \
            2026-11-29T10:00:00Z or 2026-11-29T11:00:00.5+01:00 (the first event stamped at or after it, \
            found through the time index). --from -5 and --from=-5 both work. Example: eventlog tail \
            /var/lib/orders --from -20 --stream order-7 -f

            Without --cursor the log is opened read-only, so tail works beside a running writer. While \
            -f has nothing to print it watches the log directory (inotify) and reads on from the known \
            end of the log (new batches, new segments) as soon as another process writes a batch: its \
            events show up within about a millisecond. As a safety net it also looks every second (every \
            50 ms where the directory cannot be watched).

            --cursor NAME starts at the cursor's committed position (creating the cursor at the start \
            of the log when missing; --from does not go with it) and, after each batch of printed lines \
            is flushed to standard output, commits the position after it: a committed event was printed, \
            and after a crash tail prints again from the last commit (at least once, no gaps). Events \
            left out by --stream, --stream-prefix or --type count as consumed. It reads the log \
            read-only and commits to the cursor journal, which every process shares under its own lock, \
            so it works beside a running writer.
            """)

    /// Events printed (and, with `--cursor`, committed) per batch at most.
    static let batchEvents = 1024
    /// How long a caught-up `tail -f` waits for an append (woken by it at
    /// once: `Log.waitForAppends`) before it looks for a stop request.
    static let pollTimeoutSeconds = 0.1

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Keep printing events as they are appended.")
    var follow = false

    @Option(help: ArgumentHelp("Start at this cursor's committed position and commit what is printed.", valueName: "name"))
    var cursor: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Where to start: \(TailStart.formats) (default: start).", valueName: "start"),
        transform: TailStart.parse)
    var from: TailStart?

    @Option(help: ArgumentHelp("Print the events of this stream only (the exact name).", valueName: "name"))
    var stream: String?

    @Option(name: .customLong("stream-prefix"), help: ArgumentHelp("Print events of streams starting with this only.", valueName: "prefix"))
    var streamPrefix: String?

    @Option(name: .customLong("type"), help: ArgumentHelp("Print events of this type only (repeatable).", valueName: "type"))
    var types: [String] = []

    @Flag(help: "Print one JSON object per line (as dump --json).")
    var json = false

    func validate() throws {
        if stream != nil && streamPrefix != nil {
            throw ValidationError("--stream names one stream and --stream-prefix filters by prefix: give one of them")
        }
        if let cursor {
            if from != nil { throw ValidationError("--from does not go with --cursor: tail starts at the cursor's committed position") }
            if cursor.isEmpty || cursor.utf8.count > CursorsCommand.maxCursorNameBytes {
                throw ValidationError("a cursor name is 1 to \(CursorsCommand.maxCursorNameBytes) UTF-8 bytes, got \(cursor.utf8.count)")
            }
        }
    }

    /// Markers are printed only when nothing filters, as by `dump`. An
    /// exact `--stream` reads as a prefix here; `isPrinted` keeps its name only.
    var filter: EventFilter {
        let nothingFilters = stream == nil && streamPrefix == nil && types.isEmpty
        return EventFilter(streamPrefix: stream ?? streamPrefix, types: types.isEmpty ? nil : Set(types), includeMarkers: nothingFilters)
    }

    /// What `filter` leaves to check: the exact stream name of `--stream`.
    func isPrinted(_ event: EventView) -> Bool {
        guard let stream else { return true }
        return event.isStream(stream)
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        StopConditions.install()
        try reportingFailures(command: "tail") {
            var output = OutputWriter(fd: 1)
            do {
                if let cursor {
                    try tailCommitting(to: cursor, into: &output)
                } else {
                    try tailReadOnly(into: &output)
                }
            } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader stopped listening (`tail | head`): not a failure
            } catch {
                // Print what was read before the failure (it is not committed), then report it.
                try? output.flush()
                throw error
            }
        }
    }

    // MARK: Read-only

    /// Reads a read-only log to its end; with `-f`, follows what another
    /// process appends: when caught up, the subscription's poll waits on the
    /// log directory's watch and refreshes the log as soon as the writer
    /// writes (`Log.waitForAppends`), looking for a stop request every
    /// `pollTimeoutSeconds`.
    private func tailReadOnly(into output: inout OutputWriter) throws {
        let log = try Self.openReadOnly(directory)
        defer { try? log.close() }
        let start = try (from ?? .start).startPoint(in: log, filter: filter, accepts: isPrinted)
        let subscription = try log.subscribe(from: start, filter: filter)
        while !StopConditions.shouldStop {
            if try printBatch(of: subscription, timeout: follow ? Self.pollTimeoutSeconds : 0, into: &output) > 0 { continue }
            guard follow else { return }
        }
    }

    private static func openReadOnly(_ directory: String) throws -> Log {
        try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false, readOnly: true))
    }

    // MARK: With a cursor

    /// Reads from the cursor's committed position, committing after every
    /// flushed batch; with `-f`, follows the log as `tailReadOnly` does. The
    /// log is opened read-only with cursor commits allowed, so this works
    /// beside a running writer (the cursor journal is shared under its own lock).
    private func tailCommitting(to cursor: String, into output: inout OutputWriter) throws {
        var options = try LogOptions.cli(createIfMissing: false, readOnly: true)
        options.allowsCursorCommits = true
        let log = try Log.open(at: directory, options: options)
        var closed = false
        defer { if !closed { try? log.close() } }
        let subscription = try log.subscribe(cursor: cursor, createAt: .start, filter: filter)
        var committed = subscription.position
        while !StopConditions.shouldStop {
            let delivered = try printBatch(of: subscription, timeout: follow ? Self.pollTimeoutSeconds : 0, into: &output)
            // Only now that the batch reached standard output: a crash before this line prints it again.
            if subscription.position != committed {
                try subscription.commit()
                committed = subscription.position
            }
            if delivered > 0 || subscription.position < log.endPosition { continue }
            guard follow else { break }
        }
        closed = true
        try log.close()
    }

    // MARK: Printing

    /// Prints the next batch of events that pass the filter and flushes it;
    /// returns how many the subscription delivered (0 when none came within
    /// `timeout` seconds), some of which `isPrinted` may have left out.
    private func printBatch(of subscription: Subscription, timeout: Double, into output: inout OutputWriter) throws -> Int {
        let json = self.json
        let delivered = try subscription.poll(maxCount: Self.batchEvents, timeout: .seconds(timeout)) { event in
            guard isPrinted(event) else { return }
            try DumpCommand.writeLine(event, json: json, into: &output)
        }
        try output.flush()
        return delivered
    }
}
