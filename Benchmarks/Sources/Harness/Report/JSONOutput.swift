import Foundation

extension Run {
    /// The JSON document of `--json`:
    ///
    ///     {"machine": {...}, "n": N, "rounds": R,
    ///      "results": [{"system", "phase", "metric", "median", "min", "max"}, ...], ...}
    ///
    /// `results` holds the figures of the largest N; extra top-level keys
    /// carry the rest: `ratios` (EventLog ÷ peer), `not_measured`,
    /// `durability`, `phase_sizes`, `engine`, and under `--scale` a `scale`
    /// list with every N's results.
    public func jsonObject() -> [String: Any] {
        let last = results.last!
        var object: [String: Any] = [
            "machine": [
                "cores": machine.cores, "memory_bytes": machine.memoryBytes, "kernel": machine.kernel, "cpu": machine.cpu,
            ],
            "n": last.n,
            "rounds": options.rounds,
            "results": Self.resultItems(last),
            "ratios": Self.ratioItems(last),
            "not_measured": last.missing.map {
                ["system": $0.system.name, "phase": $0.phase, "metric": $0.metric, "reason": $0.reason]
            },
            "systems": options.systems.map(\.name),
            "durability": Dictionary(uniqueKeysWithValues: options.systems.map {
                ($0.name, ["A1": $0.bulkDurability, "A2": $0.durableDurability, "A3": $0.durableDurability, "settings": $0.settings])
            }),
            "phase_sizes": [
                "a2_events": options.sizes.a2, "a3_appends": options.sizes.a3, "r2_streams": options.sizes.r2,
                "r3_reads": options.sizes.r3, "threads": options.sizes.threads,
                "appends_per_thread": options.sizes.appendsPerThread,
                "crash_events": options.sizes(n: last.n).crashEvents,
            ],
            "harness_rss_mb": harnessRSSMB,
            "harness_rss_anon_mb": harnessAnonymousMB,
            "load_averages": loadAverages,
            "command": command,
            "seconds": seconds,
        ]
        if let source { object["engine"] = ["git_head": source.head, "sources_modified": source.modified] }
        if !options.streamsScale.counts.isEmpty {
            let sizes = options.streamsScale
            object["streams_scale"] = [
                "counts": sizes.counts, "phases": sizes.counts.map(StreamsScale.phaseName), "reads": sizes.reads,
                "appends": sizes.appends, "kill_events": sizes.killEvents, "only": sizes.only,
                "metrics": Dictionary(uniqueKeysWithValues: StreamsScale.metricDescriptions.map { ($0.0, $0.1) }),
            ] as [String: Any]
        }
        if results.count > 1 {
            object["scale"] = results.map { ["n": $0.n, "results": Self.resultItems($0)] }
        }
        return object
    }

    static func resultItems(_ results: Results) -> [[String: Any]] {
        results.entries.map { entry in
            [
                "system": entry.key.system.name, "phase": entry.key.phase, "metric": entry.key.metric,
                "median": finite(entry.median), "min": finite(entry.min), "max": finite(entry.max),
            ]
        }
    }

    static func ratioItems(_ results: Results) -> [[String: Any]] {
        var items: [[String: Any]] = []
        for (phase, metric) in results.rows {
            for peer in results.systems where peer.isPeer {
                if let r = results.ratio(peer, phase, metric) {
                    items.append(["phase": phase, "metric": metric, "peer": peer.name, "eventlog_over_peer": finite(r)])
                }
            }
        }
        return items
    }

    private static func finite(_ x: Double) -> Any { x.isFinite ? x : NSNull() }

    public func jsonData() throws -> Data {
        try JSONSerialization.data(withJSONObject: jsonObject(), options: [.prettyPrinted, .sortedKeys])
    }
}
