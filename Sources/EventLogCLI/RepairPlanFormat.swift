import EventLog

/// What `eventlog repair` prints: a `RepairPlan`, as text or one JSON object.
///
/// Text: a heading, one line per action (`cut`, `move_aside` or `rebuild`,
/// the file, `at byte N` for an offset, the reason), then the end position
/// before -> after and where the removed part is (or goes):
///
///     repair plan for /logs/a (nothing was changed; run with --yes to apply it):
///       cut         00000000000000000000.segment at byte 4096: batch checksum mismatch ...
///       move_aside  00000000000000000000.index: describes 00000000000000000000.segment past the cut (rebuilt)
///       rebuild     00000000000000000000.index: from its segment
///     end position 100 -> 30: positions 30..<100 to go aside into /logs/a/damaged-20261129T070000Z
///
/// JSON (keys snake_case): `sound`, `applied`, `refused` (the reason, or
/// null), `actions` (each `action`, `file`, `offset` or null, `reason`),
/// `notes`, `damaged_directory` (or null), `end_position_before`,
/// `end_position_after`, `clamped_cursors` (each `cursor`, `was`, `now`) and
/// `problems_after` (what verify found after the repair: `file`, `offset`, `reason`).
enum RepairPlanFormat {
    static func writeText(_ plan: RepairPlan, into output: inout OutputWriter) {
        if plan.isSound {
            output.append("nothing to repair in \(plan.path) (end position \(plan.endPositionAfter))\n")
            for note in plan.notes { output.append("note: \(note)\n") }
            return
        }
        if plan.refusal != nil {
            output.append("no repair of \(plan.path): it would lose what only its files hold (see the message below)\n")
        } else if plan.applied {
            output.append("repaired \(plan.path):\n")
        } else {
            output.append("repair plan for \(plan.path) (nothing was changed; run with --yes to apply it):\n")
        }
        let width = plan.actions.map { $0.kind.rawValue.count }.max() ?? 0
        for action in plan.actions {
            output.append("  " + action.kind.rawValue + String(repeating: " ", count: width - action.kind.rawValue.count + 2))
            output.append(action.file)
            if let offset = action.offset { output.append(" at byte \(offset)") }
            output.append(": \(action.reason)\n")
        }
        for note in plan.notes { output.append("note: \(note)\n") }
        if plan.refusal == nil {
            output.append("end position \(plan.endPositionBefore) -> \(plan.endPositionAfter)")
            if let directory = plan.damagedDirectory {
                let what = plan.endPositionAfter < plan.endPositionBefore
                    ? "positions \(plan.endPositionAfter)..<\(plan.endPositionBefore)" : "what leaves the log"
                output.append(": \(what) " + (plan.applied ? "now in " : "to go aside into ") + directory)
            }
            output.append("\n")
        }
        for cursor in plan.clampedCursors {
            output.append("cursor \(cursor.name) moved back from \(cursor.was) to \(cursor.now)\n")
        }
        if plan.applied {
            output.append(plan.problemsAfter.isEmpty ? "verify: sound\n" : "verify found \(plan.problemsAfter.count) problem(s):\n")
            for problem in plan.problemsAfter { output.append("  \(problem.file) at byte \(problem.offset): \(problem.reason)\n") }
        }
    }

    static func writeJSON(_ plan: RepairPlan, into output: inout OutputWriter) {
        output.append("{\"sound\":")
        output.append(plan.isSound ? "true" : "false")
        output.append(",\"applied\":")
        output.append(plan.applied ? "true" : "false")
        output.append(",\"refused\":")
        if let refusal = plan.refusal { output.appendJSONString(refusal) } else { output.append("null") }
        output.append(",\"actions\":[")
        for (i, action) in plan.actions.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.append("{\"action\":")
            output.appendJSONString(action.kind.rawValue)
            output.append(",\"file\":")
            output.appendJSONString(action.file)
            output.append(",\"offset\":")
            if let offset = action.offset { output.append(offset) } else { output.append("null") }
            output.append(",\"reason\":")
            output.appendJSONString(action.reason)
            output.append(byte: UInt8(ascii: "}"))
        }
        output.append("],\"notes\":[")
        for (i, note) in plan.notes.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.appendJSONString(note)
        }
        output.append("],\"damaged_directory\":")
        if let directory = plan.damagedDirectory { output.appendJSONString(directory) } else { output.append("null") }
        output.append(",\"end_position_before\":")
        output.append(plan.endPositionBefore)
        output.append(",\"end_position_after\":")
        output.append(plan.endPositionAfter)
        output.append(",\"clamped_cursors\":[")
        for (i, cursor) in plan.clampedCursors.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.append("{\"cursor\":")
            output.appendJSONString(cursor.name)
            output.append(",\"was\":")
            output.append(cursor.was)
            output.append(",\"now\":")
            output.append(cursor.now)
            output.append(byte: UInt8(ascii: "}"))
        }
        output.append("],\"problems_after\":[")
        VerifyCommand.writeJSON(plan.problemsAfter, into: &output)
        output.append("]}")
    }
}
