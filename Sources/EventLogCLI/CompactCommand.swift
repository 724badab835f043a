import ArgumentParser
import EventLog

/// `eventlog compact DIR [--dry-run]`: applies the log's retention settings
/// now (or says what that would remove) and reports what was reclaimed.
struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Apply the log's retention settings and scavenge now: remove the oldest sealed segments they no longer keep, and the events of deleted and truncated streams.",
        discussion: """
            Removes whole sealed segments from the oldest, while the retain age or retain bytes of \
            eventlog config ask for it and no cursor named in retain cursors (nor an event a consumer \
            group parked) still needs them; never the active segment. The log start moves to the first \
            segment kept. Then scavenges: rewrites each sealed segment in which at least 1/16 of the \
            events are dead (events of deleted streams, events below a stream's truncate-before) \
            without them; positions do not change; then merges runs of small neighbouring sealed \
            segments into one file each. Prints segments and bytes before -> after, the \
            segments rewritten, the events removed, the start position before -> after and, when a \
            cursor or a parked event stopped retention from removing more, what held it back.

            Without --dry-run it opens the log for writing (exit 2 when another process has it open for \
            writing: a running writer applies retention itself, in the background). With --dry-run it \
            opens the log read-only, changes nothing and prints what would go (the start position it \
            prints after -> is where the log would start).

            With --json, one object with the keys segments_before, segments_after, bytes_before, \
            bytes_after (the segment files' lengths; a dry run estimates a rewritten file's), \
            segments_rewritten, segments_merged (small neighbouring segments combined after scavenging; \
            a merge of n counts n), events_removed (by both), events_scavenged (by scavenging), start_position_before, \
            start_position (the log start after the run: unchanged by a dry run), dry_run and \
            held_back_by (null when nothing held retention back).
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(name: .customLong("dry-run"), help: "Change nothing; print what would be removed (works beside a running writer).")
    var dryRun = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "compact") {
            let log = try dryRun ? Log.openReadOnly(directory) : Log.openForCommand(directory, purpose: "compact")
            let result: CompactionResult
            do {
                result = try log.compact(dryRun: dryRun)
            } catch {
                try? log.close()
                throw error
            }
            try log.close()
            var output = OutputWriter(fd: 1)
            if json {
                Self.writeJSON(result, into: &output)
                output.append(byte: UInt8(ascii: "\n"))
            } else {
                Self.writeText(result, into: &output)
            }
            do { try output.flush() } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader went away (`compact | head`): the segments are gone either way
            }
        }
    }

    /// `{"segments_before":5,"segments_after":3,"bytes_before":20480,"bytes_after":12288,"events_removed":300,`
    /// `"start_position":300,"start_position_before":0,"dry_run":false,"held_back_by":"cursor relay at position 350"}`
    /// With `finishedAt` (`inspect`'s last compaction), no `dry_run` and a
    /// `finished_at` (microseconds since 1970) instead.
    static func writeJSON(_ result: CompactionResult, into output: inout OutputWriter, finishedAt: Bool = false) {
        output.append("{\"segments_before\":")
        output.append(result.segmentsBefore)
        output.append(",\"segments_after\":")
        output.append(result.segmentsAfter)
        output.append(",\"bytes_before\":")
        output.append(result.bytesBefore)
        output.append(",\"bytes_after\":")
        output.append(result.bytesAfter)
        output.append(",\"segments_rewritten\":")
        output.append(result.segmentsRewritten)
        output.append(",\"segments_merged\":")
        output.append(result.segmentsMerged)
        output.append(",\"events_removed\":")
        output.append(result.eventsRemoved)
        output.append(",\"events_scavenged\":")
        output.append(result.eventsScavenged)
        output.append(",\"start_position\":")
        output.append(result.startPosition)
        output.append(",\"start_position_before\":")
        output.append(result.startPositionBefore)
        if finishedAt {
            output.append(",\"finished_at\":")
            output.append(result.finishedAt)
        } else {
            output.append(",\"dry_run\":")
            output.append(result.dryRun ? "true" : "false")
        }
        output.append(",\"held_back_by\":")
        if let reason = result.heldBackBy { output.appendJSONString(reason) } else { output.append("null") }
        output.append(byte: UInt8(ascii: "}"))
    }

    /// A summary line, then `segments`, `bytes`, `events removed`, `start position` and `held back by` rows.
    static func writeText(_ result: CompactionResult, into output: inout OutputWriter) {
        let removedSegments = result.segmentsBefore - result.segmentsAfter
        let reclaimed = result.bytesBefore - min(result.bytesAfter, result.bytesBefore)
        // Retention removes a prefix of contiguous segments: the first kept starts where the removed events end.
        let start = result.dryRun ? result.startPositionBefore + (result.eventsRemoved - result.eventsScavenged) : result.startPosition
        let rewritten = result.segmentsRewritten
        var what = "\(removedSegments) segment\(removedSegments == 1 ? "" : "s")"
        if rewritten > 0 { what += (result.dryRun ? " and rewrite " : " and rewrote ") + "\(rewritten)" }
        what += " (\(reclaimed) bytes, \(result.eventsRemoved) events)"
        let nothing = removedSegments == 0 && rewritten == 0
        if result.dryRun {
            output.append(nothing ? "dry run: nothing would be removed\n" : "dry run: would remove \(what); nothing was changed\n")
        } else {
            output.append(nothing ? "nothing removed\n" : "removed \(what)\n")
        }
        var rows: [(String, String)] = [
            ("segments", "\(result.segmentsBefore) -> \(result.segmentsAfter)"),
            ("segments rewritten", "\(rewritten)"),
            ("segments merged", "\(result.segmentsMerged)"),
            ("bytes", "\(result.bytesBefore) -> \(result.bytesAfter)"),
            ("events removed", "\(result.eventsRemoved) (\(result.eventsScavenged) by scavenging)"),
            ("start position", "\(result.startPositionBefore) -> \(start)"),
        ]
        if let reason = result.heldBackBy { rows.append(("held back by", reason)) }
        RetentionSettingsFormat.writeRows(rows, into: &output)
    }
}
