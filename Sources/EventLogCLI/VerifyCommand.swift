import ArgumentParser
import EventLog

/// `eventlog verify DIR`: checks every checksum and every index of a log.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every checksum and every index file of a log.",
        discussion: """
            Reads every byte of the log without changing it (it works beside a running writer). On a \
            terminal, a check that takes more than half a second shows its progress on standard error \
            (segments, events, events per second). Exits with 0 and a one-line summary when all is sound; otherwise prints one line per \
            problem, "FILE at byte OFFSET: REASON", and exits with 1.

            With --json, one JSON object with the keys sound (true or false), segments, batches, \
            events and index_files (what was checked) and problems (one object per problem: file, \
            offset, reason); the exit codes are the same.

            --deep then checks, on the log opened read-only, what no checksum covers: each record's \
            invariants (its timestamp within its batch's, versions that grow within each stream, without \
            gaps in a log from position 0 that scavenging did not rewrite, and markers that are \
            markers), the stream table runs against a replay of the log's records where a replay is \
            valid (the log starts at 0; in a scavenged log only what scavenging keeps), and every \
            cursor and consumer group's parked event against the log's start and end. Its findings \
            are problems like the others (exit 1); the JSON object then also has deep (true), \
            streams_compared, cursors_checked and notes (deep checks left out, and why). The \
            offset, time and stream index files are compared with indexes rebuilt from the segments \
            with or without --deep. An encrypted log's deep checks need its master key \
            (EVENTLOG_MASTER_KEY_FILE or EVENTLOG_MASTER_KEY; without it they are left out, with a \
            note): every sealed batch is then opened, and one whose seal does not open is a problem.

            Example: eventlog verify /var/lib/orders --json
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Also check record invariants, the stream table against a replay of the log, and the cursors.")
    var deep = false

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "verify") {
            // On a terminal, a progress line once the check takes more than half a second.
            var line = ProgressLine()
            var deepStarted: Double?
            let encryption = deep ? try MasterKeyEnvironment.encryption() : nil
            let report = try Log.verify(at: directory, deep: deep, encryption: encryption) { progress in
                if progress.deep && deepStarted == nil { deepStarted = line.elapsed }
                let rate = Double(progress.eventsChecked) / max(line.elapsed - (deepStarted ?? 0), 0.001)
                line.update(
                    done: progress.segmentsChecked, total: progress.segmentCount,
                    (progress.deep ? "deep: " : "")
                        + "segment \(progress.segmentsChecked) of \(progress.segmentCount), \(progress.eventsChecked) events, \(Int(rate)) events/s")
            }
            line.finish()
            var output = OutputWriter(fd: 1)
            if json {
                Self.writeJSON(report, into: &output)
                try output.appendLineEnd()
                try output.flush()
                if !report.isSound { throw ExitCode(CommandFailure.findingExitCode) }
                return
            }
            for note in report.notes {
                output.append("note: \(note)")
                try output.appendLineEnd()
            }
            if report.isSound {
                output.append("sound: \(report.segments) segments, \(report.batches) batches, \(report.events) events, ")
                output.append("\(report.indexFiles) index files checked")
                if report.deep {
                    output.append(", deep: \(report.streamsCompared) streams compared with a replay, \(report.cursorsChecked) cursors checked")
                }
                output.append(" in \(directory)\n")
                try output.flush()
                return
            }
            for problem in report.problems {
                output.append("\(problem.file) at byte \(problem.offset): \(problem.reason)")
                try output.appendLineEnd()
            }
            try output.flush()
            let count = report.problems.count
            throw CommandFailure.finding(
                "\(count) \(count == 1 ? "problem" : "problems") found in \(directory) "
                    + "(\(report.segments) segments, \(report.batches) batches, \(report.events) events checked)")
        }
    }

    /// `{"sound":false,"segments":3,"batches":40,"events":2000,"index_files":9,`
    /// `"problems":[{"file":"/logs/a/00000000000000000000.segment","offset":64,"reason":"batch checksum mismatch"}]}`
    static func writeJSON(_ report: VerificationReport, into output: inout OutputWriter) {
        output.append("{\"sound\":")
        output.append(report.isSound ? "true" : "false")
        output.append(",\"segments\":")
        output.append(report.segments)
        output.append(",\"batches\":")
        output.append(report.batches)
        output.append(",\"events\":")
        output.append(report.events)
        output.append(",\"index_files\":")
        output.append(report.indexFiles)
        if report.deep {
            output.append(",\"deep\":true,\"streams_compared\":")
            output.append(report.streamsCompared)
            output.append(",\"cursors_checked\":")
            output.append(report.cursorsChecked)
            output.append(",\"notes\":[")
            for (i, note) in report.notes.enumerated() {
                if i > 0 { output.append(byte: UInt8(ascii: ",")) }
                output.appendJSONString(note)
            }
            output.append("]")
        }
        output.append(",\"problems\":[")
        writeJSON(report.problems, into: &output)
        output.append("]}")
    }
}

extension VerifyCommand {
    /// `{"file":…,"offset":…,"reason":…}` for each problem, comma-separated
    /// (the array's brackets are the caller's): `verify --json`'s and
    /// `repair --json`'s problems.
    static func writeJSON(_ problems: [VerificationProblem], into output: inout OutputWriter) {
        for (i, problem) in problems.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.append("{\"file\":")
            output.appendJSONString(problem.file)
            output.append(",\"offset\":")
            output.append(problem.offset)
            output.append(",\"reason\":")
            output.appendJSONString(problem.reason)
            output.append(byte: UInt8(ascii: "}"))
        }
    }
}
