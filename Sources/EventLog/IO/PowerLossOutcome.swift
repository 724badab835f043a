// Choosing the state a power loss leaves, from a `PowerLossModel` and a
// seeded generator (tests only). What a real kernel and disk may leave:
//
// - a file's bytes as of its last `fdatasync`/`fsync` are kept exactly;
// - each 512-byte sector changed since then shows its content at that sync
//   or after any one of the changes that touched it (so a change is lost,
//   kept, or kept in part; sectors independently, in no order);
// - a file's length is its length at that sync or after any one change since;
// - the directory's entry changes since its last fsync persist as a prefix
//   of their sequence (journaling file systems commit them in order).
//
// For each file, and for the directory, a mode is drawn first: 1/4 all
// lost, 1/4 all kept, 1/2 mixed (each sector, the length and the prefix
// drawn uniformly), so that each kind of outcome is common.

/// SplitMix64: the simulator's only source of randomness, so that a seed
/// replays exactly.
struct PowerLossRandom: RandomNumberGenerator, Sendable {
    private(set) var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (multiply-high; the bias is negligible for the small bounds used here).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

/// How much of what was pending a power loss keeps, for one file or for the directory.
enum PowerLossMode: String, Sendable {
    case allLost = "all lost"
    case allKept = "all kept"
    case mixed

    /// 1/4 all lost, 1/4 all kept, 1/2 mixed.
    static func draw(_ random: inout PowerLossRandom) -> PowerLossMode {
        switch random.below(4) {
        case 0: .allLost
        case 1: .allKept
        default: .mixed
        }
    }

    /// How many of `count` pending changes persist (a prefix): none, all, or any.
    func persisted(of count: Int, _ random: inout PowerLossRandom) -> Int {
        switch self {
        case .allLost: 0
        case .allKept: count
        case .mixed: random.below(count + 1)
        }
    }
}

/// What a power loss chose, for debugging a failing seed.
struct PowerLossReport: Sendable, CustomStringConvertible {
    /// One file that exists after the power loss.
    struct File: Sendable {
        /// Its names after the power loss.
        var names: [String]
        var mode: PowerLossMode
        /// Changes since its last sync, and what became of them: lost (no
        /// sector shows it), kept (every sector it touched does), partial.
        /// A change that could alter no byte (zeros over zeros) is in none.
        var pendingChanges: Int
        var lost: Int
        var kept: Int
        var partial: Int
        /// Its length at its last sync, just before the power loss, and after.
        var syncedLength: Int64
        var lengthBefore: Int64
        var length: Int64
    }

    var directoryMode: PowerLossMode
    /// Entry changes since the last directory fsync, and how many persisted.
    var directoryChanges: Int
    var directoryChangesPersisted: Int
    /// Sorted by first name.
    var files: [File]
    /// Names there before the power loss and gone after.
    var missing: [String]
    /// Names not there before and there after (an unlink or rename undone).
    var restored: [String]
    /// Names that now refer to another file than before (a rename undone).
    var replaced: [String]

    var description: String {
        var lines = [
            "power loss: directory \(directoryMode), \(directoryChangesPersisted) of \(directoryChanges) entry changes persisted"
        ]
        if !missing.isEmpty { lines.append("  missing: \(missing.joined(separator: ", "))") }
        if !restored.isEmpty { lines.append("  restored: \(restored.joined(separator: ", "))") }
        if !replaced.isEmpty { lines.append("  replaced: \(replaced.joined(separator: ", "))") }
        for file in files where file.pendingChanges > 0 || file.length != file.lengthBefore {
            lines.append(
                "  \(file.names.joined(separator: " = ")): \(file.mode), \(file.pendingChanges) pending: "
                    + "\(file.lost) lost, \(file.kept) kept, \(file.partial) partial; "
                    + "length \(file.length) (synced \(file.syncedLength), before \(file.lengthBefore))")
        }
        return lines.joined(separator: "\n")
    }
}

extension PowerLossModel {
    /// Chooses the state a power loss leaves: the files that exist, with
    /// their names, content and length. Consumes `random` in a fixed order
    /// (the directory, then each surviving file by node), never depending
    /// on dictionary order.
    func powerLossOutcome(_ random: inout PowerLossRandom) -> (files: [File], report: PowerLossReport) {
        let directoryMode = PowerLossMode.draw(&random)
        let persisted = directoryMode.persisted(of: directoryChanges.count, &random)
        var after = syncedNames
        for change in directoryChanges[0..<persisted] { change.apply(to: &after) }

        var namesOf: [NodeID: [String]] = [:]
        for (name, id) in after { namesOf[id, default: []].append(name) }
        var files: [File] = []
        var reports: [PowerLossReport.File] = []
        for id in namesOf.keys.sorted() {
            guard let node = nodes[id] else { continue }
            let names = namesOf[id]!.sorted()
            let mode = PowerLossMode.draw(&random)
            let (file, report) = node.outcome(mode, names: names, &random)
            files.append(file)
            reports.append(report)
        }
        reports.sort { $0.names[0] < $1.names[0] }
        let report = PowerLossReport(
            directoryMode: directoryMode, directoryChanges: directoryChanges.count,
            directoryChangesPersisted: persisted, files: reports,
            missing: names.keys.filter { after[$0] == nil }.sorted(),
            restored: after.keys.filter { names[$0] == nil }.sorted(),
            replaced: after.keys.filter { names[$0] != nil && names[$0] != after[$0] }.sorted())
        return (files, report)
    }
}

extension PowerLossModel.Node {
    /// The sector size: the unit a disk writes atomically.
    static let sectorSize = 512

    /// The content and length this file may be left with, in `mode`.
    func outcome(
        _ mode: PowerLossMode, names: [String], _ random: inout PowerLossRandom
    ) -> (PowerLossModel.File, PowerLossReport.File) {
        let size = Int64(Self.sectorSize)
        // The sectors a pending change can alter: those written, and those
        // holding synced data (zeroing any other sector changes nothing).
        var candidates = Set(synced.nonZeroSectors(sectorSize: Self.sectorSize))
        for p in pending {
            if case .write = p.change {
                for s in (p.change.range.lowerBound / size)...((p.change.range.upperBound - 1) / size) { candidates.insert(s) }
            }
        }
        let sectors = candidates.sorted()
        // Each candidate sector's changes, in order.
        var touching: [Int64: [Int]] = [:]
        for (j, p) in pending.enumerated() {
            let range = p.change.range
            var i = Self.firstIndex(in: sectors, atLeast: range.lowerBound / size)
            while i < sectors.count, sectors[i] * size < range.upperBound {
                touching[sectors[i], default: []].append(j)
                i += 1
            }
        }
        var content = synced
        var shown = [Int](repeating: 0, count: pending.count)
        var hidden = [Int](repeating: 0, count: pending.count)
        for s in sectors {
            guard let changes = touching[s] else { continue }
            let kept = mode.persisted(of: changes.count, &random)
            for (k, j) in changes.enumerated() {
                if k < kept { shown[j] += 1 } else { hidden[j] += 1 }
            }
            guard kept > 0 else { continue }
            // The sector as its `kept`-th change left it.
            var sector = synced.read(at: s * size, count: Self.sectorSize)
            for j in changes[0..<kept] { pending[j].change.apply(toSector: &sector, at: s * size) }
            content.write(sector, at: s * size)
        }
        let newLength: Int64
        switch mode {
        case .allLost: newLength = syncedLength
        case .allKept: newLength = length
        case .mixed:
            let lengths = Set([syncedLength] + pending.map(\.lengthAfter)).sorted()
            newLength = lengths[random.below(lengths.count)]
        }
        content.zero(from: newLength, to: .max)

        let outcomes = zip(shown, hidden)
        let report = PowerLossReport.File(
            names: names, mode: mode, pendingChanges: pending.count,
            lost: outcomes.filter { $0.0 == 0 && $0.1 > 0 }.count,
            kept: outcomes.filter { $0.0 > 0 && $0.1 == 0 }.count,
            partial: outcomes.filter { $0.0 > 0 && $0.1 > 0 }.count,
            syncedLength: syncedLength, lengthBefore: length, length: newLength)
        return (PowerLossModel.File(names: names, content: content, length: newLength), report)
    }

    /// The index of the first element of `sorted` that is at least `value`.
    private static func firstIndex(in sorted: [Int64], atLeast value: Int64) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
