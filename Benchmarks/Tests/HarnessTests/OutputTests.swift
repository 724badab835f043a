import Foundation
#if canImport(Glibc)
import Glibc
#endif
import FoundationXML
import Harness
import Testing

/// A tiny run of two systems, two rounds, through the same entry point as
/// `eventlog-bench`; its JSON parsed back and its schema checked, its
/// report rendered.
@Suite(.serialized) struct OutputTests {
    static let run: Result<Run, Error> = Result {
        let options = try Options.parse([
            "--quick", "--n", "2000", "--rounds", "2", "--a2", "300", "--a3", "12", "--r2", "20", "--r3", "200",
            "--appends-per-thread", "5", "--threads", "1,2", "--skip", "open", "--systems", "eventlog,sqlite",
        ])
        let directory = try makeTemporaryDirectory(prefix: "harness-output-test")
        defer { removeTree(directory) }
        var run = try runBenchmarks(options, directory: directory, executable: nil)
        run.command = "eventlog-bench --quick …"
        return run
    }

    @Test func optionsParse() throws {
        let quick = try Options.parse(["--quick"])
        #expect(quick.systems == [.eventlog, .sqlite])
        #expect(quick.ns == [100_000])
        #expect(quick.rounds == 1)
        let scale = try Options.parse(["--scale", "--systems", "lmdb,eventlog"])
        #expect(scale.ns == [100_000, 1_000_000, 10_000_000])
        #expect(scale.systems == [.eventlog, .lmdb])
        let all = try Options.parse([])
        #expect(all.systems == SystemID.allCases)
        #expect(all.rounds == 3)
        #expect(throws: UsageError.self) { try Options.parse(["--systems", "postgres"]) }
        #expect(throws: UsageError.self) { try Options.parse(["--quick", "--scale"]) }
    }

    @Test func jsonHasTheDocumentedSchema() throws {
        let run = try Self.run.get()
        let object = try #require(try JSONSerialization.jsonObject(with: try run.jsonData()) as? [String: Any])
        let machine = try #require(object["machine"] as? [String: Any])
        #expect((machine["cores"] as? Int ?? 0) >= 1)
        #expect(object["n"] as? Int == 2000)
        #expect(object["rounds"] as? Int == 2)
        let results = try #require(object["results"] as? [[String: Any]])
        #expect(!results.isEmpty)
        let systems = Set(SystemID.allCases.map(\.name))
        var seen = Set<String>()
        for item in results {
            #expect(Set(item.keys) == ["system", "phase", "metric", "median", "min", "max"])
            let system = try #require(item["system"] as? String)
            let phase = try #require(item["phase"] as? String)
            let metric = try #require(item["metric"] as? String)
            #expect(systems.contains(system))
            let median = try #require(item["median"] as? Double)
            let low = try #require(item["min"] as? Double)
            let high = try #require(item["max"] as? Double)
            #expect(low <= median && median <= high, "\(system) \(phase) \(metric)")
            seen.insert("\(system) \(phase) \(metric)")
        }
        for system in ["eventlog", "sqlite"] {
            for figure in [
                "A1 events_per_s", "A1 disk_mb", "R1 events_per_s", "R2 streams_per_s", "R3 reads_per_s",
                "A2 events_per_s", "A3 p50_us", "A3 p99_us", "process peak_rss_mb", "process peak_rss_anon_mb",
                "process peak_rss_file_mb", "process peak_rss_shmem_mb", "process rss_anon_growth_mb",
                "A1 rss_anon_growth_mb", "R1 rss_anon_growth_mb", "R2 rss_anon_growth_mb", "R3 rss_anon_growth_mb",
                "A2 rss_anon_growth_mb", "A3 rss_anon_growth_mb", "C2 rss_anon_growth_mb",
            ] {
                #expect(seen.contains("\(system) \(figure)"), "missing \(system) \(figure)")
            }
        }
        for figure in ["A1-lz4 events_per_s", "C1 events_per_s", "C2 p99_us", "open-clean open_ms"] {
            #expect(seen.contains("eventlog \(figure)") == (figure != "open-clean open_ms"), "\(figure)")
        }
        let ratios = try #require(object["ratios"] as? [[String: Any]])
        #expect(ratios.contains { $0["phase"] as? String == "A1" && $0["peer"] as? String == "sqlite" })
    }

    /// The allocation-free reader of /proc/self/status agrees with the
    /// plain one, and the sampler keeps peaks: 64 MB touched while it runs
    /// show in its anonymous peak after they are freed.
    @Test func residentMemoryIsReadAndSampledByKind() throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 16384, alignment: 16)
        defer { buffer.deallocate() }
        let memory = ResidentMemory.read(into: buffer, capacity: 16384)
        #expect(memory.anonymous > 0 && memory.file > 0)
        let plain = anonymousRSSBytes()
        #expect(Double(memory.anonymous) > Double(plain) * 0.8 && Double(memory.anonymous) < Double(plain) * 1.25)

        let sampler = MemorySampler()
        sampler.begin()
        let size = 64 << 20
        Self.touchAndFree(bytes: size)
        let peak = sampler.end()
        #expect(peak.anonymous >= sampler.start.anonymous + UInt64(size) * 9 / 10, "\(peak) from \(sampler.start)")
    }

    /// Touches `bytes` of fresh heap, holds them long enough for the sampler
    /// (every 10 ms) to see them, then frees them and trims the heap.
    static func touchAndFree(bytes: Int) {
        let block = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        block.initializeMemory(as: UInt8.self, repeating: 1, count: bytes)
        usleep(50_000)
        block.deallocate()
        trimHeap()
    }

    /// Each phase's peaks are its own: 64 MB touched and freed within the
    /// first phase show in its anonymous peak, not in the next phase's.
    @Test func phasesGetTheirOwnPeaks() throws {
        let sampler = MemorySampler()
        sampler.begin()
        let size = 64 << 20
        Self.touchAndFree(bytes: size)
        let first = sampler.endPhase()
        usleep(30_000)
        let second = sampler.endPhase()
        let whole = sampler.end()
        #expect(first.anonymous >= sampler.start.anonymous + UInt64(size) * 9 / 10, "\(first) from \(sampler.start)")
        #expect(second.anonymous + UInt64(size) / 2 < first.anonymous, "\(second) after \(first)")
        #expect(whole.anonymous >= first.anonymous)
    }

    /// The headline table bolds each row's best median by the metric's
    /// direction (a peer's too), not EventLog's by default.
    @Test func theHeadlineBoldsTheBestOfEachRow() {
        var results = Results(n: 1000)
        results.add(.eventlog, "A1", "events_per_s", 2_000_000)
        results.add(.lmdb, "A1", "events_per_s", 200_000)
        results.add(.eventlog, "A1", "disk_ratio", 1.10)
        results.add(.lmdb, "A1", "disk_ratio", 0.65)
        results.add(.eventlog, "R3", "reads_per_s", 900_000)
        results.add(.lmdb, "R3", "reads_per_s", 950_000)
        let lines = results.headlineMarkdown().split(separator: "\n").map(String.init)
        func row(_ label: String) -> String { lines.first { $0.hasPrefix("| \(label)") } ?? "" }
        #expect(row("A1 append").contains("**2.00M**") && !row("A1 append").contains("**200k**"), "\(row("A1 append"))")
        #expect(row("A1 on-disk").contains("**0.650**") && !row("A1 on-disk").contains("**1.10**"), "\(row("A1 on-disk"))")
        #expect(row("R3").contains("**950k**") && !row("R3").contains("**900k**"), "\(row("R3"))")
    }

    @Test func tableShowsEverySystemAndRatio() throws {
        let run = try Self.run.get()
        let text = run.textReport()
        #expect(text.contains("EL÷sqlite"))
        for phase in ["A1", "R1", "R2", "R3", "A2", "A3", "C2"] { #expect(text.contains("\n\(phase) ")) }
    }

    @Test func reportIsWellFormed() throws {
        let run = try Self.run.get()
        let directory = try makeTemporaryDirectory(prefix: "harness-report-test")
        defer { removeTree(directory) }
        try run.writeReport(to: directory)
        let svg = try Data(contentsOf: URL(fileURLWithPath: directory + "/chart.svg"))
        let parser = XMLParser(data: svg)
        #expect(parser.parse(), "chart.svg is not well-formed XML: \(String(describing: parser.parserError))")
        let summary = try String(contentsOfFile: directory + "/summary.md", encoding: .utf8)
        #expect(summary.contains("![EventLog beside the peers"))
        #expect(summary.contains("| A1 | events_per_s ↑ |"))
    }
}
