/// Merges contiguous stream table runs (Format.md §14.1) into one, as an LSM
/// tree compacts its tables.
enum StreamTableRunMerge {
    /// Writes the run `name` in `directory` holding the rows of `runs`
    /// (oldest first, contiguous: each run's `to` is the next one's `from`),
    /// from the first run's `from` to the last one's `to`; where several runs
    /// have a row of the same stream (hash and name), the newest run's wins.
    /// Returns the new run, opened.
    ///
    /// Reads each run one block at a time (every block checked) and writes as
    /// it goes: memory does not grow with the rows. The merged run is of
    /// `StreamTableRun.version`: rows of a run of that version are copied
    /// byte for byte, those of an older version's run re-encoded. Each row
    /// costs a comparison with every run's current row (runs are few). The file is
    /// written to `name.tmp`, synced, renamed to `name`, and the directory
    /// synced. Throws `EventLogError`: `invalidArgument` for no runs or runs
    /// that are not contiguous (before writing anything), `corruption` for a
    /// damaged input, `io` for a failed write.
    ///
    /// `shouldStop` is asked every 4,096 rows: when it says so, the merge
    /// stops, removes its temporary file and throws `EventLogError.closed`
    /// (a log closing does not wait for a long merge).
    static func merge(
        _ runs: [StreamTableRunView], into name: String, in directory: DirectoryOperations, shouldStop: () -> Bool = { false }
    ) throws -> StreamTableRunView {
        guard let first = runs.first, let last = runs.last else { throw EventLogError.invalidArgument("no stream table runs to merge") }
        for (older, newer) in zip(runs, runs.dropFirst()) where older.to != newer.from {
            throw EventLogError.invalidArgument(
                "stream table runs to merge must be contiguous, oldest first: \(older.path) ends at position \(older.to) but \(newer.path) starts at \(newer.from)")
        }
        let temporary = name + ".tmp"
        do {
            var writer = try StreamTableRunWriter(
                path: directory.file(temporary), from: first.from, to: last.to,
                expectedRows: runs.reduce(0) { $0 + $1.rowCount }, modes: directory.modes, faults: directory.faults)
            var cursors = runs.map(StreamTableRunCursor.init)
            var live = try cursors.indices.map { try cursors[$0].advance() }
            var rows = 0
            while true {
                rows += 1
                if rows & 4095 == 0 && shouldStop() { throw EventLogError.closed }
                // The smallest key; among equal keys the newest run's.
                var newest = -1
                for i in cursors.indices where live[i] {
                    if newest < 0
                        || StreamTableRun.compare(cursors[i].hash, cursors[i].nameBytes, cursors[newest].hash, cursors[newest].nameBytes) <= 0
                    {
                        newest = i
                    }
                }
                guard newest >= 0 else { break }
                let hash = cursors[newest].hash
                let key = cursors[newest].nameBytes
                if cursors[newest].view.version == StreamTableRun.version {
                    try writer.append(hash: hash, name: key, encodedRow: cursors[newest].encodedRow)
                } else {
                    // A row of an older layout (a version 2 run): re-encoded, its digest and record count unknown (0).
                    guard let fields = cursors[newest].fields else {
                        throw EventLogError.corruption(file: cursors[newest].view.path, offset: 0, reason: "a stream table run's row has no fields")
                    }
                    try writer.append(hash: hash, name: key, fields: fields)
                }
                for i in cursors.indices where live[i] && StreamTableRun.compare(cursors[i].hash, cursors[i].nameBytes, hash, key) == 0 {
                    live[i] = try cursors[i].advance()
                }
            }
            try writer.finish()
            try directory.rename(temporary, to: name)
        } catch {
            try? directory.remove(temporary)
            throw EventLogError.wrapping(error)
        }
        guard let merged = StreamTableRunView.open(path: directory.file(name), faults: directory.faults) else {
            throw EventLogError.corruption(file: directory.file(name), offset: 0, reason: "the merged stream table run does not open")
        }
        return merged
    }
}
