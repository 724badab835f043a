import Foundation

/// The figures of all rounds, in the order they were first reported.
struct Results {
    struct Entry {
        let phase: String
        let metric: String
        let durability: String
        var values: [Double]
        /// Why there is no value (a phase the engine cannot run yet).
        var missingReason: String?
    }

    private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]

    mutating func add(_ phase: String, _ metric: String, _ value: Double, durability: String) {
        let key = phase + "/" + metric
        if let i = index[key] {
            entries[i].values.append(value)
        } else {
            index[key] = entries.count
            entries.append(Entry(phase: phase, metric: metric, durability: durability, values: [value]))
        }
    }

    mutating func notMeasured(_ phase: String, _ metric: String, reason: String) {
        let key = phase + "/" + metric
        guard index[key] == nil else { return }
        index[key] = entries.count
        entries.append(Entry(phase: phase, metric: metric, durability: "read", values: [], missingReason: reason))
    }
}

extension Results.Entry {
    var median: Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    var min: Double { values.min()! }
    var max: Double { values.max()! }

    /// The engine's target for this figure (from the brief), if it has one.
    var target: Target? { Target.all[phase + "/" + metric] }
}

/// A figure the engine must reach on the development machine.
struct Target {
    enum Direction { case atLeast, atMost }
    let direction: Direction
    let value: Double

    func isMet(by x: Double) -> Bool { direction == .atLeast ? x >= value : x <= value }

    static let all: [String: Target] = [
        "A1/events_per_s": Target(direction: .atLeast, value: 1_500_000),
        "A1-lz4/events_per_s": Target(direction: .atLeast, value: 1_000_000),
        "A1/disk_ratio": Target(direction: .atMost, value: 1.05),
        "A1-lz4/disk_ratio": Target(direction: .atMost, value: 0.6),
        "A2/events_per_s": Target(direction: .atLeast, value: 350_000),
        "A3/p50_us": Target(direction: .atMost, value: 160),
        "A3/p99_us": Target(direction: .atMost, value: 350),
        "R1/events_per_s": Target(direction: .atLeast, value: 15_000_000),
        "R3/reads_per_s": Target(direction: .atLeast, value: 600_000),
    ]
}

/// A number for the table: thousands separated, decimals by magnitude.
func formatValue(_ x: Double) -> String {
    if !x.isFinite { return "\(x)" }
    let magnitude = abs(x)
    let decimals = magnitude >= 1000 ? 0 : magnitude >= 100 ? 1 : magnitude >= 10 ? 2 : magnitude >= 1 ? 3 : 4
    let text = String(format: "%.\(decimals)f", magnitude)
    let parts = text.split(separator: ".", maxSplits: 1)
    var integer = ""
    for (i, digit) in parts[0].reversed().enumerated() {
        if i > 0 && i % 3 == 0 { integer.append(",") }
        integer.append(digit)
    }
    integer = String(integer.reversed())
    return (x < 0 ? "-" : "") + integer + (parts.count > 1 ? "." + parts[1] : "")
}

extension Results {
    /// The human-readable table.
    func table(rounds: Int) -> String {
        var rows: [[String]] = [["phase", "metric", rounds > 1 ? "median [min – max]" : "value", "target", "durability"]]
        for entry in entries {
            var value: String
            var target = ""
            if let reason = entry.missingReason {
                value = "n/a (\(reason))"
            } else {
                value = formatValue(entry.median)
                if entry.values.count > 1 { value += " [\(formatValue(entry.min)) – \(formatValue(entry.max))]" }
                if let t = entry.target {
                    target = (t.direction == .atLeast ? "≥ " : "≤ ") + formatValue(t.value)
                    target += t.isMet(by: entry.median) ? "  ok" : "  MISSED"
                }
            }
            rows.append([entry.phase, entry.metric, value, target, entry.durability])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = Swift.max(widths[i], cell.count) } }
        var lines: [String] = []
        for (r, row) in rows.enumerated() {
            var line = ""
            for (i, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                // Numbers right-aligned, text left-aligned.
                line += (i == 2 && r > 0 && !cell.hasPrefix("n/a") ? pad + cell : cell + pad)
                if i < row.count - 1 { line += "  " }
            }
            lines.append(line)
            if r == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        return lines.joined(separator: "\n")
    }

    /// `{"machine": …, "n": N, "rounds": R, "results": [ … ]}`.
    func json(machine: Machine, source: SourceState?, n: Int, rounds: Int, phaseSizes: [String: Int]) -> String {
        func number(_ x: Double) -> String {
            guard x.isFinite else { return "null" }
            if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
            return String(format: "%.6g", x)
        }
        var items: [String] = []
        for entry in entries where entry.missingReason == nil {
            items.append(
                "    {\"system\": \"eventlog\", \"phase\": \(jsonString(entry.phase)), \"metric\": \(jsonString(entry.metric)), "
                    + "\"median\": \(number(entry.median)), \"min\": \(number(entry.min)), \"max\": \(number(entry.max)), "
                    + "\"durability\": \(jsonString(entry.durability))}")
        }
        let missing = entries.filter { $0.missingReason != nil }.map {
            "    {\"phase\": \(jsonString($0.phase)), \"metric\": \(jsonString($0.metric)), \"reason\": \(jsonString($0.missingReason!))}"
        }
        let sizes = phaseSizes.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)): \($0.value)" }.joined(separator: ", ")
        return """
            {
              "machine": {"cores": \(machine.cores), "memory_bytes": \(machine.memoryBytes), "kernel": \(jsonString(machine.kernel))},
              "engine": \(source.map { "{\"git_head\": \(jsonString($0.head)), \"sources_modified\": \($0.modified)}" } ?? "null"),
              "n": \(n),
              "rounds": \(rounds),
              "phase_sizes": {\(sizes)},
              "results": [
            \(items.joined(separator: ",\n"))
              ],
              "not_measured": [
            \(missing.joined(separator: ",\n"))
              ]
            }

            """
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
