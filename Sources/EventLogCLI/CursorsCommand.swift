import ArgumentParser
import EventLog

/// `eventlog cursors DIR`: lists a log's named cursors with their lag;
/// `eventlog cursors DIR set NAME (--position P | --start | --end | --time T)`
/// moves (or creates) one and `eventlog cursors DIR delete NAME` deletes one.
///
/// Like `streams`, the action is a positional word after the directory,
/// checked by hand in `validate()`.
struct CursorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cursors",
        abstract: "List the named cursors of a log with their lag, or set or delete one.",
        usage: """
            eventlog cursors <directory> [--json]
            eventlog cursors <directory> set <name> (--position <position> | --start | --end | --time <time>)
            eventlog cursors <directory> delete <name>
            """,
        discussion: """
            A cursor is a consumer's committed position: the next event it will consume (every event \
            before it was processed). Consumer groups keep theirs as cursors named group:NAME; they are \
            listed, set and deleted like the others.

            Without an action, lists the cursors sorted by name: CURSOR, POSITION, UPDATED (when it was \
            last set, ISO 8601 UTC), LAG_EVENTS and LAG_BYTES (events and bytes of log between the \
            position and the end; bytes are counted from the batch holding the position) and OLDEST_AGE \
            (the age of the oldest event not yet consumed; - when caught up). The log is opened \
            read-only, so this works beside a running writer. With --json, one object per line with the \
            keys cursor, position, updated_at (microseconds since 1970), lag_events, lag_bytes and \
            oldest_unconsumed_age_us (microseconds; null when caught up).

            A cursor that damaged records of the cursor journal name (its position is unknown) is listed \
            as damaged, with where the damage starts and, when the records before it named the cursor, \
            the position they had (JSON keys cursor, damaged: true, file, offset, \
            position_before_damage); the command then exits 1. set or delete gives it a known state \
            again; eventlog repair settles the whole journal.

            set NAME moves the cursor, backwards or forwards, to --position P (at most the end of the \
            log), --start (the first event still in the log), --end (after the last event) or --time T \
            (the first event at or after T: microseconds since 1970 or an ISO 8601 time such as \
            2024-05-01T12:00:00Z), creating it when missing, and prints its new position. delete NAME \
            deletes it (exit 2 when it does not exist); a consumer group's parked events go with it. Both \
            open the log for writing: exit 2 when another process has it open for writing.
            """)

    enum Action: String, CaseIterable {
        case set, delete
    }

    /// The longest cursor name, in UTF-8 bytes (the library's limit).
    static let maxCursorNameBytes = Limits.maxCursorNameBytes

    @Argument(help: "The log directory.")
    var directory: String

    @Argument(help: ArgumentHelp("set or delete (default: list the cursors).", valueName: "action"))
    var action: String?

    @Argument(help: ArgumentHelp("The cursor to set or delete.", valueName: "name"))
    var name: String?

    @Flag(help: "List as one JSON object per line.")
    var json = false

    @Option(help: ArgumentHelp("With set: move the cursor to this position.", valueName: "position"))
    var position: UInt64?

    @Flag(help: "With set: move the cursor to the first event still in the log.")
    var start = false

    @Flag(help: "With set: move the cursor to the end of the log (only new events are left to consume).")
    var end = false

    @Option(help: ArgumentHelp("With set: move the cursor to the first event at or after this time (\(TimestampArgument.formats)).", valueName: "time"))
    var time: TimestampArgument?

    /// Where `set` moves the cursor; nil when no option chose it.
    var target: StartPoint? {
        if let position { return .position(position) }
        if start { return .start }
        if end { return .end }
        if let time { return .timestamp(time.microseconds) }
        return nil
    }

    var targetOptionCount: Int { [position != nil, start, end, time != nil].filter { $0 }.count }

    func validate() throws {
        guard let action else {
            if targetOptionCount > 0 {
                throw ValidationError("--position, --start, --end and --time go with set: eventlog cursors <directory> set <name> --start")
            }
            return
        }
        guard let known = Action(rawValue: action) else {
            throw ValidationError("unknown action '\(action)': expected set or delete (or none, to list the cursors)")
        }
        guard let name, !name.isEmpty else { throw ValidationError("\(action) needs a cursor name: eventlog cursors <directory> \(action) <name>") }
        if name.utf8.count > Self.maxCursorNameBytes {
            throw ValidationError("the cursor name is \(name.utf8.count) bytes, above the maximum of \(Self.maxCursorNameBytes)")
        }
        if json { throw ValidationError("--json goes with the listing, not with \(action)") }
        switch known {
        case .set:
            if targetOptionCount != 1 {
                throw ValidationError("set needs exactly one of --position <position>, --start, --end or --time <time>")
            }
        case .delete:
            if targetOptionCount > 0 { throw ValidationError("--position, --start, --end and --time go with set, not delete") }
        }
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "cursors") {
            switch action.flatMap(Action.init(rawValue:)) {
            case nil: try list()
            case .set?: try set()
            case .delete?: try delete()
            }
        }
    }

    // MARK: Listing

    private func list() throws {
        let log = try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false, readOnly: true))
        defer { try? log.close() }
        let cursors = try log.cursors()
        let damaged = log.damagedCursors()
        var output = OutputWriter(fd: 1)
        do {
            if json {
                for cursor in cursors {
                    Self.writeJSON(cursor, into: &output)
                    try output.appendLineEnd()
                }
                for cursor in damaged {
                    Self.writeJSON(cursor, into: &output)
                    try output.appendLineEnd()
                }
            } else {
                Self.writeTable(cursors, into: &output)
                for cursor in damaged {
                    output.append("damaged: cursor \(StreamsCommand.displayName(cursor.name)) (\(cursor.file) at byte \(cursor.offset)); ")
                    output.append(cursor.positionBeforeDamage.map { "before the damage it was at position \($0)" } ?? "no earlier position")
                    try output.appendLineEnd()
                }
            }
            try output.flush()
        } catch {
            if !error.isBrokenPipe { throw error }  // `cursors | head` is not a failure
        }
        if !damaged.isEmpty { throw ExitCode(CommandFailure.findingExitCode) }
    }

    /// `{"cursor":"projector","damaged":true,"file":"/logs/a/cursors.journal","offset":96,"position_before_damage":12}`
    static func writeJSON(_ cursor: DamagedCursor, into output: inout OutputWriter) {
        output.append("{\"cursor\":")
        output.appendJSONString(cursor.name)
        output.append(",\"damaged\":true,\"file\":")
        output.appendJSONString(cursor.file)
        output.append(",\"offset\":")
        output.append(cursor.offset)
        output.append(",\"position_before_damage\":")
        if let position = cursor.positionBeforeDamage { output.append(position) } else { output.append("null") }
        output.append(byte: UInt8(ascii: "}"))
    }

    /// `{"cursor":"projector","position":12,"updated_at":1700000000000000,"lag_events":3,"lag_bytes":410,"oldest_unconsumed_age_us":5000}`
    static func writeJSON(_ cursor: CursorInfo, into output: inout OutputWriter) {
        output.append("{\"cursor\":")
        output.appendJSONString(cursor.name)
        output.append(",\"position\":")
        output.append(cursor.position)
        output.append(",\"updated_at\":")
        output.append(cursor.updatedAt)
        output.append(",\"lag_events\":")
        output.append(cursor.lag.events)
        output.append(",\"lag_bytes\":")
        output.append(cursor.lag.bytes)
        output.append(",\"oldest_unconsumed_age_us\":")
        if let age = cursor.lag.oldestUnconsumedAgeMicroseconds { output.append(age) } else { output.append("null") }
        output.append(byte: UInt8(ascii: "}"))
    }

    static func writeTable(_ cursors: [CursorInfo], into output: inout OutputWriter) {
        var rows: [[String]] = [["CURSOR", "POSITION", "UPDATED", "LAG_EVENTS", "LAG_BYTES", "OLDEST_AGE"]]
        for cursor in cursors {
            rows.append([
                StreamsCommand.displayName(cursor.name), "\(cursor.position)", iso8601(cursor.updatedAt), "\(cursor.lag.events)",
                "\(cursor.lag.bytes)", cursor.lag.oldestUnconsumedAgeMicroseconds.map(duration) ?? "-",
            ])
        }
        output.appendTable(rows, rightAligned: [1, 3, 4, 5])
    }

    /// An age for a person: `850us`, `12ms`, `4.2s`, `3m07s`, `5h02m`, `2d04h`.
    static func duration(_ microseconds: Int64) -> String {
        let us = max(0, microseconds)
        if us < 1000 { return "\(us)us" }
        if us < 1_000_000 { return "\(us / 1000)ms" }
        let seconds = us / 1_000_000
        if seconds < 60 { return "\(seconds).\(us / 100_000 % 10)s" }
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if seconds < 3600 { return "\(seconds / 60)m\(two(seconds % 60))s" }
        if seconds < 86_400 { return "\(seconds / 3600)h\(two(seconds / 60 % 60))m" }
        return "\(seconds / 86_400)d\(two(seconds / 3600 % 24))h"
    }

    // MARK: Set and delete

    private func set() throws {
        guard let name, let target else { return }  // validate() requires them
        let done = try withWritableLog { log throws -> String in
            if let damaged = log.damagedCursors().first(where: { $0.name == name }) {
                let position = try log.resetCursor(name, to: target)
                return "set damaged cursor \(name) to position \(position) (the journal's damage is at byte \(damaged.offset))"
            }
            let previous = try log.cursorPosition(name)
            let position = try log.resetCursor(name, to: target)
            guard let previous else { return "created cursor \(name) at position \(position)" }
            return "set cursor \(name) to position \(position) (was \(previous))"
        }
        Self.print(done)
    }

    private func delete() throws {
        guard let name else { return }  // validate() requires it
        let done = try withWritableLog { log throws -> String in
            if log.damagedCursors().contains(where: { $0.name == name }) {
                try log.deleteCursor(name)
                return "deleted damaged cursor \(name)"
            }
            guard let position = try log.cursorPosition(name) else {
                throw CommandFailure("cursor \(name) does not exist in \(directory)")
            }
            try log.deleteCursor(name)
            return "deleted cursor \(name) (it was at position \(position))"
        }
        Self.print(done)
    }

    /// Opens the log for writing, runs `body` and closes the log (also when `body` throws).
    private func withWritableLog(_ body: (Log) throws -> String) throws -> String {
        let log = try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false))
        let done: String
        do {
            done = try body(log)
        } catch {
            try? log.close()
            throw error
        }
        try log.close()
        return done
    }

    private static func print(_ line: String) {
        var output = OutputWriter(fd: 1)
        output.append(line + "\n")
        try? output.flush()  // the change is made either way; a closed stdout does not undo it
    }
}
