import Foundation

extension Run {
    /// The heading lines of the table: what ran, where, on which source.
    public var heading: String {
        let sizes = options.sizes
        let last = results.last!
        if options.streamsScale.only {
            return """
                EventLog and peers, streams-scale group only: S=\(options.streamsScale.counts.map { compact(Double($0)) }.joined(separator: ", ")) streams, \
                \(options.rounds) round\(options.rounds == 1 ? "" : "s")
                machine: \(machine.summary)
                engine: \(source?.description ?? "unknown source state"); harness RSS before any store: \(String(format: "%.1f", harnessRSSMB)) MB (anonymous \(String(format: "%.1f", harnessAnonymousMB)) MB)
                """
        }
        return """
            EventLog and peers, standard workload (Benchmarks/WORKLOAD.md): N=\(results.map { compact(Double($0.n)) }.joined(separator: ", ")), \
            A2 \(sizes.a2) events, A3 \(sizes.a3) appends, R2 \(sizes.r2) streams, R3 \(sizes.r3) reads, \
            \(options.rounds) round\(options.rounds == 1 ? "" : "s") (interleaved), N shown: \(compact(Double(last.n)))
            machine: \(machine.summary)
            engine: \(source?.description ?? "unknown source state"); harness RSS before any store: \(String(format: "%.1f", harnessRSSMB)) MB (anonymous \(String(format: "%.1f", harnessAnonymousMB)) MB)
            """
    }

    /// The text printed at the end of a run.
    public func textReport() -> String {
        var out = heading + "\n\n"
        for (i, results) in results.enumerated() {
            if self.results.count > 1 { out += "N = \(results.n)\n" }
            out += results.table() + "\n"
            if i < self.results.count - 1 { out += "\n" }
        }
        out += "\ncells: median [min–max] over rounds; EL÷peer: EventLog's median ÷ the peer's (↑: higher is better, ↓: lower is better)\n"
        if results.count > 1 { out += "\n" + scaleTable(markdown: false) + "\n" }
        if results.last!.hasStreamsScale { out += "\n" + streamsScaleLegend(markdown: false) + "\n" }
        let missing = results.last!.missing
        for m in missing where m.system == .eventlog {
            out += "n/a: \(m.system.name) \(m.phase): \(m.reason)\n"
        }
        return out
    }

    /// What the streams-scale group did, and each of its metrics.
    public func streamsScaleLegend(markdown: Bool) -> String {
        let sizes = options.streamsScale
        var lines = [
            "streams-S (--streams-scale): a fresh store per system with S streams named aggregate-<10 digits>, 1-3 events "
                + "each (~100-byte payloads, \(compact(Double(2 * (sizes.counts.last ?? 0)))) events at S=\(compact(Double(sizes.counts.last ?? 0)))), "
                + "loaded in batches of 100 with A1's durability; then \(sizes.reads) random stream reads after the first, "
                + "\(sizes.appends) events appended with exact expected versions (batches of 100, no sync per batch)"
                + (sizes.killEvents > 0 ? "; EventLog's killed writer acknowledged \(sizes.killEvents) events" : ""),
        ]
        for (metric, what) in StreamsScale.metricDescriptions {
            lines.append(markdown ? "- `\(metric)`: \(what)" : "  \(metric): \(what)")
        }
        return lines.joined(separator: "\n")
    }

    /// How cost grows with N (`--scale`): per system and phase, the cost per
    /// operation at each N and its growth from the smallest N to the largest.
    public func scaleTable(markdown: Bool) -> String {
        guard results.count > 1 else { return "" }
        let metrics: [(String, String, String)] = [
            ("A1", "events_per_s", "µs/event"), ("R1", "events_per_s", "µs/event"), ("R2", "events_per_s", "µs/event"),
            ("R3", "reads_per_s", "µs/read"), ("A1", "disk_mb", "bytes/event"), ("open-clean", "open_ms", "ms"),
            ("open-kill9", "open_ms", "ms"), ("process", "peak_rss_mb", "MB"),
        ]
        var header = ["phase", "cost", "system"] + results.map { "N=\(compact(Double($0.n)))" }
        header.append("growth \(compact(Double(results.first!.n)))→\(compact(Double(results.last!.n)))")
        var rows = [header]
        for (phase, metric, unit) in metrics {
            for system in options.systems {
                var costs: [Double?] = []
                for results in results {
                    guard let entry = results.entry(system, phase, metric) else { costs.append(nil); continue }
                    switch metric {
                    case let m where m.hasSuffix("_per_s"): costs.append(1e6 / entry.median)
                    case "disk_mb": costs.append(entry.median * 1e6 / Double(results.n))
                    default: costs.append(entry.median)
                    }
                }
                guard costs.contains(where: { $0 != nil }) else { continue }
                var row = [phase, unit, system.name] + costs.map { $0.map(compact) ?? "" }
                if let first = costs.first ?? nil, let last = costs.last ?? nil, first > 0 {
                    row.append(ratioText(last / first))
                } else {
                    row.append("")
                }
                rows.append(row)
            }
        }
        if markdown {
            var lines = ["| " + header.joined(separator: " | ") + " |"]
            lines.append("|" + header.enumerated().map { $0.offset < 3 ? "---" : "--:" }.joined(separator: "|") + "|")
            for row in rows.dropFirst() { lines.append("| " + row.joined(separator: " | ") + " |") }
            return lines.joined(separator: "\n")
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.enumerated().map { r, row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i >= 3 && r > 0 ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// summary.md of `--report`.
    public func markdownSummary(chartFile: String = "chart.svg") -> String {
        let last = results.last!
        let sizes = options.sizes
        var out = """
            # EventLog beside SQLite, LMDB and RocksDB

            ![EventLog beside the peers, per phase (log scale)](\(chartFile))

            The standard workload of `Benchmarks/WORKLOAD.md` (order events of ~223 bytes, the byte-exact
            generator), every system in one process, rounds interleaved. N = \(last.n) events,
            A2 \(sizes.a2) events, A3 \(sizes.a3) appends, R2 \(sizes.r2) streams, R3 \(sizes.r3) reads;
            \(options.rounds) round\(options.rounds == 1 ? "" : "s"). Cells: median [min–max] over rounds;
            `EL÷peer` is EventLog's median divided by the peer's (↑ higher is better, ↓ lower is better).

            - Machine: \(machine.summary)
            - Engine: \(source?.description ?? "unknown source state")
            - Command: `\(command)`
            - Took \(Int(seconds.rounded())) s; the harness itself holds \(String(format: "%.1f", harnessRSSMB)) MB of every peak RSS \
            (\(String(format: "%.1f", harnessAnonymousMB)) MB of it anonymous); \
            load average after each system's round: \(loadAverages.map { String(format: "%.1f", $0) }.joined(separator: ", ")) \
            (the machine has \(machine.cores) cores; above ~1 something else was running too).

            Headline (medians; in brackets EventLog's median ÷ the peer's):

            \(last.headlineMarkdown())

            Every figure:

            \(last.markdownTable())

            """
        let missing = last.missing
        if !missing.isEmpty {
            out += "\n"
            for m in missing { out += "- n/a: \(m.system.name) \(m.phase): \(m.reason)\n" }
        }
        if results.count > 1 {
            out += "\n## How cost grows with N\n\n" + scaleTable(markdown: true) + "\n"
        }
        if last.hasStreamsScale {
            out += "\n## Many streams (streams-S)\n\n" + streamsScaleLegend(markdown: true) + "\n"
        }
        out += "\n## Phases\n\n| phase | what |\n|---|---|\n"
        for (phase, what) in phaseDescriptions { out += "| \(phase) | \(what) |\n" }
        out += "\n## Systems and durability\n\n| system | settings | A1 | A2, A3 |\n|---|---|---|---|\n"
        for system in options.systems {
            out += "| \(system.name) | \(system.settings) | \(system.bulkDurability) | \(system.durableDurability) |\n"
        }
        out += """

            Every read phase is checked against the generator (counts, logical bytes and the fold of
            length, first and last payload byte), so a fast wrong answer fails the run. Latency
            percentiles come from HDR histograms (3 significant digits).

            """
        return out
    }

    /// Writes chart.svg and summary.md into `directory`.
    public func writeReport(to directory: String) throws {
        try createDirectory(directory)
        let last = results.last!
        let chart = Chart(
            results: last,
            title: "EventLog beside SQLite, LMDB and RocksDB: standard workload, N = \(compact(Double(last.n)))",
            subtitle: "\(machine.cores) cores, \(machine.memoryBytes >> 30) GiB, \(machine.kernel); median of \(options.rounds) interleaved round\(options.rounds == 1 ? "" : "s"); \(source?.description ?? "")")
        do {
            try chart.svg().write(toFile: directory + "/chart.svg", atomically: true, encoding: .utf8)
            try markdownSummary().write(toFile: directory + "/summary.md", atomically: true, encoding: .utf8)
        } catch {
            throw BenchError("cannot write the report to \(directory): \(error)")
        }
    }
}
