import ArgumentParser
import EventLog

/// `eventlog streams DIR`: lists a log's streams; `eventlog streams DIR
/// delete NAME [--hard]`, `eventlog streams DIR truncate NAME --before V`
/// and `eventlog streams DIR set NAME [--max-age D] [--max-count N]` write
/// a stream marker.
///
/// The action is a positional word after the directory (not an
/// ArgumentParser subcommand, which would have to come before it), checked
/// by hand in `validate()`.
struct StreamsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams",
        abstract: "List the streams of a log, delete or truncate one, or set its limits.",
        usage: """
            eventlog streams <directory> [--prefix <prefix>] [--json]
            eventlog streams <directory> delete <name> [--hard]
            eventlog streams <directory> truncate <name> --before <version>
            eventlog streams <directory> set <name> [--max-age <duration>|none] [--max-count <n>|none]
            eventlog streams <directory> forget <name>
            """,
        discussion: """
            Without an action, lists the streams (those starting with --prefix), sorted by name: \
            STREAM, VERSION (of its last event; - when none), COUNT (events a stream read returns), \
            FIRST and LAST (positions of its first readable and its last event), STATE: active, \
            soft-deleted, hard-deleted or truncated before V, and LIMITS (max-age and max-count, - when \
            none). The log is opened read-only, so this works beside a running writer. With --json, one \
            object per line with the keys stream, version (null when none), count, first_position, \
            last_position (null when none), deleted ("none", "soft" or "hard"), truncate_before, \
            max_age_seconds and max_count (null when none).

            delete NAME writes a deletion marker: the stream reads as empty and its next append \
            recreates it, continuing its versions; with --hard it can never be read or written again. \
            truncate NAME --before V hides the versions below V from stream reads. Both open the log \
            for writing (exit 2 when another process has it open for writing), print the marker's \
            position, and exit 2 for a stream that does not exist and 3 for a hard-deleted one. The \
            events stay in the log until compaction frees them.

            set NAME --max-age D --max-count N sets the stream's limits, replacing its earlier ones: \
            events older than D (90s, 30m, 12h, 7d), or before the last N, are hidden from stream reads \
            at once, and compaction removes them from disk (the stream's last event stays, keeping its \
            version). none removes a limit; a limit not given is kept as it was. A stream that does \
            not exist yet is not created: exit 2.

            forget NAME (an encrypted log with per-stream keys, the master key from \
            EVENTLOG_MASTER_KEY_FILE or EVENTLOG_MASTER_KEY) destroys the data key the stream's events \
            were sealed under (crypto-shredding): from then on they read as forgotten everywhere, and \
            compaction removes them. With prefix keys it forgets every stream of the prefix. Prints how \
            many data keys were destroyed; exit 2 for a plain log or one with a single data key.
            Examples:
              eventlog streams /var/lib/orders --prefix order-
              eventlog streams /var/lib/orders set order-7 --max-count 100 --max-age 30d
              eventlog streams /var/lib/orders set order-7 --max-age none
            """)

    enum Action: String, CaseIterable {
        case delete, truncate, set, forget
    }

    @Argument(help: "The log directory.")
    var directory: String

    @Argument(help: ArgumentHelp("delete, truncate, set or forget (default: list the streams).", valueName: "action"))
    var action: String?

    @Argument(help: ArgumentHelp("The stream to delete, truncate, set or forget.", valueName: "name"))
    var name: String?

    @Option(help: "List the streams whose name starts with this only.")
    var prefix: String?

    @Flag(help: "List as one JSON object per line.")
    var json = false

    @Flag(help: "With delete: delete for good (the stream can never be written again).")
    var hard = false

    @Option(help: ArgumentHelp("With truncate: hide the versions below this one.", valueName: "version"))
    var before: UInt64?

    @Option(
        name: .customLong("max-age"),
        help: ArgumentHelp("With set: hide and (on compaction) remove events older than this (90s, 30m, 12h, 7d; none: no limit).", valueName: "duration"))
    var maxAge: String?

    @Option(
        name: .customLong("max-count"),
        help: ArgumentHelp("With set: keep the last N events only (none: no limit).", valueName: "n"))
    var maxCount: String?

    func validate() throws {
        guard let action else {
            if hard { throw ValidationError("--hard goes with delete: eventlog streams <directory> delete <name> --hard") }
            if before != nil {
                throw ValidationError("--before goes with truncate: eventlog streams <directory> truncate <name> --before <version>")
            }
            if maxAge != nil || maxCount != nil {
                throw ValidationError("--max-age and --max-count go with set: eventlog streams <directory> set <name> --max-age <duration>")
            }
            return
        }
        guard let known = Action(rawValue: action) else {
            throw ValidationError("unknown action '\(action)': expected delete, truncate, set or forget (or none, to list the streams)")
        }
        guard let name, !name.isEmpty else { throw ValidationError("\(action) needs a stream name: eventlog streams <directory> \(action) <name>") }
        if name.utf8.count > Limits.maxStreamNameBytes {
            throw ValidationError("the stream name is \(name.utf8.count) bytes, above the maximum of \(Limits.maxStreamNameBytes)")
        }
        if prefix != nil || json { throw ValidationError("--prefix and --json go with the listing, not with \(action)") }
        if known != .set && (maxAge != nil || maxCount != nil) {
            throw ValidationError("--max-age and --max-count go with set, not \(action)")
        }
        switch known {
        case .forget:
            if hard || before != nil { throw ValidationError("--hard and --before go with delete and truncate, not forget") }
        case .delete:
            if before != nil { throw ValidationError("--before goes with truncate, not delete") }
        case .truncate:
            if hard { throw ValidationError("--hard goes with delete, not truncate") }
            if before == nil { throw ValidationError("truncate needs --before <version>: eventlog streams <directory> truncate \(name) --before <version>") }
        case .set:
            if hard || before != nil { throw ValidationError("--hard and --before go with delete and truncate, not set") }
            if maxAge == nil && maxCount == nil {
                throw ValidationError("set needs --max-age or --max-count: eventlog streams <directory> set \(name) --max-count <n>")
            }
            _ = try limitChanges()
        }
    }

    /// What `set` changes: for each limit, nil when not given, `.some(nil)` for none.
    private func limitChanges() throws -> (maxAge: Duration??, maxCount: UInt64??) {
        var age: Duration?? = nil
        if let maxAge {
            if maxAge == "none" {
                age = .some(nil)
            } else {
                guard let seconds = DurationText.seconds(maxAge), seconds > 0, seconds <= UInt64(Int64.max / 1_000_000) else {
                    throw ValidationError("--max-age '\(maxAge)' is not a duration: expected \(DurationText.formats), above 0, or none")
                }
                age = .some(.seconds(Int64(seconds)))
            }
        }
        var count: UInt64?? = nil
        if let maxCount {
            if maxCount == "none" {
                count = .some(nil)
            } else {
                guard let n = UInt64(maxCount), n > 0 else {
                    throw ValidationError("--max-count '\(maxCount)' is not a count: expected a whole number of 1 or more, or none")
                }
                count = .some(n)
            }
        }
        return (age, count)
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "streams") {
            switch action.flatMap(Action.init(rawValue:)) {
            case nil: try list()
            case .delete?, .truncate?, .set?: try writeMarker()
            case .forget?: try forget()
            }
        }
    }

    // MARK: Listing

    private func list() throws {
        let log = try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false, readOnly: true))
        defer { try? log.close() }
        let infos = try log.streamInfos(prefix: prefix ?? "")
        var output = OutputWriter(fd: 1)
        do {
            if json {
                for info in infos {
                    Self.writeJSON(info, into: &output)
                    try output.appendLineEnd()
                }
            } else {
                Self.writeTable(infos, into: &output)
            }
            try output.flush()
        } catch {
            if !error.isBrokenPipe { throw error }  // `streams | head` is not a failure
        }
    }

    /// `streamInfos` gives a truncated stream's first position ever;
    /// `streamInfo`, its first readable one (what the listing shows).
    /// `{"stream":"order-1","version":3,"count":4,"first_position":0,"last_position":12,"deleted":"none","truncate_before":0}`
    static func writeJSON(_ info: StreamInfo, into output: inout OutputWriter) {
        output.append("{\"stream\":")
        output.appendJSONString(info.name)
        output.append(",\"version\":")
        appendOptional(info.currentVersion, into: &output)
        output.append(",\"count\":")
        output.append(info.count)
        output.append(",\"first_position\":")
        appendOptional(info.firstPosition, into: &output)
        output.append(",\"last_position\":")
        appendOptional(info.lastPosition, into: &output)
        output.append(",\"deleted\":")
        switch info.deletion {
        case .none: output.appendJSONString("none")
        case .soft: output.appendJSONString("soft")
        case .hard: output.appendJSONString("hard")
        }
        output.append(",\"truncate_before\":")
        output.append(info.truncateBefore)
        output.append(",\"max_age_seconds\":")
        if let age = info.limits.maxAge { output.append(ageSeconds(age)) } else { output.append("null") }
        output.append(",\"max_count\":")
        appendOptional(info.limits.maxCount, into: &output)
        output.append(byte: UInt8(ascii: "}"))
    }

    static func writeTable(_ infos: [StreamInfo], into output: inout OutputWriter) {
        var rows: [[String]] = [["STREAM", "VERSION", "COUNT", "FIRST", "LAST", "STATE", "LIMITS"]]
        for info in infos {
            rows.append([
                displayName(info.name), info.currentVersion.map { "\($0)" } ?? "-", "\(info.count)",
                info.firstPosition.map { "\($0)" } ?? "-", info.lastPosition.map { "\($0)" } ?? "-", state(of: info),
                limits(of: info),
            ])
        }
        output.appendTable(rows, rightAligned: Set(1...4))
    }

    static func limits(of info: StreamInfo) -> String { describe(info.limits) ?? "-" }

    /// `max-age 3600s max-count 100`, `max-count 100`, or nil when none.
    static func describe(_ limits: StreamLimits) -> String? {
        var parts: [String] = []
        if let age = limits.maxAge { parts.append("max-age \(ageSeconds(age))s") }
        if let count = limits.maxCount { parts.append("max-count \(count)") }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    /// A max age in whole seconds, rounded up (the tool sets whole seconds).
    static func ageSeconds(_ age: Duration) -> UInt64 {
        let (seconds, attoseconds) = age.components
        return UInt64(max(0, seconds)) + (attoseconds > 0 ? 1 : 0)
    }

    static func state(of info: StreamInfo) -> String {
        switch info.deletion {
        case .hard: return "hard-deleted"
        case .soft: return "soft-deleted"
        case .none: return info.truncateBefore > 0 ? "truncated before \(info.truncateBefore)" : "active"
        }
    }

    /// A name as is when printable without blanks, else quoted and escaped (so it cannot break the table).
    static func displayName(_ name: String) -> String {
        let printable = name.unicodeScalars.allSatisfy { scalar in
            let value = scalar.value
            return value >= 0x21 && value != 0x7F && !(0x80...0x9F).contains(value) && value != 0x2028 && value != 0x2029
        }
        if printable { return name }
        var quoted = OutputWriter(fd: -1)
        quoted.appendJSONString(name)
        return String(decoding: quoted.buffer, as: UTF8.self)
    }

    private static func appendOptional(_ value: UInt64?, into output: inout OutputWriter) {
        if let value { output.append(value) } else { output.append("null") }
    }

    // MARK: Forgetting

    private func forget() throws {
        guard let name else { return }  // validate() requires it
        let log = try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false))
        let destroyed: Int
        do { destroyed = try log.forgetStream(name) } catch {
            try? log.close()
            throw error
        }
        try log.close()
        var output = OutputWriter(fd: 1)
        output.append(
            destroyed == 0
                ? "stream \(name) has no data key (no event of it was sealed): nothing to forget\n"
                : "forgot stream \(name): destroyed \(destroyed) data key\(destroyed == 1 ? "" : "s"); its events now read as forgotten\n")
        try? output.flush()
    }

    // MARK: Markers

    private func writeMarker() throws {
        guard let name else { return }  // validate() requires it
        let log = try Log.open(at: directory, options: try LogOptions.cli(createIfMissing: false))
        let done: String
        do {
            done = try writeMarker(to: name, in: log)
        } catch {
            try? log.close()
            throw error
        }
        try log.close()
        var output = OutputWriter(fd: 1)
        output.append(done + "\n")
        try? output.flush()  // the marker is written either way; a closed stdout does not undo it
    }

    /// Writes the marker; returns what was done, for standard output.
    private func writeMarker(to name: String, in log: Log) throws -> String {
        // A typo must not create a stream that holds nothing but a marker.
        guard try log.streamInfo(name) != nil else {
            throw CommandFailure("stream \(name) does not exist in \(directory)")
        }
        do {
            if Action(rawValue: action ?? "") == .set {
                let (age, count) = try limitChanges()
                guard let current = try log.streamInfo(name)?.limits else { throw CommandFailure("stream \(name) does not exist in \(directory)") }
                var limits = current
                if let age { limits.maxAge = age }
                if let count { limits.maxCount = count }
                let position = try log.setStreamLimits(name, limits)
                return "set the limits of stream \(name) to \(Self.describe(limits) ?? "none"): marker at position \(position)"
            }
            if let before {
                let position = try log.truncateStream(name, before: before)
                return "truncated stream \(name) before version \(before): marker at position \(position)"
            }
            let position = try log.deleteStream(name, hard: hard)
            return "deleted stream \(name) (\(hard ? "hard" : "soft")): marker at position \(position)"
        } catch let error as EventLogError {
            if error.refusingStream != nil { throw CommandFailure.streamConflict(error) }
            throw error
        }
    }
}
