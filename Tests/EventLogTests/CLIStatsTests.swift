import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog stats`, run as a real child process.
@Suite struct CLIStatsTests {
    static func json(_ directory: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let output = try CLIProcess.run(["stats", directory, "--json"])
        #expect(output.status == 0, "\(output)", sourceLocation: sourceLocation)
        #expect(output.lines.count == 1, "one object: \(output.stdout)", sourceLocation: sourceLocation)
        return try #require(CLITests.object(output.stdout), "not JSON: \(output.stdout)", sourceLocation: sourceLocation)
    }

    /// (min, max, count) of a histogram in the JSON object.
    static func buckets(_ object: [String: Any], _ key: String) -> [[Int]] {
        ((object[key] as? [[String: Any]]) ?? []).map { [$0["min"] as? Int ?? -1, $0["max"] as? Int ?? -1, $0["count"] as? Int ?? -1] }
    }

    /// The text matches `Tests/Golden/stats.txt`, with the bytes on disk
    /// (what the file system allocated: it differs between file systems)
    /// first checked against `Log.inspect` and then replaced by `<bytes on disk>`.
    @Test func textMatchesTheGoldenFile() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        let output = try CLIProcess.run(["stats", dir.path])
        #expect(output.status == 0, "\(output)")
        #expect(output.stderr.isEmpty)
        let allocated = try Log.inspect(at: dir.path).allocatedBytes
        let line = "bytes on disk       \(allocated) (allocated for every file of the log)"
        #expect(output.lines.contains(line), "\(output.stdout)")
        let normalised = output.stdout.replacingOccurrences(of: line, with: "bytes on disk       <bytes on disk> (allocated for every file of the log)")
        try GoldenLog.expectMatches(normalised, golden: "stats.txt")
    }

    /// The JSON object's totals agree with what `dump` and `dump --batches` print.
    @Test func jsonAgreesWithDump() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        let stats = try Self.json(dir.path)
        #expect(Set(stats.keys) == [
            "events", "markers", "batches", "streams", "stored_bytes", "uncompressed_bytes", "compression_ratio", "bytes_on_disk",
            "event_bytes", "batch_records", "batch_bytes", "stream_events", "types", "other_types",
        ])
        let events = try CLIProcess.run(["dump", dir.path, "--json"]).lines.compactMap(CLITests.object)
        let batches = try CLIProcess.run(["dump", dir.path, "--batches", "--json"]).lines.compactMap(CLITests.object)
        #expect(stats["events"] as? Int == events.count)
        #expect(stats["markers"] as? Int == 0)
        #expect(stats["batches"] as? Int == batches.count)
        #expect(stats["streams"] as? Int == Set(events.compactMap { $0["stream"] as? String }).count)
        let stored = batches.reduce(0) { $0 + ($1["length"] as? Int ?? 0) }
        #expect(stats["stored_bytes"] as? Int == stored)
        #expect(stats["uncompressed_bytes"] as? Int == stored)
        #expect(stats["compression_ratio"] as? Double == 1.0)
        #expect(stats["bytes_on_disk"] as? Int == Int(try Log.inspect(at: dir.path).allocatedBytes))
        // Batches of 3, 1, 5, 3 and 2 records.
        #expect(Self.buckets(stats, "batch_records") == [[1, 1, 1], [2, 3, 3], [4, 7, 1]])
        #expect(Self.buckets(stats, "batch_bytes").reduce(0) { $0 + $1[2] } == 5)
        #expect(Self.buckets(stats, "event_bytes").reduce(0) { $0 + $1[2] } == 14)
        // order-1: 5 events, order-2: 3, customer-1: 2, order-3: 4, audit: 1.
        #expect(Self.buckets(stats, "stream_events") == [[1, 1, 1], [2, 3, 2], [4, 7, 2]])
        let types = (stats["types"] as? [[String: Any]] ?? []).map { "\($0["type"] as? String ?? "?"):\($0["count"] as? Int ?? -1)" }
        // By count, most first; ties by name.
        #expect(types == ["ItemAdded:4", "Attachment:3", "OrderPlaced:3", "Checked:1", "EmailChanged:1", "OrderPaid:1", "Registered:1"])
        #expect((stats["other_types"] as? [String: Int]) == ["types": 0, "events": 0])
    }

    /// Stored bytes ÷ uncompressed bytes: below 1 when LZ4 shrank the batches.
    @Test func compressionRatioOfAnLZ4Log() throws {
        let dir = TemporaryDirectory("cli")
        let lines = (0..<200).map { i in #"{"stream": "s-\#(i % 4)", "type": "T", "data": "\#(String(repeating: "abcd", count: 50))\#(i)"}"# }
        try CLITests.append(lines, to: dir.path, options: ["--compression", "lz4", "--batch", "50"])
        let stats = try Self.json(dir.path)
        let batches = try CLIProcess.run(["dump", dir.path, "--batches", "--json"]).lines.compactMap(CLITests.object)
        #expect(batches.allSatisfy { $0["codec"] as? String == "lz4" }, "\(batches)")
        let stored = try #require(stats["stored_bytes"] as? Int)
        let uncompressed = try #require(stats["uncompressed_bytes"] as? Int)
        #expect(stored == batches.reduce(0) { $0 + ($1["length"] as? Int ?? 0) })
        #expect(uncompressed > 200 * 200, "\(stats)")
        let ratio = try #require(stats["compression_ratio"] as? Double)
        #expect(ratio < 0.5 && abs(ratio - Double(stored) / Double(uncompressed)) < 0.0005, "\(stats)")
        let text = try CLIProcess.run(["stats", dir.path])
        #expect(text.lines.contains("compression ratio   \(StatsCommand.ratioText(ratio)) (stored bytes / uncompressed bytes)"), "\(text)")
    }

    /// The 20 types with the most events by name, the rest summed up;
    /// markers counted on their own.
    @Test func topTypesOthersAndMarkers() throws {
        let dir = TemporaryDirectory("cli")
        // Type k (0..<25) gets k + 1 events.
        var lines: [String] = []
        for k in 0..<25 { for _ in 0...k { lines.append(CLITests.line("s-\(k % 3)", type: "Type\(k)")) } }
        try CLITests.append(lines, to: dir.path)
        #expect(try CLIProcess.run(["streams", dir.path, "delete", "s-2"]).status == 0)
        let stats = try Self.json(dir.path)
        #expect(stats["events"] as? Int == lines.count)
        #expect(stats["markers"] as? Int == 1)
        #expect(stats["streams"] as? Int == 3)
        let types = (stats["types"] as? [[String: Any]] ?? []).map { "\($0["type"] as? String ?? "?"):\($0["count"] as? Int ?? -1)" }
        #expect(types == (5..<25).reversed().map { "Type\($0):\($0 + 1)" })
        #expect((stats["other_types"] as? [String: Int]) == ["types": 5, "events": 1 + 2 + 3 + 4 + 5])
        let text = try CLIProcess.run(["stats", dir.path])
        #expect(text.status == 0, "\(text)")
        let typeRows = text.lines.drop { !$0.hasPrefix("event types") }.dropFirst()
        #expect(typeRows.count == 21, "\(text.stdout)")
        #expect(typeRows.first?.split(separator: " ") == ["Type24", Substring(String(repeating: "#", count: BarChart.width)), "25"], "\(text.stdout)")
        // 15 of 25: 24 of the 40 #.
        #expect(typeRows.last?.split(separator: " ") == ["5", "other", "types", Substring(String(repeating: "#", count: 24)), "15"], "\(text.stdout)")
        #expect(text.lines.contains("markers             1"), "\(text.stdout)")
    }

    @Test func emptyLogAndDamage() throws {
        let dir = TemporaryDirectory("cli")
        try Log.open(at: dir.path).close()
        let empty = try Self.json(dir.path)
        #expect(empty["events"] as? Int == 0 && empty["batches"] as? Int == 0 && empty["compression_ratio"] as? Double == 1.0)
        #expect(Self.buckets(empty, "event_bytes").isEmpty && (empty["types"] as? [Any])?.isEmpty == true)
        let text = try CLIProcess.run(["stats", dir.path])
        #expect(text.status == 0 && text.lines.filter { $0 == "  (none)" }.count == 5, "\(text)")

        try GoldenLog.build(at: dir.sub("golden"))
        let segment = dir.sub("golden/00000000000000000000.segment")
        let batches = Fixtures.batches(in: segment)
        try #require(batches.count == 3)
        Damage.flipBit(segment, at: batches[1].offset + BatchHeader.size + 2)
        for options in [[], ["--json"]] {
            let damaged = try CLIProcess.run(["stats", dir.sub("golden")] + options)
            #expect(damaged.status == 1, "\(damaged)")
            #expect(damaged.stderr.contains("\(segment) at byte \(batches[1].offset): batch checksum mismatch"), "\(damaged.stderr)")
            #expect(damaged.stdout.isEmpty)
        }
        let missing = try CLIProcess.run(["stats", dir.sub("nothing-here")])
        #expect(missing.status == 2, "\(missing)")
        #expect(try CLIProcess.run(["stats", dir.path, "--frob"]).status == 2)
    }

    /// The help of each command with new options has an example per option,
    /// and no source escapes leaked into the text.
    @Test func helpTextsCarryExamples() throws {
        for (command, examples) in [
            ("dump", [
                "dump /var/lib/orders --batches --from 1000 --count 5", "dump /var/lib/orders --since 1h --type OrderPlaced --meta tenant=acme",
                "dump /var/lib/orders --stream order-7 --data hex",
                "dump /var/lib/orders/damaged-20261129T070000Z/00000000000000004096.segment --json",
            ]),
            ("tail", ["tail /var/lib/orders --from -20 --stream order-7 -f"]), ("stats", ["stats /var/lib/orders --json"]),
            ("repair", ["repair /var/lib/orders, then eventlog repair /var/lib/orders --yes"]),
        ] {
            let help = try CLIProcess.run([command, "--help"])
            #expect(help.status == 0, "\(help)")
            let text = help.stdout.replacingOccurrences(of: "\n", with: " ")
            for example in examples { #expect(text.contains("Example: eventlog " + example), "\(command): \(example)") }
            #expect(!help.stdout.contains("\\\n") && !help.stdout.contains("\\("), "\(command): \(help.stdout)")
        }
    }

    @Test func histogramBucketsByPowersOfTwo() {
        var histogram = Histogram()
        #expect(histogram.buckets.isEmpty)
        for value: UInt64 in [0, 1, 2, 3, 4, 7, 8, 100, 100] { histogram.add(value) }
        #expect(histogram.buckets.map { [$0.min, $0.max, $0.count] } == [
            [0, 0, 1], [1, 1, 1], [2, 3, 2], [4, 7, 2], [8, 15, 1], [16, 31, 0], [32, 63, 0], [64, 127, 2],
        ])
        #expect(histogram.total == 9)
        var extremes = Histogram()
        extremes.add(.max)
        extremes.add(1 << 63)
        #expect(extremes.buckets.map { [$0.min, $0.max, $0.count] } == [[1 << 63, .max, 2]])
        #expect(BarChart.bar(10, largest: 10).count == BarChart.width)
        #expect(BarChart.bar(5, largest: 10).count == BarChart.width / 2)
        #expect(BarChart.bar(1, largest: 1_000_000).count == 1)
        #expect(BarChart.bar(0, largest: 10).isEmpty)
    }
}

extension CLIStatsTests {
    /// `inspect`'s human format matches `Tests/Golden/inspect.txt` on the
    /// golden log, with what differs from run to run or between file
    /// systems replaced: the path, the log id, the wall-clock times of the
    /// log's creation and last shutdown, and the allocated bytes (each first
    /// checked against `Log.inspect`).
    @Test func inspectTextMatchesTheGoldenFile() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        // The test made the directory (its mode follows the umask); the log made its files (0600).
        chmod(dir.path, 0o700)
        let output = try CLIProcess.run(["inspect", dir.path])
        #expect(output.status == 0, "\(output)")
        let inspection = try Log.inspect(at: dir.path)
        var text = output.stdout.replacingOccurrences(of: dir.path, with: "<path>")
        text = text.replacingOccurrences(of: inspection.logID.uuidString.lowercased(), with: "<log id>")
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for i in lines.indices {
            for label in ["created at", "last shutdown"] where lines[i].hasPrefix(label + " ") {
                // "created at           2026-11-29T07:26:32.592069Z", "last shutdown        clean at 2026-...Z"
                lines[i] = lines[i].replacingOccurrences(of: #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"#, with: "<time>", options: .regularExpression)
            }
        }
        text = lines.joined(separator: "\n")
        let segmentsAllocated = inspection.segments.reduce(Int64(0)) { $0 + $1.allocatedBytes }
        #expect(text.contains("(\(segmentsAllocated) allocated)"), "\(output.stdout)")
        text = text.replacingOccurrences(of: "(\(segmentsAllocated) allocated)", with: "(<allocated> allocated)")
        // The table's ALLOCATED column: each segment's, then the total, right-aligned as printed.
        for allocated in Set(inspection.segments.map(\.allocatedBytes) + [segmentsAllocated]).sorted(by: >) {
            text = text.replacingOccurrences(of: "  \(allocated)  ", with: "  <allocated>  ")
            if text.hasSuffix("  \(allocated)\n") { text = String(text.dropLast("  \(allocated)\n".count)) + "  <allocated>\n" }
        }
        // The placeholder's padding depends on the numbers' widths: one space before it.
        text = text.replacingOccurrences(of: #" +<allocated>"#, with: " <allocated>", options: .regularExpression)
        try GoldenLog.expectMatches(text, golden: "inspect.txt")
    }
}
