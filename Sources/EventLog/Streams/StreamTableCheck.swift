/// `verify --deep`'s check of the stream table (Format.md §14.3): the
/// stream states the chain of runs holds, against the states a replay of the
/// log's records gives for the same positions, where a replay is valid.
enum StreamTableCheck {
    /// Replays `segments` (a log that starts at 0) from position 0 to where
    /// the chain of runs in `directory` ends, and compares each stream's
    /// state with the chain's. With `scavenged` (some segment was rewritten,
    /// §4.1) only what survives scavenging is compared: the next version,
    /// truncate-before, deletion and limits, which the markers carry (the
    /// first and last position and the last append come from events that
    /// scavenging may have removed, a deleted stream's all of them, which only
    /// the runs remember). Returns the problems found and the positions
    /// compared (0 when there is no run).
    static func compare(
        segments: [Segment], end: UInt64, scavenged: Bool, directory: DirectoryOperations, hashMask: UInt64,
        keys: (any SealKeys)? = nil
    ) throws -> (problems: [VerificationProblem], covered: UInt64) {
        let chain = StreamTableRunChain.select(in: directory, end: end)
        guard let last = chain.last else { return ([], 0) }
        let covered = last.to
        // The chain's state of every stream: the newest run's row, and the run holding it.
        var stored: [String: (row: StreamTableRow, run: String)] = [:]
        for run in chain {
            try run.forEachRow { _, row in stored[row.name] = (row, run.path) }
        }
        let table = StreamTable(hashMask: hashMask)
        if covered > 0 {
            try StreamIndexBuilder.replay(
                segments: segments, from: 0, tableFrom: 0, entriesFrom: .max, entries: nil, table: table, upTo: covered, keys: keys)
        }
        var replayed: [String: StreamTableRow] = [:]
        for state in try table.states(where: { _ in true }) { replayed[state.name] = state.row }

        var problems: [VerificationProblem] = []
        let advice = " (the stream table is derived data: remove the run and the next open rebuilds it by replaying the log)"
        for name in Set(stored.keys).union(replayed.keys).sorted() {
            let file = stored[name]?.run ?? last.path
            guard let row = stored[name]?.row else {
                problems.append(.init(file: file, offset: 0, reason: "stream \(name) has records before position \(covered) but no row in the stream table runs" + advice))
                continue
            }
            guard let expected = replayed[name] else {
                problems.append(.init(file: file, offset: 0, reason: "stream \(name) has a row in the stream table runs but no record before position \(covered)" + advice))
                continue
            }
            var differences: [String] = []
            func compare<T: Equatable>(_ what: String, _ found: T, _ wanted: T) {
                if found != wanted { differences.append("\(what) \(found) where the log replays \(wanted)") }
            }
            compare("next version", row.nextVersion, expected.nextVersion)
            compare("truncate-before", row.truncateBefore, expected.truncateBefore)
            compare("deletion", row.deletion, expected.deletion)
            compare("max age", row.maxAgeMicroseconds, expected.maxAgeMicroseconds)
            compare("max count", row.maxCount, expected.maxCount)
            if !scavenged {
                compare("last position", row.lastPosition.map(String.init) ?? "none", expected.lastPosition.map(String.init) ?? "none")
                compare("first position", row.firstPosition.map(String.init) ?? "none", expected.firstPosition.map(String.init) ?? "none")
                compare("last append batch", row.lastAppendBatch, expected.lastAppendBatch)
                compare("last append first version", row.lastAppendFirstVersion, expected.lastAppendFirstVersion)
                compare("last append events", row.lastAppendCount, expected.lastAppendCount)
                if row.lastAppendRecordCount != 0 {
                    // 0: a version 2 run, which does not know them (§14.1).
                    compare("last append records", row.lastAppendRecordCount, expected.lastAppendRecordCount)
                    // In an encrypted log a replayed 0 may be a forgotten key's events (their ids are gone).
                    if keys == nil || expected.lastAppendIDDigest != 0 {
                        compare("last append id digest", row.lastAppendIDDigest, expected.lastAppendIDDigest)
                    }
                }
            }
            if !differences.isEmpty {
                problems.append(.init(file: file, offset: 0, reason: "stream \(name): the run holds " + differences.joined(separator: ", ") + advice))
            }
        }
        return (problems, covered)
    }
}
