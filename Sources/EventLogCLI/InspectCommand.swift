import ArgumentParser
import EventLog

/// `eventlog inspect DIR`: describes a log's segments, totals, format
/// version and how its last session ended.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a log: its segments, totals, start, settings, format version and last shutdown.",
        discussion: """
            Changes nothing and works beside a running writer. It reads each segment's header and \
            index files, the last batch they name and the batch headers after it: a bounded read per \
            segment, whatever its size (verify checks the checksums). A segment \
            whose index files are missing, damaged or not confirmed by the segment is scanned instead \
            (every batch header walked; inspect names it and says why), and so is a rewritten one. \
            Batches are counted only where every batch header is walked (no file records them): \
            --scan walks every segment, reading about the whole log. Last shutdown is clean, unclean (the next open recovers \
            the tail), open (a writer holds the log now) or new.

            With --json, one JSON object with the keys path, format_version, log_id, created_at, \
            last_shutdown, last_shutdown_at (when clean), start_position, end_position, \
            missing_positions, damaged_files (file, offset, reason each: a damaged or missing \
            eventlog.meta, whose identity is then read from the segment headers), settings (the object of eventlog config --json: retain_age_seconds, \
            retain_bytes, retain_cursors; null when they cannot be read), reclaimable_bytes (what \
            retention would remove now, without reading any record; eventlog compact --dry-run also \
            counts what scavenging would; null when unknown), last_compaction (the last compaction \
            that removed something: the keys of eventlog compact --json without dry_run, plus \
            finished_at; null when none did or it is unknown), last_compaction_failure (at, error: \
            the last compaction's failure, background runs included; null when the last one did \
            not fail), last_compaction_unreadable (why eventlog.compaction could not be read, \
            null when it could or there is none), segments (file, \
            base_position, end_position, batches, events, bytes, allocated_bytes, first_timestamp, \
            last_timestamp, sealed, rewritten: scavenging rewrote it without dead events, scanned: null when its index \
            files described it, else why every batch header was walked: asked (--scan), rewritten, or why the index \
            files could not be used, such as index missing; batches is null where they were not counted), totals \
            (segments, batches: null unless every segment's were counted, events, bytes, allocated_bytes), \
            directory_mode (the log directory's permission bits, in octal, such as "0700") and \
            file_modes (an object: each file or directory in it by name, with its permission bits in \
            octal), encryption (null for a log without a key store; else scope: log, stream or \
            stream-prefix, separator (stream-prefix only), data_keys, forgotten_keys, key_store_bytes: \
            read from eventlog.keys without the master key). Times are microseconds since 1970; a \
            segment without events has null timestamps.

            Modes: a log is created with its directory 0700 and every file 0600 (LogOptions.fileMode \
            can let the group or others read). A log whose directory or any file in it the group or \
            others can write does not open (exit 2); inspect still describes it and names them. Files \
            0644 of older builds open, but every local user can read them (chmod 600 restricts them).

            The start position is the first position still in the log: retention (eventlog compact) \
            moves it past the segments it removes. The settings (retain age, retain bytes, retain \
            cursors) are those of eventlog config; they need a read-only open of the log, and show as \
            unknown when the log does not open or its settings file is damaged (stderr says why).
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Walk every batch header of every segment, counting batches (reads about the whole log).")
    var scan = false

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "inspect") {
            let inspection = try Log.inspect(at: directory, scan: scan)
            let (settings, reclaimable, compaction) = readThroughReadOnlyOpen()
            var output = OutputWriter(fd: 1)
            if json {
                JSONInspectionFormat.write(
                    inspection, settings: settings, reclaimableBytes: reclaimable, compaction: compaction, into: &output)
                output.append(byte: UInt8(ascii: "\n"))
            } else {
                Self.writeText(inspection, settings: settings, reclaimableBytes: reclaimable, compaction: compaction, into: &output)
            }
            try output.flush()
        }
    }

    /// What needs a read-only open of the log: its settings, the bytes
    /// retention would reclaim now (a dry run) and how the last compaction
    /// went; nils (and a note on stderr) when the log does not open: inspect
    /// still describes such a log.
    private func readThroughReadOnlyOpen() -> (LogSettings?, UInt64?, MaintenanceStatus?) {
        do {
            let log = try Log.openReadOnly(directory)
            defer { try? log.close() }
            // Retention's share only: scavenging's would read every record.
            let dryRun = try log.compact(dryRun: true, scavenging: false)
            return (try log.settings(), dryRun.bytesBefore - min(dryRun.bytesAfter, dryRun.bytesBefore), log.maintenanceStatus)
        } catch {
            writeToStandardError("eventlog inspect: the settings cannot be read: \(error)\n")
            return (nil, nil, nil)
        }
    }

    // MARK: Text

    /// "directory 0700, files 0600 (12)", then what the group or others can write or read.
    static func modesText(_ log: LogInspection) -> String {
        var counts: [UInt32: Int] = [:]
        for mode in log.fileModes.values { counts[mode, default: 0] += 1 }
        let files = counts.keys.sorted().map { "\(octal($0)) (\(counts[$0] ?? 0))" }.joined(separator: ", ")
        var text = "directory \(octal(log.directoryMode)), files " + (files.isEmpty ? "none" : files)
        let writable = log.writableByOthers
        if !writable.isEmpty {
            let names = writable.prefix(5).joined(separator: ", ") + (writable.count > 5 ? ", ..." : "")
            text += "; the group or others can write \(names): the log does not open (chmod go-w)"
        } else if log.directoryMode & 0o044 != 0 || log.fileModes.values.contains(where: { $0 & 0o044 != 0 }) {
            text += "; the group or others can read"
        }
        return text
    }

    /// The key store's file name (Format.md §16).
    static let keyStoreName = "eventlog.keys"

    /// A data key scope as inspect names it: "log", "stream" or "stream-prefix".
    static func scopeName(_ scope: DataKeyScope) -> String {
        switch scope {
        case .log: return "log"
        case .stream: return "stream"
        case .streamPrefix: return "stream-prefix"
        }
    }

    /// "none", or "AES-256-GCM, one data key per stream: 12 data keys, 1 forgotten (key store 1024 bytes)".
    static func encryptionText(_ encryption: EncryptionInspection?) -> String {
        guard let encryption else { return "none (no key store, eventlog.keys)" }
        let scope: String
        switch encryption.scope {
        case .log: scope = "one data key for the log"
        case .stream: scope = "one data key per stream"
        case .streamPrefix(let separator):
            scope = "one data key per stream name prefix (up to \"\(String(decoding: [separator], as: UTF8.self))\")"
        }
        return "AES-256-GCM, \(scope): \(encryption.dataKeys) data keys, \(encryption.forgottenKeys) forgotten "
            + "(key store \(encryption.keyStoreBytes) bytes)"
    }

    /// A mode as four octal digits ("0600").
    static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func writeText(
        _ log: LogInspection, settings: LogSettings?, reclaimableBytes: UInt64?, compaction: MaintenanceStatus?,
        into output: inout OutputWriter
    ) {
        let totals = InspectionTotals(log.segments)
        var header: [(String, String)] = [
            ("path", log.path),
            ("format version", "\(log.formatVersion)"),
            ("log id", log.logID.uuidString.lowercased()),
            ("created at", iso8601(log.createdAt)),
            ("last shutdown", describe(log.lastShutdown)),
            ("start position", "\(log.startPosition)"),
            ("positions", "\(log.startPosition) ..< \(log.endPosition)"),
            ("totals", "\(totals.segments) segments, " + (totals.batches.map { "\($0) batches, " } ?? "")
                + "\(totals.events) events, \(totals.bytes) bytes (\(totals.allocatedBytes) allocated)"),
        ]
        if !log.missingPositions.isEmpty {
            let ranges = log.missingPositions.map { "\($0.lowerBound) ..< \($0.upperBound)" }.joined(separator: ", ")
            header.insert(("missing", ranges + " (segments are missing: see eventlog verify)"), at: 7)
        }
        for segment in log.segments {
            guard case .indexUnusable(let reason) = segment.scanned else { continue }
            header.append(("scanned", "\(segment.file): \(reason)"))
        }
        for damaged in log.damagedFiles {
            if damaged.file.hasSuffix("/" + keyStoreName) {
                header.append(("damaged", "\(damaged) (the events sealed under that key cannot be read: restore eventlog.keys from a backup)"))
            } else {
                header.append(("damaged", "\(damaged) (the events are intact: eventlog repair rebuilds it)"))
            }
        }
        header.append(("modes", modesText(log)))
        header.append(("encryption", encryptionText(log.encryption)))
        if let settings {
            header += RetentionSettingsFormat.textRows(settings)
            if let reclaimableBytes { header.append(("reclaimable", "\(reclaimableBytes) bytes (what eventlog compact would remove now)")) }
        } else {
            header.append(("settings", "unknown (they could not be read: see the message above)"))
        }
        if let compaction {
            if let result = compaction.lastResult {
                var text = "\(iso8601(result.finishedAt)): removed \(result.eventsRemoved) events "
                    + "(\(result.eventsScavenged) by scavenging, \(result.segmentsRewritten) segments rewritten), "
                    + "\(result.segmentsBefore) -> \(result.segmentsAfter) segments, \(result.bytesBefore) -> \(result.bytesAfter) bytes, "
                    + "start \(result.startPositionBefore) -> \(result.startPosition)"
                if let reason = result.heldBackBy { text += ", held back by \(reason)" }
                header.append(("compacted", text))
            } else if let problem = compaction.unreadableReport {
                header.append(("compacted", "unknown (\(problem); the next compaction replaces the file)"))
            } else {
                header.append(("compacted", "never (no compaction has removed anything)"))
            }
            if let failure = compaction.lastFailure {
                header.append(("compact failed", (compaction.lastFailureAt.map(iso8601) ?? "?") + ": " + failure + " (the last compaction)"))
            }
        }
        let labelWidth = header.map(\.0.count).max() ?? 0
        for (label, value) in header {
            output.append(label + String(repeating: " ", count: labelWidth - label.count + 2) + value + "\n")
        }
        output.append("\n")

        var rows: [[String]] = [["FILE", "BASE", "END", "BATCHES", "EVENTS", "BYTES", "ALLOCATED", "FIRST", "LAST", "STATE"]]
        for s in log.segments {
            rows.append([
                s.file, "\(s.basePosition)", "\(s.endPosition)", s.batches.map { "\($0)" } ?? "-", "\(s.events)", "\(s.bytes)",
                "\(s.allocatedBytes)", s.firstTimestamp.map(iso8601) ?? "-", s.lastTimestamp.map(iso8601) ?? "-",
                s.isSealed ? (s.isRewritten ? "rewritten" : "sealed") : "active",
            ])
        }
        rows.append([
            "total", "\(log.startPosition)", "\(log.endPosition)", totals.batches.map { "\($0)" } ?? "-", "\(totals.events)",
            "\(totals.bytes)", "\(totals.allocatedBytes)", "", "", "",
        ])
        output.appendTable(rows, rightAligned: Set(1...6))
    }

    private static func describe(_ shutdown: ShutdownState) -> String {
        switch shutdown {
        case .new: return "new (never closed, nothing appended)"
        case .clean(let at): return "clean at \(iso8601(at))"
        case .unclean: return "unclean (the next open recovers the tail)"
        case .open: return "open (a writer holds the log now)"
        }
    }
}

/// Sums over the segments of a `LogInspection`.
struct InspectionTotals {
    var segments = 0
    /// Nil unless every segment's batches were counted.
    var batches: Int? = 0
    var events: UInt64 = 0
    var bytes: Int64 = 0
    var allocatedBytes: Int64 = 0

    init(_ segments: [SegmentInspection]) {
        self.segments = segments.count
        for s in segments {
            batches = batches.flatMap { sum in s.batches.map { sum + $0 } }
            events += s.events
            bytes += s.bytes
            allocatedBytes += s.allocatedBytes
        }
    }
}
