/// Which stream table runs describe a log (Format.md §14.2): run files are
/// named by the positions whose changes they hold, so the chain is found
/// from the names. From position 0 (whatever the log start: the runs are
/// the durable record of the streams of segments retention removed, Format
/// version 3), each step takes the usable run
/// that starts there and reaches furthest without passing the log's end;
/// the chain ends where no run starts. A merged run and its inputs may
/// both be present after a crash: the merged one reaches further and wins.
enum StreamTableRunChain {
    /// Every run file whose header, fence and bloom filter check (its blocks
    /// are checked when read), and the names of the other run files and
    /// temporary leftovers.
    static func openAll(in directory: DirectoryOperations) -> (runs: [StreamTableRunView], unusable: [String]) {
        guard let names = try? directory.list() else { return ([], []) }
        var runs: [StreamTableRunView] = []
        var unusable: [String] = []
        for name in names {
            if name.hasSuffix(FileNames.streamTableRunSuffix + ".tmp") {
                unusable.append(name)
                continue
            }
            guard let range = FileNames.streamTableRunRange(name) else { continue }
            if let run = StreamTableRunView.open(path: directory.file(name), faults: directory.faults),
               run.from == range.from, run.to == range.to, run.from < run.to {
                runs.append(run)
            } else if DirectoryOperations.exists(directory.file(name)) {
                unusable.append(name)
            }
            // (Gone since the listing: a live writer merged it into a run it
            // wrote before removing it, listed or not. Not damage.)
        }
        return (runs, unusable)
    }

    /// The chain from position 0, reaching at most `end`, oldest first.
    static func select(from runs: [StreamTableRunView], end: UInt64) -> [StreamTableRunView] {
        var byFrom: [UInt64: StreamTableRunView] = [:]
        for run in runs where run.to <= end {
            if let other = byFrom[run.from], other.to >= run.to { continue }
            byFrom[run.from] = run
        }
        var chain: [StreamTableRunView] = []
        var position: UInt64 = 0
        while let next = byFrom[position] {
            chain.append(next)
            position = next.to
        }
        return chain
    }

    /// The chain in `directory` as it is now (a read-only log adopting the writer's newer runs).
    static func select(in directory: DirectoryOperations, end: UInt64) -> [StreamTableRunView] {
        select(from: openAll(in: directory).runs, end: end)
    }
}
