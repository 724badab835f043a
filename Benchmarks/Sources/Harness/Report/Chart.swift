import Foundation
import Histogram

/// The report's SVG chart, written as plain text: one panel per phase with
/// EventLog beside each peer on a log scale (median bar, min–max whisker),
/// A3's latency percentiles from the HDR histograms, and EventLog's
/// group-commit and open-time phases.
public struct Chart {
    let results: Results
    let title: String
    let subtitle: String

    public init(results: Results, title: String, subtitle: String) {
        self.results = results
        self.title = title
        self.subtitle = subtitle
    }

    static let panelWidth = 440.0
    static let panelHeight = 250.0
    static let columns = 3
    static let margin = 20.0
    static let header = 70.0
    static let eventlogColor = "#d9480f"
    static let peerColors: [SystemID: String] = [
        .sqlite: "#4c6ef5", .sqliteTuned: "#748ffc", .lmdb: "#2b8a3e", .rocksdb: "#5f3dc4", .rocksdbTuned: "#9775fa",
    ]

    static func color(_ system: SystemID) -> String { system == .eventlog ? eventlogColor : peerColors[system] ?? "#868e96" }

    /// The bar panels: phase, metric, title.
    static let panels: [(String, String, String)] = [
        ("A1", "events_per_s", "A1 append, durable at end: events/s"),
        ("A2", "events_per_s", "A2 append, batch of 100 durable: events/s"),
        ("A3", "p50_us", "A3 single durable append: p50 µs"),
        ("A3", "p99_us", "A3 single durable append: p99 µs"),
        ("R1", "events_per_s", "R1 full scan: events/s"),
        ("R2", "streams_per_s", "R2 random whole streams: streams/s"),
        ("R3", "reads_per_s", "R3 random point reads: reads/s"),
        ("A1", "disk_mb", "On-disk size after A1: MB"),
        ("process", "rss_growth_mb", "Peak RSS above the harness's own: MB"),
    ]

    public func svg() -> String {
        let systems = results.systems
        var panels: [String] = []
        for (phase, metric, label) in Self.panels {
            panels.append(barPanel(phase: phase, metric: metric, title: label, systems: systems))
        }
        panels.append(percentilePanel(systems: systems))
        if results.entry(.eventlog, "C1", "events_per_s") != nil { panels.append(groupCommitPanel()) }
        if results.entry(.eventlog, "open-clean", "open_ms") != nil || results.entry(.eventlog, "open-kill9", "open_ms") != nil {
            panels.append(openPanel())
        }
        let rows = (panels.count + Self.columns - 1) / Self.columns
        let width = Self.margin * 2 + Double(Self.columns) * Self.panelWidth
        let height = Self.header + Double(rows) * Self.panelHeight + Self.margin
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
            <rect width="100%" height="100%" fill="#ffffff"/>
            <text x="\(Self.margin)" y="30" font-size="20" font-weight="bold" fill="#212529">\(escape(title))</text>
            <text x="\(Self.margin)" y="52" font-size="12" fill="#495057">\(escape(subtitle))</text>

            """
        for (i, panel) in panels.enumerated() {
            let x = Self.margin + Double(i % Self.columns) * Self.panelWidth
            let y = Self.header + Double(i / Self.columns) * Self.panelHeight
            out += "<g transform=\"translate(\(fmt(x)),\(fmt(y)))\">\n\(panel)</g>\n"
        }
        out += "</svg>\n"
        return out
    }

    // MARK: - Panels

    func barPanel(phase: String, metric: String, title: String, systems: [SystemID]) -> String {
        let polarity = Polarity(metric: metric)
        var items: [(String, String, Results.Entry?)] = []  // label, color, entry
        for system in systems { items.append((system.name, Self.color(system), results.entry(system, phase, metric))) }
        return bars(title: title, items: items, better: polarity)
    }

    /// A3 latency by percentile (HDR histograms, every round merged).
    func percentilePanel(systems: [SystemID]) -> String {
        let w = Self.panelWidth - 20
        let left = 56.0, right = w - 10, top = 34.0, bottom = Self.panelHeight - 58
        var out = panelFrame(title: "A3 single durable append: latency by percentile (µs)")
        // x: percentile p at log10(1 / (1 - p)): 0, 90, 99, 99.9, 99.99.
        let nines = 4.0
        func px(_ p: Double) -> Double { left + (right - left) * min(log10(1 / max(1 - p / 100, 1e-4)), nines) / nines }
        let levels = (0...32).map { 100 * (1 - pow(10, -Double($0) / 8)) }
        var curves: [(SystemID, [(Double, Double)])] = []
        for system in systems {
            guard let histogram = results.latency["\(system.name)/A3"], histogram.totalCount > 0 else { continue }
            let points = levels.map { ($0, Double(histogram.valueAtPercentile($0)) / 1000) }
            curves.append((system, points))
        }
        let all = curves.flatMap { $0.1.map(\.1) }.filter { $0 > 0 }
        guard let lowest = all.min(), let highest = all.max() else {
            out += "<text x=\"\(fmt(w / 2))\" y=\"\(fmt(Self.panelHeight / 2))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#868e96\">no data</text>\n"
            return out
        }
        let axis = LogAxis(lowest: lowest, highest: highest, from: bottom, to: top)
        for tick in axis.ticks {
            let y = axis.x(tick)
            out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(right))\" y2=\"\(fmt(y))\" stroke=\"#e9ecef\"/>\n"
            out += "<text x=\"\(fmt(left - 4))\" y=\"\(fmt(y + 4))\" font-size=\"10\" text-anchor=\"end\" fill=\"#495057\">\(decadeLabel(tick))</text>\n"
        }
        for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%"].enumerated() {
            let x = left + (right - left) * Double(i) / nines
            out += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(top))\" x2=\"\(fmt(x))\" y2=\"\(fmt(bottom))\" stroke=\"#e9ecef\"/>\n"
            out += "<text x=\"\(fmt(x))\" y=\"\(fmt(bottom + 14))\" font-size=\"10\" text-anchor=\"middle\" fill=\"#495057\">\(label)</text>\n"
        }
        for (system, points) in curves {
            let path = points.enumerated().map { i, point in
                "\(i == 0 ? "M" : "L")\(fmt(px(point.0))) \(fmt(axis.x(max(point.1, lowest))))"
            }.joined()
            let width = system == .eventlog ? 2.6 : 1.6
            out += "<path d=\"\(path)\" stroke=\"\(Self.color(system))\" stroke-width=\"\(width)\" fill=\"none\"/>\n"
        }
        // Legend under the plot.
        var x = 10.0
        var y = bottom + 22
        for (system, _) in curves {
            let advance = 22 + Double(system.name.count) * 6
            if x + advance > w {
                x = 10
                y += 13
            }
            out += "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"10\" height=\"10\" fill=\"\(Self.color(system))\"/>\n"
            out += "<text x=\"\(fmt(x + 13))\" y=\"\(fmt(y + 9))\" font-size=\"10\" fill=\"#212529\">\(escape(system.name))</text>\n"
            x += advance
        }
        return out
    }

    /// The C phases: events/s by thread count and system (EventLog's p50/p99 beside).
    func groupCommitPanel() -> String {
        var items: [(String, String, Results.Entry?)] = []
        let threads = results.rows.map(\.phase).filter { $0.hasPrefix("C") && Int($0.dropFirst()) != nil }
        var seen = Set<String>()
        let systems = results.systems
        for phase in threads where seen.insert(phase).inserted {
            for system in systems {
                guard let entry = results.entry(system, phase, "events_per_s") else { continue }
                var label = "\(phase.dropFirst())t \(system.name)"
                if system == .eventlog, let p50 = results.entry(.eventlog, phase, "p50_us"),
                   let p99 = results.entry(.eventlog, phase, "p99_us") {
                    label += " p50 \(compact(p50.median)) p99 \(compact(p99.median)) µs"
                }
                items.append((label, Self.color(system), entry))
            }
        }
        return bars(title: "Concurrent appenders, 1 durable append per call: events/s", items: items, labelWidth: 220, better: .higherIsBetter)
    }

    /// EventLog's open times.
    func openPanel() -> String {
        var items: [(String, String, Results.Entry?)] = []
        items.append(("clean shutdown", Self.eventlogColor, results.entry(.eventlog, "open-clean", "open_ms")))
        items.append(("after kill -9", Self.eventlogColor, results.entry(.eventlog, "open-kill9", "open_ms")))
        return bars(title: "EventLog open time, \(compact(Double(results.n))) events: ms", items: items, labelWidth: 110, better: .lowerIsBetter)
    }

    func panelFrame(title: String) -> String {
        let w = Self.panelWidth - 20
        return """
            <rect x="0" y="0" width="\(fmt(w))" height="\(fmt(Self.panelHeight - 14))" fill="#f8f9fa" stroke="#dee2e6" rx="4"/>
            <text x="10" y="20" font-size="12" font-weight="bold" fill="#212529">\(escape(title))</text>

            """
    }
}

extension Chart {
    /// Horizontal bars on a log axis (median), with a min–max whisker when
    /// there were several rounds.
    func bars(title: String, items: [(String, String, Results.Entry?)], labelWidth: Double = 96, better: Polarity) -> String {
        let w = Self.panelWidth - 20
        let plotLeft = labelWidth
        let plotRight = w - 64
        let top = 34.0
        let bottom = Self.panelHeight - 40
        var out = panelFrame(title: title)
        let values = items.compactMap { $0.2 }.flatMap { [$0.min, $0.max] }.filter { $0 > 0 }
        guard let lowest = values.min(), let highest = values.max() else {
            out += "<text x=\"\(fmt(w / 2))\" y=\"\(fmt(Self.panelHeight / 2))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#868e96\">no data</text>\n"
            return out
        }
        let axis = LogAxis(lowest: lowest, highest: highest, from: plotLeft, to: plotRight)
        out += axis.gridlines(top: top, bottom: bottom)
        let slot = (bottom - top) / Double(max(items.count, 1))
        let barHeight = min(22, slot * 0.7)
        for (i, (label, color, entry)) in items.enumerated() {
            let y = top + Double(i) * slot + (slot - barHeight) / 2
            let bold = label == SystemID.eventlog.name ? " font-weight=\"bold\"" : ""
            out += "<text x=\"\(fmt(plotLeft - 6))\" y=\"\(fmt(y + barHeight * 0.72))\" font-size=\"11\" text-anchor=\"end\" fill=\"#212529\"\(bold)>\(escape(label))</text>\n"
            guard let entry else {
                out += "<text x=\"\(fmt(plotLeft + 4))\" y=\"\(fmt(y + barHeight * 0.72))\" font-size=\"11\" fill=\"#868e96\">n/a</text>\n"
                continue
            }
            let x1 = axis.x(entry.median)
            out += "<rect x=\"\(fmt(plotLeft))\" y=\"\(fmt(y))\" width=\"\(fmt(max(x1 - plotLeft, 1)))\" height=\"\(fmt(barHeight))\" fill=\"\(color)\" rx=\"2\"/>\n"
            if entry.values.count > 1 {
                let lo = axis.x(entry.min), hi = axis.x(entry.max), mid = y + barHeight / 2
                out += "<path d=\"M\(fmt(lo)) \(fmt(mid))H\(fmt(hi))M\(fmt(lo)) \(fmt(mid - 4))V\(fmt(mid + 4))M\(fmt(hi)) \(fmt(mid - 4))V\(fmt(mid + 4))\" stroke=\"#212529\" stroke-width=\"1.2\" fill=\"none\"/>\n"
            }
            let textX = max(x1, entry.values.count > 1 ? axis.x(entry.max) : x1) + 4
            out += "<text x=\"\(fmt(textX))\" y=\"\(fmt(y + barHeight * 0.72))\" font-size=\"11\" fill=\"#212529\"\(bold)>\(compact(entry.median))</text>\n"
        }
        out += axis.labels(y: bottom + 14)
        let direction = better == .higherIsBetter ? "higher is better" : "lower is better"
        out += "<text x=\"\(fmt((plotLeft + plotRight) / 2))\" y=\"\(fmt(bottom + 30))\" font-size=\"10\" text-anchor=\"middle\" fill=\"#868e96\">\(direction); log scale; bar = median, whisker = min–max</text>\n"
        return out
    }
}

/// A log10 axis over whole decades covering [lowest, highest], mapped to [from, to].
struct LogAxis {
    let low: Double
    let high: Double
    let from: Double
    let to: Double

    init(lowest: Double, highest: Double, from: Double, to: Double) {
        let low = floor(log10(lowest))
        var high = ceil(log10(highest))
        if high - low < 1 { high = low + 1 }
        // Room for the value printed right of the longest bar.
        if log10(highest) >= high - 0.02 { high += 1 }
        self.low = low
        self.high = high
        self.from = from
        self.to = to
    }

    func x(_ value: Double) -> Double {
        let v = log10(max(value, pow(10, low)))
        return from + (to - from) * (v - low) / (high - low)
    }

    var ticks: [Double] { (Int(low)...Int(high)).map { pow(10, Double($0)) } }

    func gridlines(top: Double, bottom: Double) -> String {
        var out = ""
        for decade in Int(low)..<Int(high) {
            for m in 1...9 {
                let value = Double(m) * pow(10, Double(decade))
                let x = self.x(value)
                out += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(top))\" x2=\"\(fmt(x))\" y2=\"\(fmt(bottom))\" stroke=\"\(m == 1 ? "#ced4da" : "#eef0f2")\"/>\n"
            }
        }
        let x = self.x(pow(10, high))
        out += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(top))\" x2=\"\(fmt(x))\" y2=\"\(fmt(bottom))\" stroke=\"#ced4da\"/>\n"
        return out
    }

    func labels(y: Double) -> String {
        ticks.map {
            "<text x=\"\(fmt(x($0)))\" y=\"\(fmt(y))\" font-size=\"10\" text-anchor=\"middle\" fill=\"#495057\">\(decadeLabel($0))</text>\n"
        }.joined()
    }
}

/// 0.1, 1, 10, 100, 1k, 10k, 100k, 1M, 10M, …
func decadeLabel(_ x: Double) -> String {
    let exponent = Int(log10(x).rounded())
    switch exponent {
    case ..<0: return String(format: "%g", x)
    case 0...2: return String(Int(x.rounded()))
    case 3...5: return "\(Int(x.rounded()) / 1000)k"
    case 6...8: return "\(Int(x.rounded()) / 1_000_000)M"
    default: return "\(Int(x.rounded()) / 1_000_000_000)G"
    }
}

func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
