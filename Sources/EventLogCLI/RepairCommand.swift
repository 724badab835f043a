import ArgumentParser
import EventLog

/// `eventlog repair DIR [--yes] [--json]`: plans (and with --yes carries
/// out) the repair of damage an open refuses or verify reports.
struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Repair damage that open refuses: cut or move aside what follows it, rebuild indexes and the stream table.",
        discussion: """
            Checks every byte of the log as verify does and plans from the first damage: damage in a \
            batch of the last segment cuts that segment at the damaged batch (the bytes from there on \
            are first copied into DIR/damaged-<UTC time>/ as <segment>.from-<offset>); damage in a \
            sealed segment or a segment header, or a missing segment, moves that segment and every later \
            one, with their index files, into the damaged directory; index files, stream table runs and \
            the clean-shutdown marker that describe what leaves the log, or that verify found damaged, \
            are moved aside too, and rebuilt. Nothing is deleted: eventlog dump reads a segment file \
            moved aside. After the repair the log ends where the damage began: the events after it are \
            the ones in the damaged directory, and the next append takes the position of the first of them. \
            Cursors past the new end are moved back to it. A torn final batch is left to the next open, \
            which cuts it.

            Without --yes it prints the plan, changes nothing and exits with 1 (a finding), or with 0 and \
            "nothing to repair" when the log is sound. With --yes it carries the plan out (a crash at any \
            step leaves the damaged log, on which repair can run again, or the repaired one), opens and \
            closes the log to rebuild its indexes and stream table, verifies it, prints what it did and \
            exits with 0 (1 if verify still finds a problem).

            It refuses (exit 1 without --yes, 3 with it) when the repair would lose what only the log's \
            files hold: the stream table runs it must set aside are the only record of the streams of \
            segments retention removed, or of events scavenging removed (Format.md, "Repair"). It needs \
            the log not to be open by a writer (exit 2).

            With --json, one object with the keys sound, applied, refused (null or why), actions (each \
            with action: cut, move_aside or rebuild, file, offset (null when none) and reason), notes, \
            damaged_directory (null when nothing leaves the log), end_position_before, end_position_after, \
            clamped_cursors (cursor, was, now) and problems_after (what verify found after the repair); \
            the exit codes are the same.

            Example: eventlog repair /var/lib/orders, then eventlog repair /var/lib/orders --yes
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "Carry out the repair (without it, only print the plan).")
    var yes = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "repair") {
            let plan: RepairPlan
            do {
                plan = try Log.repair(at: directory, apply: yes)
            } catch let error as EventLogError {
                guard case .locked = error else { throw error }
                throw CommandFailure("\(error.description): repair needs the log not to be open by a writer")
            }
            var output = OutputWriter(fd: 1)
            if json {
                RepairPlanFormat.writeJSON(plan, into: &output)
                try output.appendLineEnd()
            } else {
                RepairPlanFormat.writeText(plan, into: &output)
            }
            try output.flush()
            if let refusal = plan.refusal {
                throw CommandFailure(
                    "no repair of \(directory): \(refusal)",
                    exitCode: yes ? CommandFailure.refusedWriteExitCode : CommandFailure.findingExitCode)
            }
            if plan.isSound { return }
            if !plan.applied {
                let count = plan.actions.count
                throw CommandFailure.finding("\(count) \(count == 1 ? "action" : "actions") planned for \(directory); run with --yes to apply")
            }
            if !plan.problemsAfter.isEmpty {
                throw CommandFailure.finding("the repaired log still has \(plan.problemsAfter.count) problem(s); run eventlog verify \(directory)")
            }
        }
    }
}
