import ArgumentParser
import EventLog

/// `eventlog config DIR`: prints a log's settings (retention, key compaction);
/// `eventlog config DIR set [--retain-age D] [--retain-bytes S] [--retain-cursors A,B]
/// [--key-compaction on|off] [--tombstone-retention D]` changes the ones given.
///
/// Like `streams` and `cursors`, the action is a positional word after the
/// directory, checked by hand in `validate()`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print a log's settings (retention, key compaction), or change them.",
        usage: """
            eventlog config <directory> [--json]
            eventlog config <directory> set [--retain-age <duration>] [--retain-bytes <size>] [--retain-cursors <names>]
                                            [--key-compaction on|off] [--tombstone-retention <duration>] [--json]
            """,
        discussion: """
            The settings are kept in the log's directory (eventlog.settings), so every process that opens \
            the log applies the same ones. Without an action, prints them, one line each: retain age \
            (sealed segments whose newest event is older than this go; unlimited when unset), retain \
            bytes (the oldest sealed segments go while the segments take more than this; unlimited when \
            unset) and retain cursors (no segment holding an event at or after one of these cursors' \
            positions goes, also when the cursor does not exist yet; none when unset), key compaction \
            (on: in sealed segments only the latest event of each key survives a compaction, and a \
            tombstone removes its key's earlier events) and tombstone retention (how long a tombstone \
            stays once it is its key's latest event; 1 day unless set). The log is opened read-only, so \
            this works beside a running writer. With --json, one object with the keys \
            retain_age_seconds (null when unset), retain_bytes (null when unset), retain_cursors (an \
            array of names), key_compaction (true or false) and tombstone_retention_seconds.

            set changes the settings given and keeps the others: --retain-age takes an integer followed \
            by s, m, h or d (90s, 30m, 12h, 7d), --retain-bytes bytes or an integer followed by K, M, G \
            or T (powers of 1024: 512M, 10G), each or none to clear it, and --retain-cursors a \
            comma-separated list of cursor names (an empty string clears it), --key-compaction on or \
            off, --tombstone-retention a duration as --retain-age (0s: as soon as compaction runs); a \
            malformed value is a \
            usage error (exit 2) naming the option and the value. It opens the log for writing (exit 2 \
            when another process has it open for writing) and prints the new settings \
            as above. The settings apply from the next compaction: eventlog compact, or a writer's \
            background retention.

            Examples:
              eventlog config /var/lib/orders set --retain-age 30d --retain-cursors relay
              eventlog config /var/lib/users set --key-compaction on --tombstone-retention 7d
            """)

    enum Action: String, CaseIterable {
        case set
    }

    @Argument(help: "The log directory.")
    var directory: String

    @Argument(help: ArgumentHelp("set (default: print the settings).", valueName: "action"))
    var action: String?

    @Option(
        name: .customLong("retain-age"), parsing: .unconditional,
        help: ArgumentHelp("With set: the retain age, \(RetentionSettingsFormat.durationFormats).", valueName: "duration"),
        transform: RetentionSettingsFormat.parseDuration)
    var retainAge: SettingChange<Duration>?

    @Option(
        name: .customLong("retain-bytes"), parsing: .unconditional,
        help: ArgumentHelp("With set: the retain bytes, \(RetentionSettingsFormat.sizeFormats).", valueName: "size"),
        transform: RetentionSettingsFormat.parseSize)
    var retainBytes: SettingChange<UInt64>?

    @Option(
        name: .customLong("retain-cursors"), parsing: .unconditional,
        help: ArgumentHelp("With set: the cursors that hold retention back, comma-separated (\"\" for none).", valueName: "names"),
        transform: RetentionSettingsFormat.parseCursorList)
    var retainCursors: [String]?

    @Option(
        name: .customLong("key-compaction"),
        help: ArgumentHelp("With set: on or off.", valueName: "on|off"),
        transform: { text throws -> Bool in
            switch text {
            case "on": return true
            case "off": return false
            default: throw ValidationError("--key-compaction takes on or off, got '\(text)'")
            }
        })
    var keyCompaction: Bool?

    @Option(
        name: .customLong("tombstone-retention"),
        help: ArgumentHelp("With set: how long a tombstone stays once it is its key's latest event, \(DurationText.formats).", valueName: "duration"),
        transform: { text throws -> Duration in
            guard let seconds = DurationText.seconds(text), seconds <= UInt64(UInt32.max) else { throw ValidationError("--tombstone-retention '\(text)' is not a duration: expected \(DurationText.formats), at most 136 years") }
            return .seconds(Int64(seconds))
        })
    var tombstoneRetention: Duration?

    @Flag(help: "Print one JSON object.")
    var json = false

    var changeCount: Int {
        [retainAge != nil, retainBytes != nil, retainCursors != nil, keyCompaction != nil, tombstoneRetention != nil].filter { $0 }.count
    }

    func validate() throws {
        guard let action else {
            if changeCount > 0 {
                throw ValidationError(
                    "--retain-age, --retain-bytes, --retain-cursors, --key-compaction and --tombstone-retention go with set: eventlog config <directory> set --retain-bytes 10G")
            }
            return
        }
        guard Action(rawValue: action) != nil else {
            throw ValidationError("unknown action '\(action)': expected set (or none, to print the settings)")
        }
        if changeCount == 0 {
            throw ValidationError(
                "set needs at least one of --retain-age <duration>, --retain-bytes <size>, --retain-cursors <names>, --key-compaction on|off or --tombstone-retention <duration>")
        }
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "config") {
            let settings: LogSettings
            switch action.flatMap(Action.init(rawValue:)) {
            case nil:
                let log = try Log.openReadOnly(directory)
                defer { try? log.close() }
                settings = try log.settings()
            case .set?:
                settings = try set()
            }
            var output = OutputWriter(fd: 1)
            Self.write(settings, json: json, into: &output)
            do { try output.flush() } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader went away: not a failure (the settings are stored either way)
            }
        }
    }

    /// Opens the log for writing, changes the settings given, closes it; returns the new settings.
    private func set() throws -> LogSettings {
        let log = try Log.openForCommand(directory, purpose: "config set")
        let settings: LogSettings
        do {
            settings = try applied(to: log.settings())
            try log.updateSettings(settings)
        } catch {
            try? log.close()
            throw error
        }
        try log.close()
        return settings
    }

    /// `current` with the options given.
    func applied(to current: LogSettings) -> LogSettings {
        var settings = current
        if let retainAge { settings.retainAge = retainAge.value }
        if let retainBytes { settings.retainBytes = retainBytes.value }
        if let retainCursors { settings.retainCursors = retainCursors }
        if let keyCompaction { settings.keyCompaction = keyCompaction }
        if let tombstoneRetention { settings.tombstoneRetention = tombstoneRetention }
        return settings
    }

    /// The settings as `config` prints them: three lines, or (`json`) one object and a line end.
    static func write(_ settings: LogSettings, json: Bool, into output: inout OutputWriter) {
        if json {
            RetentionSettingsFormat.writeJSON(settings, into: &output)
            output.append(byte: UInt8(ascii: "\n"))
        } else {
            RetentionSettingsFormat.writeRows(RetentionSettingsFormat.textRows(settings), into: &output)
        }
    }
}
