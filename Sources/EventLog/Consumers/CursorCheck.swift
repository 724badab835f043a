/// `verify --deep`'s check of the cursor journal (Format.md §15): every
/// cursor, consumer groups' included, at a position the log can hand out
/// next, and every parked event in the log.
///
/// A cursor past the end is a problem (the log never handed that position
/// out). A cursor below the log start is only a note: retention is held back
/// by the cursors the settings name, and any other consumer may fall behind
/// it; its next read starts at the log start.
enum CursorCheck {
    static func check(_ store: ConsumerStore, start: UInt64, end: UInt64) -> (problems: [VerificationProblem], notes: [String]) {
        let state = store.snapshot
        let file = store.path
        var problems: [VerificationProblem] = []
        var notes: [String] = []
        for (name, cursor) in state.cursors.sorted(by: { $0.key < $1.key }) {
            if cursor.position > end {
                problems.append(.init(
                    file: file, offset: 0,
                    reason: "cursor \(name) is at position \(cursor.position), past the end of the log \(end) (a writer's next open moves it back to the end)"))
            } else if cursor.position < start {
                notes.append(
                    "cursor \(name) is at position \(cursor.position), below the log start \(start): retention removed events \(cursor.position)..<\(start) it had not consumed (not a cursor retention waits for)")
            }
        }
        for (group, events) in state.parked.sorted(by: { $0.key < $1.key }) {
            for position in events.keys.sorted() where position >= end || position < start {
                problems.append(.init(
                    file: file, offset: 0,
                    reason: "consumer group \(group) has parked position \(position), outside the log's positions \(start)..<\(end)"))
            }
        }
        return (problems, notes)
    }
}
