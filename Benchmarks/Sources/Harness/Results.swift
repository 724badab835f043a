import Foundation
import Histogram

/// The figures of all rounds of one N, per system, phase and metric, in the
/// order they were first reported.
public struct Results: Sendable {
    public struct Key: Hashable, Sendable {
        public let system: SystemID
        public let phase: String
        public let metric: String
    }

    public struct Entry: Sendable {
        public let key: Key
        public var values: [Double]
    }

    public struct Missing: Sendable {
        public let system: SystemID
        public let phase: String
        public let metric: String
        public let reason: String
    }

    public let n: Int
    public private(set) var entries: [Entry] = []
    public private(set) var missing: [Missing] = []
    private var index: [Key: Int] = [:]
    /// A3 latencies per system (all rounds merged), and each system's
    /// concurrent appenders' per C phase: the report's percentile curves.
    public private(set) var latency: [String: Histogram<UInt64>] = [:]

    public init(n: Int) { self.n = n }

    public mutating func add(_ system: SystemID, _ phase: String, _ metric: String, _ value: Double) {
        let key = Key(system: system, phase: phase, metric: metric)
        if let i = index[key] {
            entries[i].values.append(value)
        } else {
            index[key] = entries.count
            entries.append(Entry(key: key, values: [value]))
        }
    }

    public mutating func notMeasured(_ system: SystemID, _ phase: String, _ metric: String, reason: String) {
        guard !missing.contains(where: { $0.system == system && $0.phase == phase && $0.metric == metric }) else { return }
        missing.append(Missing(system: system, phase: phase, metric: metric, reason: reason))
    }

    public func entry(_ system: SystemID, _ phase: String, _ metric: String) -> Entry? {
        index[Key(system: system, phase: phase, metric: metric)].map { entries[$0] }
    }

    private mutating func mergeLatency(_ name: String, _ histogram: Histogram<UInt64>) {
        if latency[name] == nil { latency[name] = LatencyMeasure.emptyHistogram() }
        latency[name]!.add(histogram)
    }

    /// Turns one round's outcome into figures.
    public mutating func record(_ outcome: RoundOutcome, sizes: PhaseSizes) {
        let s = outcome.system
        let x = outcome.suffix
        if let a1 = outcome.a1 {
            let n = Double(a1.events)
            add(s, "A1" + x, "events_per_s", n / a1.seconds)
            add(s, "A1" + x, "mb_per_s", Double(a1.logicalBytes) / 1e6 / a1.seconds)
            add(s, "A1" + x, "disk_mb", Double(outcome.diskBytes) / 1e6)
            add(s, "A1" + x, "disk_ratio", Double(outcome.diskBytes) / Double(a1.logicalBytes))
            add(s, "A1" + x, "finish_ms", a1.finishSeconds * 1000)
            add(s, "A1" + x, "allocs_per_event", Double(a1.allocations) / n)
        }
        if let r1 = outcome.r1 {
            add(s, "R1" + x, "events_per_s", Double(r1.read.events) / r1.seconds)
            add(s, "R1" + x, "mb_per_s", Double(r1.read.bytes) / 1e6 / r1.seconds)
            add(s, "R1" + x, "allocs_per_event", Double(r1.allocations) / Double(max(r1.read.events, 1)))
        }
        if let r2 = outcome.r2 {
            add(s, "R2" + x, "streams_per_s", Double(r2.operations) / r2.seconds)
            add(s, "R2" + x, "events_per_s", Double(r2.read.events) / r2.seconds)
            add(s, "R2" + x, "allocs_per_event", Double(r2.allocations) / Double(max(r2.read.events, 1)))
        } else if outcome.r1 != nil {
            notMeasured(s, "R2" + x, "streams_per_s", reason: "no stream reads yet (waits for the stream index)")
        }
        if let r3 = outcome.r3 {
            add(s, "R3" + x, "reads_per_s", Double(r3.operations) / r3.seconds)
            add(s, "R3" + x, "allocs_per_read", Double(r3.allocations) / Double(max(r3.operations, 1)))
        }
        if let a2 = outcome.a2 {
            add(s, "A2" + x, "events_per_s", Double(a2.events) / a2.seconds)
            add(s, "A2" + x, "mb_per_s", Double(a2.logicalBytes) / 1e6 / a2.seconds)
            add(s, "A2" + x, "allocs_per_event", Double(a2.allocations) / Double(max(a2.events, 1)))
        }
        if let a3 = outcome.a3, a3.count > 0 {
            add(s, "A3" + x, "p50_us", a3.microseconds(atPercentile: 50))
            add(s, "A3" + x, "p99_us", a3.microseconds(atPercentile: 99))
            add(s, "A3" + x, "p999_us", a3.microseconds(atPercentile: 99.9))
            add(s, "A3" + x, "max_us", Double(a3.histogram.max) / 1000)
            add(s, "A3" + x, "mean_us", a3.meanMicroseconds)
            add(s, "A3" + x, "allocs_per_append", Double(a3.allocations) / Double(a3.count))
            mergeLatency("\(s.name)/A3\(x)", a3.histogram)
        }
        for figure in outcome.extra { add(s, figure.phase, figure.metric, figure.value) }
        for (phase, measure) in outcome.concurrentLatency.sorted(by: { $0.key < $1.key }) {
            mergeLatency("\(s.name)/\(phase)", measure.histogram)
        }
        if let start = outcome.residentAtStart {
            for (phase, peak) in outcome.phaseMemory {
                add(s, phase, "rss_anon_growth_mb", (Double(peak.anonymous) - Double(start.anonymous)) / 1e6)
            }
        }
        if let rss = outcome.peakRSS { add(s, "process", "peak_rss_mb", Double(rss) / 1e6) }
        if let growth = outcome.rssGrowth { add(s, "process", "rss_growth_mb", Double(growth) / 1e6) }
        if let peak = outcome.residentPeak {
            add(s, "process", "peak_rss_anon_mb", Double(peak.anonymous) / 1e6)
            add(s, "process", "peak_rss_file_mb", Double(peak.file) / 1e6)
            add(s, "process", "peak_rss_shmem_mb", Double(peak.shmem) / 1e6)
            if let start = outcome.residentAtStart {
                add(s, "process", "rss_anon_growth_mb", (Double(peak.anonymous) - Double(start.anonymous)) / 1e6)
            }
        }
    }

    /// Adds the figures of a streams-scale outcome.
    public mutating func record(_ outcome: StreamsScaleOutcome) {
        for figure in outcome.figures { add(outcome.system, figure.phase, figure.metric, figure.value) }
    }

    /// True when the streams-scale group reported anything.
    public var hasStreamsScale: Bool {
        entries.contains { $0.key.phase.hasPrefix("streams-") } || missing.contains { $0.phase.hasPrefix("streams-") }
    }

    /// Systems that reported anything, in the canonical order.
    public var systems: [SystemID] { Array(Set(entries.map(\.key.system)).union(missing.map(\.system))).sorted() }

    /// (phase, metric) rows in first-reported order, the common phases first.
    public var rows: [(phase: String, metric: String)] {
        var seen = Set<String>()
        var rows: [(String, String)] = []
        for key in entries.map(\.key) + missing.map({ Key(system: $0.system, phase: $0.phase, metric: $0.metric) }) {
            let id = key.phase + "/" + key.metric
            if seen.insert(id).inserted { rows.append((key.phase, key.metric)) }
        }
        return rows.sorted { Self.phaseOrder($0.0) < Self.phaseOrder($1.0) }
    }

    static let phaseRank: [String] = [
        "A1", "R1", "R2", "R3", "A2", "A3", "process", "A1-lz4", "R1-lz4", "R2-lz4", "R3-lz4",
        "A1-enc", "R1-enc", "R2-enc", "R3-enc",
        "C1", "C2", "C4", "C8", "open-clean", "open-kill9",
    ]

    static func phaseOrder(_ phase: String) -> Int {
        if let i = phaseRank.firstIndex(of: phase) { return i }
        if phase.hasPrefix("C"), let t = Int(phase.dropFirst()) { return 100 + t }
        if let streams = StreamsScale.streamCount(ofPhase: phase) { return 1_000_000 + streams }
        return 1000
    }
}

extension Results.Entry {
    public var median: Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    public var min: Double { values.min()! }
    public var max: Double { values.max()! }
}

/// Which way is better for a metric.
public enum Polarity: Sendable {
    case higherIsBetter, lowerIsBetter, neutral

    public init(metric: String) {
        if metric.hasSuffix("_per_s") {
            self = .higherIsBetter
        } else if metric.hasSuffix("_us") || metric.hasSuffix("_ms") || metric.hasPrefix("disk_")
            || metric.hasPrefix("allocs_") || metric.contains("rss_")
        {
            self = .lowerIsBetter
        } else {
            self = .neutral
        }
    }

    public var arrow: String {
        switch self {
        case .higherIsBetter: return "↑"
        case .lowerIsBetter: return "↓"
        case .neutral: return ""
        }
    }
}

/// A number in a few characters: 4.85M, 156k, 15.6k, 9383, 95.6, 0.040.
public func compact(_ x: Double) -> String {
    guard x.isFinite else { return "\(x)" }
    let a = abs(x)
    let sign = x < 0 ? "-" : ""
    if a >= 1e9 { return sign + String(format: "%.3gG", a / 1e9) }
    if a >= 1e6 { return sign + String(format: a >= 1e8 ? "%.0fM" : a >= 1e7 ? "%.1fM" : "%.2fM", a / 1e6) }
    if a >= 1e5 { return sign + String(format: "%.0fk", a / 1e3) }
    if a >= 1e4 { return sign + String(format: "%.1fk", a / 1e3) }
    if a >= 1000 { return sign + String(format: "%.0f", a) }
    if a >= 100 { return sign + String(format: "%.0f", a) }
    if a >= 10 { return sign + String(format: "%.1f", a) }
    if a >= 1 { return sign + String(format: "%.2f", a) }
    if a == 0 { return "0" }
    return sign + String(format: "%.3f", a)
}

/// A ratio: ×12.3, ×0.85.
public func ratioText(_ r: Double) -> String {
    guard r.isFinite else { return "–" }
    if r >= 100 { return String(format: "×%.0f", r) }
    if r >= 10 { return String(format: "×%.1f", r) }
    return String(format: "×%.2f", r)
}

/// What each phase is, for the table's legend.
public let phaseDescriptions: [(String, String)] = [
    ("A1", "append N events in batches of 100 into a fresh store, durable at the end (sync + close timed)"),
    ("R1", "reopen store A, scan every event in position order (count, bytes and fold checked)"),
    ("R2", "1,000 random whole streams (~100 events each), versions in order (checked per stream)"),
    ("R3", "100,000 random point reads by position (fold checked)"),
    ("A2", "fresh store B: 100,000 events in batches of 100, durable per batch"),
    ("A3", "2,000 single-event durable appends on store B: latency of each (HDR histogram)"),
    ("process", "peak_rss_mb: peak RSS during the system's phases (VmHWM, reset before each system; includes the harness's own ~30–50 MB); rss_growth_mb: that peak minus the RSS when the system's round began; peak_rss_anon_mb, peak_rss_file_mb, peak_rss_shmem_mb: the peak of each kind of resident memory (RssAnon: heap and anonymous maps, only swap frees them; RssFile: mapped file pages, reclaimable page cache; RssShmem), sampled every 10 ms from /proc/self/status, the harness's own included; rss_anon_growth_mb: the anonymous peak minus RssAnon when the system's round began; the same metric in a phase's row: the anonymous peak during that phase (A1 with its sync and close, R1 with the reopen before it, R3 with the close after it) minus RssAnon when the round began"),
    ("A1-lz4…R3-lz4", "EventLog only: A1, R1, R2, R3 with LZ4-compressed batches (every batch of a segment but its first in units of LogOptions.dictionaryUnitBytes, 1 KiB by default, compressed against the segment's dictionary, Format.md §5.4; the first in units of compressionUnitBytes, 12 KiB: R2 and R3 decompress the one unit holding each event)"),
    ("A1-enc…R3-enc", "EventLog only: A1, R1, R2, R3 of an encrypted log (LogOptions.encryption: AES-256-GCM, one data key; R2 and R3 through the cache of opened batches)"),
    ("C1…C8", "1–8 threads each making single-event durable appends to one fresh store, 2,000 per thread (events/s, p50/p99). EventLog: one log, .always (group commit: one fdatasync covers every append written before it started; appends_per_sync and sync_us: the appends each segment fdatasync covered and its duration, means). SQLite: a connection per thread, WAL, synchronous=FULL, BEGIN IMMEDIATE + one INSERT + COMMIT per event, a busy handler retrying every 50 µs. RocksDB: one DB, one rocksdb_write (record + stream index entry) per event with sync=true; RocksDB groups concurrent writers into one WAL sync. LMDB: one write transaction per event (they run one at a time), default sync per commit"),
    ("open-clean", "EventLog only: Log.open of store A after A1's clean close"),
    ("open-kill9", "EventLog only: Log.open after kill -9 of a child writer appending with .always, once it acknowledged N events"),
]

extension Results {
    /// EventLog's median ÷ a peer's, for one row.
    public func ratio(_ peer: SystemID, _ phase: String, _ metric: String) -> Double? {
        guard let mine = entry(.eventlog, phase, metric)?.median, let theirs = entry(peer, phase, metric)?.median,
              theirs != 0
        else { return nil }
        return mine / theirs
    }

    /// A cell: median [min–max].
    func cell(_ system: SystemID, _ phase: String, _ metric: String) -> String {
        if let entry = entry(system, phase, metric) {
            var text = compact(entry.median)
            if entry.values.count > 1 { text += " [\(compact(entry.min))–\(compact(entry.max))]" }
            return text
        }
        if missing.contains(where: { $0.system == system && $0.phase == phase && $0.metric == metric }) { return "n/a" }
        return ""
    }

    /// The table's rows: phase, metric (with its better direction), then per
    /// system median [min–max], and for each peer EventLog's ratio to it.
    func tableRows() -> [[String]] {
        let systems = self.systems
        var header = ["phase", "metric"]
        for system in systems {
            header.append(system.name)
            if system.isPeer && systems.contains(.eventlog) { header.append("EL÷\(system.name)") }
        }
        var rows = [header]
        for (phase, metric) in self.rows {
            var row = [phase, "\(metric) \(Polarity(metric: metric).arrow)".trimmingCharacters(in: .whitespaces)]
            for system in systems {
                row.append(cell(system, phase, metric))
                if system.isPeer && systems.contains(.eventlog) {
                    row.append(ratio(system, phase, metric).map(ratioText) ?? "")
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// The plain-text table.
    public func table() -> String {
        let rows = tableRows()
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = Swift.max(widths[i], cell.count) } }
        var lines: [String] = []
        for (r, row) in rows.enumerated() {
            var line = ""
            for (i, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                line += (i >= 2 && r > 0 ? pad + cell : cell + pad)
                if i < row.count - 1 { line += "  " }
            }
            lines.append(line)
            if r == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        return lines.joined(separator: "\n")
    }

    /// The headline figures (README): per phase its main metric; EventLog's
    /// median, then each peer's median with EventLog's ratio to it. The best
    /// median of a row is in bold (the first of equal ones; none in a row
    /// whose metric has no better direction).
    public static let headline: [(String, String, String)] = [
        ("A1", "events_per_s", "A1 append, batches of 100, durable at end [events/s]"),
        ("A1", "disk_ratio", "A1 on-disk size ÷ logical bytes"),
        ("A2", "events_per_s", "A2 append, batches of 100, durable each [events/s]"),
        ("A3", "p50_us", "A3 single durable append p50 [µs]"),
        ("A3", "p99_us", "A3 single durable append p99 [µs]"),
        ("R1", "events_per_s", "R1 full scan [events/s]"),
        ("R2", "streams_per_s", "R2 random whole streams [streams/s]"),
        ("R3", "reads_per_s", "R3 random point reads [reads/s]"),
        ("process", "rss_growth_mb", "peak RSS above the harness's own [MB]"),
    ]

    public func headlineMarkdown() -> String {
        let systems = self.systems
        var lines = ["| phase | " + systems.map(\.name).joined(separator: " | ") + " |"]
        lines.append("|---|" + systems.map { _ in "--:" }.joined(separator: "|") + "|")
        for (phase, metric, label) in Self.headline {
            let polarity = Polarity(metric: metric)
            var row = "| \(label) \(polarity.arrow) |"
            let best = bestSystem(phase, metric, polarity)
            for system in systems {
                guard let entry = entry(system, phase, metric) else {
                    row += missing.contains { $0.system == system && $0.phase == phase } ? " n/a |" : " |"
                    continue
                }
                var cell = system == best ? "**\(compact(entry.median))**" : compact(entry.median)
                if system.isPeer, let r = ratio(system, phase, metric) { cell += " (\(ratioText(r)))" }
                row += " \(cell) |"
            }
            lines.append(row)
        }
        return lines.joined(separator: "\n")
    }

    /// The system with the best median of a row (the first of equal ones);
    /// nil when the metric has no better direction or no system has it.
    func bestSystem(_ phase: String, _ metric: String, _ polarity: Polarity) -> SystemID? {
        guard polarity != .neutral else { return nil }
        var best: (system: SystemID, median: Double)?
        for system in systems {
            guard let median = entry(system, phase, metric)?.median else { continue }
            if let current = best, polarity == .higherIsBetter ? median <= current.median : median >= current.median { continue }
            best = (system, median)
        }
        return best?.system
    }

    /// The same table in Markdown.
    public func markdownTable() -> String {
        let rows = tableRows()
        var lines = ["| " + rows[0].joined(separator: " | ") + " |"]
        lines.append("|" + rows[0].enumerated().map { $0.offset < 2 ? "---" : "--:" }.joined(separator: "|") + "|")
        for row in rows.dropFirst() {
            lines.append("| " + row.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}
