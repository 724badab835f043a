/// `verify --deep`'s check of the cursor journal (Format.md §15): every
/// cursor, consumer groups' included, at a position the log can hand out
/// next, and every parked event in the log.
enum CursorCheck {
    static func check(_ store: ConsumerStore, start: UInt64, end: UInt64) -> [VerificationProblem] {
        let state = store.snapshot
        let file = store.path
        var problems: [VerificationProblem] = []
        for (name, cursor) in state.cursors.sorted(by: { $0.key < $1.key }) {
            if cursor.position > end {
                problems.append(.init(
                    file: file, offset: 0,
                    reason: "cursor \(name) is at position \(cursor.position), past the end of the log \(end) (a writer's next open moves it back to the end)"))
            } else if cursor.position < start {
                problems.append(.init(
                    file: file, offset: 0,
                    reason: "cursor \(name) is at position \(cursor.position), below the log start \(start): retention removed events \(cursor.position)..<\(start) it had not consumed"))
            }
        }
        for (group, events) in state.parked.sorted(by: { $0.key < $1.key }) {
            for position in events.keys.sorted() where position >= end || position < start {
                problems.append(.init(
                    file: file, offset: 0,
                    reason: "consumer group \(group) has parked position \(position), outside the log's positions \(start)..<\(end)"))
            }
        }
        return problems
    }
}
