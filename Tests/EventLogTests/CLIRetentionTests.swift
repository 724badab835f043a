import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog config`, `config set`, `compact`, and what retention changes
/// in `dump` and `inspect`: the built binary, run as a real child process.
@Suite struct CLIRetentionTests {
    static func object(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    static let eventCount = 600
    static let cursorPosition = 400

    /// `eventCount` events over many 4 KiB segments (batches of 10), the
    /// cursor `relay` committed at `cursorPosition`; closed cleanly.
    static func fixture(_ directory: String) throws {
        var options = LogOptions(segmentBytes: 4096, durability: .none)
        options.maintenanceInterval = nil
        let log = try Log.open(at: directory, options: options)
        try Fixtures.append(log, 0..<eventCount, batch: 10)
        try log.commitCursor("relay", position: UInt64(cursorPosition))
        try log.close()
    }

    /// `eventlog config DIR --json`, parsed; checks the exit code and the keys.
    static func config(_ directory: String) throws -> [String: Any] {
        let output = try CLIProcess.run(["config", directory, "--json"])
        #expect(output.status == 0, "\(output)")
        #expect(output.lines.count == 1, "\(output)")
        let root = try #require(object(output.stdout), "not JSON: \(output.stdout)")
        #expect(Set(root.keys) == ["retain_age_seconds", "retain_bytes", "retain_cursors", "key_compaction", "tombstone_retention_seconds"])
        return root
    }

    /// `inspect --json`'s segments as (file, base position).
    static func segments(_ directory: String) throws -> [(file: String, base: Int)] {
        let output = try CLIProcess.run(["inspect", directory, "--json"])
        #expect(output.status == 0, "\(output)")
        let root = try #require(object(output.stdout), "not JSON: \(output.stdout)")
        let segments = try #require(root["segments"] as? [[String: Any]])
        return try segments.map { (try #require($0["file"] as? String), try #require($0["base_position"] as? Int)) }
    }

    static func segmentFiles(_ dir: TemporaryDirectory) -> Set<String> {
        Set(dir.files().filter { $0.hasSuffix(".segment") })
    }

    // MARK: config

    @Test func configPrintsAndSetsTheRetentionSettings() throws {
        let dir = TemporaryDirectory("cli-retention")
        try Self.fixture(dir.path)

        // The defaults: nothing is ever removed.
        let defaults = try Self.config(dir.path)
        #expect(defaults["retain_age_seconds"] is NSNull)
        #expect(defaults["retain_bytes"] is NSNull)
        #expect((defaults["retain_cursors"] as? [String]) == [])
        let text = try CLIProcess.run(["config", dir.path])
        #expect(text.status == 0, "\(text)")
        #expect(
            text.lines == [
                "retain age      unlimited", "retain bytes    unlimited", "retain cursors  none", "key compaction  off", "tombstones      kept 86400s",
            ], "\(text)")

        // set changes the settings given and prints the result.
        let set = try CLIProcess.run(["config", dir.path, "set", "--retain-bytes", "8K", "--retain-cursors", "relay"])
        #expect(set.status == 0, "\(set)")
        #expect(
            set.lines == [
                "retain age      unlimited", "retain bytes    8192 bytes (8K)", "retain cursors  relay", "key compaction  off",
                "tombstones      kept 86400s",
            ], "\(set)")
        let stored = try Self.config(dir.path)
        #expect(stored["retain_age_seconds"] is NSNull)
        #expect(stored["retain_bytes"] as? Int == 8192)
        #expect((stored["retain_cursors"] as? [String]) == ["relay"])

        // ... keeping the others; --json prints what config --json prints.
        let age = try CLIProcess.run(["config", dir.path, "set", "--retain-age", "7d", "--json"])
        #expect(age.status == 0, "\(age)")
        let printed = try #require(Self.object(age.stdout), "\(age)")
        #expect(printed["retain_age_seconds"] as? Int == 7 * 86_400)
        #expect(printed["retain_bytes"] as? Int == 8192)
        #expect((printed["retain_cursors"] as? [String]) == ["relay"])
        #expect(try Self.config(dir.path)["retain_age_seconds"] as? Int == 604_800)
        for (value, seconds) in [("90s", 90), ("30m", 1800), ("12h", 43_200)] {
            let output = try CLIProcess.run(["config", dir.path, "set", "--retain-age", value, "--json"])
            #expect(Self.object(output.stdout)?["retain_age_seconds"] as? Int == seconds, "\(value): \(output)")
        }
        let big = try CLIProcess.run(["config", dir.path, "set", "--retain-bytes", "10G", "--retain-cursors", "relay, audit", "--json"])
        #expect(Self.object(big.stdout)?["retain_bytes"] as? Int == 10 << 30, "\(big)")
        #expect(Self.object(big.stdout)?["retain_cursors"] as? [String] == ["relay", "audit"], "\(big)")
        let plain = try CLIProcess.run(["config", dir.path, "set", "--retain-bytes", "1000", "--json"])
        #expect(Self.object(plain.stdout)?["retain_bytes"] as? Int == 1000, "\(plain)")

        // none and "" clear.
        let cleared = try CLIProcess.run(["config", dir.path, "set", "--retain-age", "none", "--retain-bytes", "none", "--retain-cursors", ""])
        #expect(cleared.status == 0, "\(cleared)")
        let none = try Self.config(dir.path)
        #expect(none["retain_age_seconds"] is NSNull && none["retain_bytes"] is NSNull, "\(none)")
        #expect((none["retain_cursors"] as? [String]) == [])

        // Malformed values and usage errors: exit 64 naming the flag and the value; nothing changes.
        #expect(try CLIProcess.run(["config", dir.path, "set", "--retain-bytes", "8K", "--retain-cursors", "relay"]).status == 0)
        for (arguments, named) in [
            (["set", "--retain-age", "5x"], "--retain-age"), (["set", "--retain-bytes", "-1"], "--retain-bytes"),
            (["set", "--retain-age", "0s"], "--retain-age"), (["set", "--retain-age", "7"], "--retain-age"),
            (["set", "--retain-age", "1.5h"], "--retain-age"), (["set", "--retain-bytes", "0"], "--retain-bytes"),
            (["set", "--retain-bytes", "10X"], "--retain-bytes"), (["set", "--retain-bytes", "99999999999T"], "--retain-bytes"),
            (["set", "--retain-cursors", "a,,b"], "--retain-cursors"), (["set", "--retain-cursors", "a,a"], "--retain-cursors"),
        ] {
            let output = try CLIProcess.run(["config", dir.path] + arguments)
            #expect(output.status == 2, "\(arguments): \(output)")
            #expect(output.stderr.contains(named) && output.stderr.contains("'\(arguments[2])'"), "\(arguments): \(output.stderr)")
        }
        for usage in [["set"], ["set", "--json"], ["--retain-bytes", "1K"], ["frob"], ["frob", "--retain-bytes", "1K"]] {
            let output = try CLIProcess.run(["config", dir.path] + usage)
            #expect(output.status == 2, "\(usage): \(output)")
        }
        let unchanged = try Self.config(dir.path)
        #expect(unchanged["retain_bytes"] as? Int == 8192)
        #expect((unchanged["retain_cursors"] as? [String]) == ["relay"])
        #expect(unchanged["retain_age_seconds"] is NSNull)

        let missing = try CLIProcess.run(["config", dir.sub("nothing-here")])
        #expect(missing.status == 2, "\(missing)")
        let missingSet = try CLIProcess.run(["config", dir.sub("nothing-here"), "set", "--retain-bytes", "1K"])
        #expect(missingSet.status == 2, "\(missingSet)")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("nothing-here")))
    }

    // MARK: compact

    @Test func compactRemovesWhatTheSettingsNoLongerKeep() throws {
        let dir = TemporaryDirectory("cli-retention")
        try Self.fixture(dir.path)
        let before = try Self.segments(dir.path)
        try #require(before.count >= 6, "the fixture should span many segments: \(before)")
        let filesBefore = Self.segmentFiles(dir)
        #expect(filesBefore == Set(before.map(\.file)))

        // Without settings, nothing goes (and a run that removes nothing is not the last compaction).
        let idle = try CLIProcess.run(["compact", dir.path, "--json"])
        #expect(idle.status == 0, "\(idle)")
        #expect(Self.object(idle.stdout)?["segments_after"] as? Int == before.count, "\(idle)")
        #expect(Self.object(idle.stdout)?["events_removed"] as? Int == 0, "\(idle)")
        #expect(Self.segmentFiles(dir) == filesBefore)
        let inspectedIdle = try #require(Self.object(try CLIProcess.run(["inspect", dir.path, "--json"]).stdout))
        #expect(inspectedIdle["last_compaction"] is NSNull, "\(inspectedIdle)")
        #expect(inspectedIdle["last_compaction_failure"] is NSNull, "\(inspectedIdle)")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("eventlog.compaction")))

        #expect(try CLIProcess.run(["config", dir.path, "set", "--retain-bytes", "8K", "--retain-cursors", "relay"]).status == 0)

        // A dry run says what would go and changes nothing.
        let dry = try CLIProcess.run(["compact", dir.path, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry)")
        #expect(dry.lines.count == 1, "\(dry)")
        let planned = try #require(Self.object(dry.stdout), "not JSON: \(dry.stdout)")
        let keys: Set<String> = [
            "segments_before", "segments_after", "bytes_before", "bytes_after", "events_removed", "start_position",
            "start_position_before", "dry_run", "held_back_by", "segments_rewritten", "events_scavenged", "segments_merged",
        ]
        #expect(Set(planned.keys) == keys)
        #expect(planned["dry_run"] as? Bool == true)
        #expect(planned["segments_before"] as? Int == before.count)
        let plannedAfter = try #require(planned["segments_after"] as? Int)
        #expect(plannedAfter < before.count)
        let plannedRemoved = try #require(planned["events_removed"] as? Int)
        #expect(plannedRemoved > 0 && plannedRemoved <= Self.cursorPosition)
        #expect(planned["start_position"] as? Int == 0)
        #expect(planned["start_position_before"] as? Int == 0)
        #expect((planned["bytes_after"] as? Int ?? .max) < (planned["bytes_before"] as? Int ?? 0))
        // 8 KiB would keep two or three segments: the cursor holds the rest back.
        #expect((planned["held_back_by"] as? String)?.contains("relay") == true, "\(planned)")
        #expect(Self.segmentFiles(dir) == filesBefore)
        let dryText = try CLIProcess.run(["compact", dir.path, "--dry-run"])
        #expect(dryText.status == 0, "\(dryText)")
        #expect(dryText.lines.first?.hasPrefix("dry run: would remove \(before.count - plannedAfter) segments") == true, "\(dryText)")
        #expect(dryText.lines.contains("start position      0 -> \(plannedRemoved)"), "\(dryText)")
        #expect(Self.segmentFiles(dir) == filesBefore)
        #expect(try CLIProcess.run(["dump", dir.path, "--from", "0", "--count", "1"]).status == 0)
        // inspect says what compact would reclaim.
        let reclaimable = try #require(Self.object(try CLIProcess.run(["inspect", dir.path, "--json"]).stdout))["reclaimable_bytes"] as? Int
        #expect(reclaimable == (planned["bytes_before"] as? Int ?? 0) - (planned["bytes_after"] as? Int ?? 0))

        // The run removes them.
        let run = try CLIProcess.run(["compact", dir.path, "--json"])
        #expect(run.status == 0, "\(run)")
        let done = try #require(Self.object(run.stdout), "not JSON: \(run.stdout)")
        #expect(Set(done.keys) == keys)
        #expect(done["dry_run"] as? Bool == false)
        #expect(done["start_position_before"] as? Int == 0)
        let segmentsAfter = try #require(done["segments_after"] as? Int)
        #expect(segmentsAfter < (done["segments_before"] as? Int ?? 0))
        #expect(segmentsAfter == plannedAfter)
        let start = try #require(done["start_position"] as? Int)
        #expect(start > 0 && start <= Self.cursorPosition, "\(done)")
        #expect(start == plannedRemoved)
        #expect(done["events_removed"] as? Int == start)
        #expect((done["held_back_by"] as? String)?.contains("relay") == true, "\(done)")

        // inspect, another process, shows that run as the last compaction.
        let inspected = try CLIProcess.run(["inspect", dir.path, "--json"])
        let last = try #require(Self.object(inspected.stdout)?["last_compaction"] as? [String: Any], "\(inspected)")
        #expect(Set(last.keys) == keys.subtracting(["dry_run"]).union(["finished_at"]))
        for key in keys.subtracting(["dry_run", "held_back_by"]) {
            #expect(last[key] as? Int == done[key] as? Int, "\(key): \(last[key] ?? "nil") vs \(done[key] ?? "nil")")
        }
        #expect(last["held_back_by"] as? String == done["held_back_by"] as? String)
        #expect((last["finished_at"] as? Int ?? 0) > 1_700_000_000_000_000)
        let inspectedText = try CLIProcess.run(["inspect", dir.path])
        #expect(inspectedText.lines.contains { $0.hasPrefix("compacted ") && $0.contains(": removed \(start) events") }, "\(inspectedText)")

        // The files below the start are gone, the others stay.
        let kept = before.filter { $0.base >= start }
        #expect(kept.count == segmentsAfter)
        #expect(before.contains { $0.base == start }, "the start is a segment's base")
        #expect(Self.segmentFiles(dir) == Set(kept.map(\.file)), "\(dir.files())")

        // Every event from the start on is still there, and only those.
        let dumped = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dumped.status == 0, "\(dumped)")
        let positions = dumped.lines.compactMap { Self.object($0)?["position"] as? Int }
        #expect(positions == Array(start..<Self.eventCount))
        let first = try #require(dumped.lines.first.flatMap(Self.object))
        let data = try #require((first["data_base64"] as? String).flatMap { Data(base64Encoded: $0) })
        #expect(data.starts(with: Data("event-\(start)-".utf8)), "\(first)")

        // A position retention removed: exit 1, naming the start.
        for from in [0, start - 1] {
            let gone = try CLIProcess.run(["dump", dir.path, "--from", "\(from)"])
            #expect(gone.status == 1, "\(gone)")
            #expect(gone.stderr.contains("position \(from) was removed by retention; the log starts at \(start)"), "\(gone.stderr)")
            #expect(gone.stdout.isEmpty)
        }
        let fromStart = try CLIProcess.run(["dump", dir.path, "--from", "\(start)", "--json", "--count", "2"])
        #expect(fromStart.status == 0, "\(fromStart)")
        #expect(fromStart.lines.compactMap { Self.object($0)?["position"] as? Int } == [start, start + 1])

        // inspect shows the start and the settings.
        let inspection = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspection.status == 0, "\(inspection)")
        let root = try #require(Self.object(inspection.stdout), "not JSON: \(inspection.stdout)")
        #expect(root["start_position"] as? Int == start)
        #expect(root["reclaimable_bytes"] as? Int == 0, "the cursor holds back everything else")
        #expect(root["end_position"] as? Int == Self.eventCount)
        #expect(((root["segments"] as? [[String: Any]])?.first?["base_position"] as? Int) == start)
        let settings = try #require(root["settings"] as? [String: Any], "\(root)")
        #expect(Set(settings.keys) == ["retain_age_seconds", "retain_bytes", "retain_cursors", "key_compaction", "tombstone_retention_seconds"])
        #expect(settings["retain_bytes"] as? Int == 8192)
        #expect(settings["retain_age_seconds"] is NSNull)
        #expect((settings["retain_cursors"] as? [String]) == ["relay"])
        let inspectText = try CLIProcess.run(["inspect", dir.path])
        #expect(inspectText.status == 0, "\(inspectText)")
        #expect(inspectText.lines.contains("start position  \(start)"), "\(inspectText.stdout)")
        #expect(inspectText.lines.contains("retain bytes    8192 bytes (8K)"), "\(inspectText.stdout)")
        #expect(inspectText.lines.contains("retain cursors  relay"), "\(inspectText.stdout)")

        // Again: the cursor still holds the rest back, so nothing more goes.
        let again = try CLIProcess.run(["compact", dir.path])
        #expect(again.status == 0, "\(again)")
        #expect(again.lines.first == "nothing removed", "\(again)")
        #expect(again.lines.contains("segments            \(segmentsAfter) -> \(segmentsAfter)"), "\(again)")
        #expect(again.lines.contains("segments rewritten  0"), "\(again)")
        #expect(again.lines.contains("start position      \(start) -> \(start)"), "\(again)")
        #expect(again.lines.contains { $0.hasPrefix("held back by        cursor relay") }, "\(again)")
        #expect(Self.segmentFiles(dir) == Set(kept.map(\.file)))
    }

    // MARK: Beside a writer

    @Test func configSetAndCompactNeedTheWriterLock() throws {
        let dir = TemporaryDirectory("cli-retention")
        try Self.fixture(dir.path)
        #expect(try CLIProcess.run(["config", dir.path, "set", "--retain-bytes", "8K"]).status == 0)
        let files = Self.segmentFiles(dir)
        let writer = try CLIProcess.start(["append", dir.path])
        defer { writer.kill() }
        try writer.writeLine(#"{"stream": "s-9", "type": "T", "data": 0}"#)
        try #require(writer.waitForLines(1, timeout: 30).count == 1, "stderr: \(writer.stderrText)")

        for command in [["config", dir.path, "set", "--retain-bytes", "1M"], ["compact", dir.path]] {
            let output = try CLIProcess.run(command)
            #expect(output.status == 2, "\(command): \(output)")
            #expect(output.stderr.contains("is open for writing by another process"), "\(command): \(output.stderr)")
        }
        // Reading and a dry run are read-only: they work beside the writer.
        #expect(try Self.config(dir.path)["retain_bytes"] as? Int == 8192)
        let dry = try CLIProcess.run(["compact", dir.path, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry)")
        #expect(Self.object(dry.stdout)?["dry_run"] as? Bool == true, "\(dry)")
        #expect((Self.object(dry.stdout)?["events_removed"] as? Int ?? 0) > 0, "\(dry)")
        #expect(Self.segmentFiles(dir).isSuperset(of: files))

        writer.closeStdin()
        #expect(writer.waitForExit(timeout: 30)?.status == 0)
    }

    // MARK: Argument parsing

    /// `compact` scavenges: deleted streams' events leave the sealed
    /// segments, `inspect` marks them rewritten, `dump` reads around the gaps,
    /// and a dump of a removed position says so (exit 1).
    @Test func compactScavengesDeletedStreams() throws {
        let dir = TemporaryDirectory("cli-scavenge")
        var options = LogOptions(segmentBytes: 4096, durability: .none)
        options.maintenanceInterval = nil
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<Self.eventCount, batch: 10)
        let streams = Set(try log.events(from: 0).map(\.stream)).sorted()
        try #require(streams.count >= 4, "\(streams)")
        let deleted = Array(streams.prefix(streams.count / 2))
        for stream in deleted { _ = try log.deleteStream(stream, hard: true) }
        let firstDead = try #require(try log.events(from: 0).first { deleted.contains($0.stream) }?.position)
        try log.close()

        let dry = try CLIProcess.run(["compact", dir.path, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry)")
        let planned = try #require(Self.object(dry.stdout), "\(dry)")
        #expect((planned["segments_rewritten"] as? Int ?? 0) > 0, "\(planned)")
        let ran = try CLIProcess.run(["compact", dir.path, "--json"])
        #expect(ran.status == 0, "\(ran)")
        let result = try #require(Self.object(ran.stdout), "\(ran)")
        #expect(result["segments_rewritten"] as? Int == planned["segments_rewritten"] as? Int, "\(result)")
        #expect((result["events_scavenged"] as? Int ?? 0) > Self.eventCount / 4, "\(result)")
        #expect(result["events_removed"] as? Int == result["events_scavenged"] as? Int, "\(result)")
        #expect(result["start_position"] as? Int == 0)

        let inspection = try CLIProcess.run(["inspect", dir.path, "--json"])
        let root = try #require(Self.object(inspection.stdout), "\(inspection)")
        let rewritten = (root["segments"] as? [[String: Any]] ?? []).filter { $0["rewritten"] as? Bool == true }
        // Rewritten segments stay, or were merged with their small neighbours (Format.md §4.2).
        #expect(rewritten.count <= result["segments_rewritten"] as? Int ?? 0 && !rewritten.isEmpty)
        #expect((root["segments"] as? [[String: Any]])?.count == result["segments_after"] as? Int)
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 0, "\(verify)")
        let dump = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dump.status == 0, "\(dump)")
        let dumped = dump.lines.compactMap(Self.object)
        let activeBase = (root["segments"] as? [[String: Any]])?.last?["base_position"] as? Int ?? 0
        let survivors = dumped.filter { $0["marker"] as? Bool != true && ($0["position"] as? Int ?? 0) < activeBase }
            .compactMap { $0["stream"] as? String }
        #expect(!survivors.isEmpty)
        #expect(!survivors.contains { deleted.contains($0) }, "every event of a deleted stream in a sealed segment went")
        #expect(dumped.filter { $0["marker"] as? Bool == true }.count == deleted.count, "every marker stays")
        let gap = try CLIProcess.run(["dump", dir.path, "--from", "\(firstDead)", "--count", "1", "--json"])
        #expect(gap.status == 0, "\(gap)")
        #expect((Self.object(gap.lines.first ?? "")?["position"] as? Int ?? 0) > Int(firstDead), "\(gap)")
    }

    /// kill -9 of a child `eventlog compact` at seeded moments while it
    /// scavenges: the next open finds each segment old or rewritten, only
    /// dead events missing, every stream as before, and `verify` sound.
    @Test func streamsSetLimitsThatReadsHonourAndCompactionApplies() throws {
        let dir = TemporaryDirectory("cli-limits")
        try Self.fixture(dir.path)  // 600 events over stream-0 ... stream-6, stamped in 1970
        func streams() throws -> [String: [String: Any]] {
            let output = try CLIProcess.run(["streams", dir.path, "--json"])
            #expect(output.status == 0, "\(output)")
            return Dictionary(uniqueKeysWithValues: output.lines.compactMap(Self.object).map { ($0["stream"] as? String ?? "", $0) })
        }
        let set = try CLIProcess.run(["streams", dir.path, "set", "stream-1", "--max-count", "5"])
        #expect(set.status == 0, "\(set)")
        #expect(set.stdout.contains("max-count 5"), "\(set)")
        let aged = try CLIProcess.run(["streams", dir.path, "set", "stream-0", "--max-age", "1h"])
        #expect(aged.status == 0, "\(aged)")
        var listed = try streams()
        #expect(listed["stream-1"]?["max_count"] as? Int == 5 && listed["stream-1"]?["max_age_seconds"] is NSNull)
        #expect(listed["stream-1"]?["count"] as? Int == 5)
        #expect(listed["stream-0"]?["max_age_seconds"] as? Int == 3600 && listed["stream-0"]?["count"] as? Int == 0)
        #expect(listed["stream-2"]?["max_count"] is NSNull)
        let read = try CLIProcess.run(["dump", dir.path, "--stream", "stream-1", "--json"])
        #expect(read.lines.compactMap { Self.object($0)?["version"] as? Int } == [81, 82, 83, 84, 85])
        #expect(try CLIProcess.run(["dump", dir.path, "--stream", "stream-0"]).lines.isEmpty)

        // Usage errors (exit 2), changing nothing.
        for bad in [
            ["set", "stream-1"], ["set", "stream-1", "--max-count", "0"], ["set", "stream-1", "--max-age", "soon"],
            ["set", "stream-1", "--max-count", "5", "--hard"], ["delete", "stream-1", "--max-count", "5"], ["set", "no-such-stream", "--max-count", "5"],
        ] {
            let output = try CLIProcess.run(["streams", dir.path] + bad)
            #expect(output.status == 2, "\(bad): \(output)")
        }

        // Compaction removes what the limits hide, except stream-0's last event.
        let compacted = try CLIProcess.run(["compact", dir.path, "--json"])
        #expect(compacted.status == 0, "\(compacted)")
        let result = try #require(Self.object(compacted.stdout))
        let removed = try #require(result["events_removed"] as? Int)
        // stream-1 holds 86 events (keeps 5), stream-0 holds 86 (keeps its last); the active segment's stay.
        #expect(removed > 100 && removed <= 81 + 85, "\(result)")
        let whole = try CLIProcess.run(["dump", dir.path, "--json"])
        let left = whole.lines.compactMap(Self.object).filter { $0["stream"] as? String == "stream-0" && $0["marker"] == nil }
        #expect(left.last?["version"] as? Int == 85, "the last event stays")
        listed = try streams()
        #expect(listed["stream-1"]?["count"] as? Int == 5 && listed["stream-0"]?["version"] as? Int == 85)

        // none removes a limit: the stream shows what is still on disk.
        let cleared = try CLIProcess.run(["streams", dir.path, "set", "stream-1", "--max-count", "none"])
        #expect(cleared.status == 0, "\(cleared)")
        #expect(try streams()["stream-1"]?["max_count"] is NSNull)
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
    }

    @Test func keyCompactionThroughTheTool() throws {
        let dir = TemporaryDirectory("cli-keys")
        // 60 events of six keys in stream users, then 40 of other streams: small segments.
        var lines: [String] = []
        for i in 0..<60 { lines.append("{\"stream\":\"users\",\"type\":\"Set\",\"data\":{\"i\":\(i),\"pad\":\"\(String(repeating: "x", count: 120))\"},\"key\":\"user-\(i % 6)\"}") }
        lines.append("{\"stream\":\"users\",\"type\":\"Unset\",\"data\":null,\"key\":\"user-2\",\"tombstone\":true}")
        lines.append("{\"stream\":\"users\",\"type\":\"Set\",\"data\":1,\"key\":\"user-0\"}")
        for i in 0..<40 { lines.append("{\"stream\":\"fill-\(i)\",\"type\":\"Fill\",\"data\":\"\(String(repeating: "y", count: 150))\"}") }
        let appended = try CLIProcess.run(["append", dir.path, "--segment-bytes", "4096"], stdin: lines.map { $0 + "\n" }.joined())
        #expect(appended.status == 0, "\(appended)")
        #expect(try CLIProcess.run(["append", dir.path], stdin: "{\"stream\":\"users\",\"type\":\"T\",\"data\":1,\"key\":\"\"}\n").status == 2)
        let set = try CLIProcess.run(["config", dir.path, "set", "--key-compaction", "on", "--tombstone-retention", "0s", "--json"])
        #expect(set.status == 0, "\(set)")
        let settings = try #require(Self.object(set.stdout))
        #expect(settings["key_compaction"] as? Bool == true && settings["tombstone_retention_seconds"] as? Int == 0)
        #expect(try CLIProcess.run(["config", dir.path, "set", "--key-compaction", "maybe"]).status == 2)
        let compacted = try CLIProcess.run(["compact", dir.path, "--json"])
        #expect(compacted.status == 0, "\(compacted)")
        let dumped = try CLIProcess.run(["dump", dir.path, "--json"])
        let users = dumped.lines.compactMap(Self.object).filter { $0["stream"] as? String == "users" }
        // Each key's latest: user-1, -3, -4, -5 (versions 55, 57-59), user-2's tombstone went with its
        // events (retention 0), user-0's latest is the stream's last event (61).
        #expect(users.map { $0["version"] as? Int ?? -1 } == [55, 57, 58, 59, 61], "\(users)")
        #expect(users.allSatisfy { $0["key"] is String } && users.allSatisfy { $0["tombstone"] == nil })
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
    }

    @Test func killingACompactionLeavesOldOrNewSegments() throws {
        var rng = SplitMix64(seed: 0x5CA7)
        var interrupted = 0
        var partial = 0  // killed after rewriting some segments, before the last
        for round in 0..<8 {
            let dir = TemporaryDirectory("cli-scavenge-kill")
            var options = LogOptions(segmentBytes: 4096, durability: .none)
            options.maintenanceInterval = nil
            var log = try Log.open(at: dir.path, options: options)
            try Fixtures.append(log, 0..<3000, batch: 10)
            let names = Set(try log.events(from: 0).map(\.stream)).sorted()
            let deleted = Set(names.prefix(names.count / 2))
            for stream in deleted { _ = try log.deleteStream(stream, hard: true) }
            let before = try log.events(from: 0)
            let infos = try names.map { try log.streamInfo($0) }
            try log.close()

            let child = try CLIProcess.start(["compact", dir.path])
            usleep(UInt32(Int.random(in: 0..<250_000, using: &rng)))
            let ended = try #require(child.kill())
            if ended.status != 0 { interrupted += 1 }

            log = try Log.open(at: dir.path, options: options)
            let positions = Set(try log.events(from: 0).map(\.position))
            let missing = before.filter { !positions.contains($0.position) }
            #expect(missing.allSatisfy { deleted.contains($0.stream) && $0.type.first != "$" }, "round \(round): a live event went")
            #expect(try names.map { try log.streamInfo($0) } == infos, "round \(round)")
            // What the killed run left undone, a new run finishes.
            let rest = try log.compact()
            if !missing.isEmpty && rest.segmentsRewritten > 0 { partial += 1 }
            try log.close()
            let report = try Log.verify(at: dir.path)
            #expect(report.isSound, "round \(round): \(report.problems)")
        }
        #expect(interrupted > 0, "no run was killed before it finished: the delays are too long")
        #expect(partial > 0, "no run was killed in the middle of scavenging")
    }

    @Test func retentionValuesParse() throws {
        #expect(try RetentionSettingsFormat.parseDuration("90s") == .set(.seconds(90)))
        #expect(try RetentionSettingsFormat.parseDuration("30m") == .set(.seconds(1800)))
        #expect(try RetentionSettingsFormat.parseDuration("12h") == .set(.seconds(43_200)))
        #expect(try RetentionSettingsFormat.parseDuration("7d") == .set(.seconds(604_800)))
        #expect(try RetentionSettingsFormat.parseDuration("none") == .clear)
        for bad in ["", "s", "5x", "-5s", "+5s", "5 s", "0d", "1.5h", "7", "d7", "\(RetentionSettingsFormat.maxAgeSeconds + 1)s", "99999999999999999999s"] {
            #expect(throws: (any Error).self, "\(bad)") { try RetentionSettingsFormat.parseDuration(bad) }
        }
        #expect(try RetentionSettingsFormat.parseDuration("\(RetentionSettingsFormat.maxAgeSeconds)s")
            == .set(.seconds(Int64(RetentionSettingsFormat.maxAgeSeconds))))

        #expect(try RetentionSettingsFormat.parseSize("1000") == .set(1000))
        #expect(try RetentionSettingsFormat.parseSize("8K") == .set(8192))
        #expect(try RetentionSettingsFormat.parseSize("512M") == .set(512 << 20))
        #expect(try RetentionSettingsFormat.parseSize("10G") == .set(10 << 30))
        #expect(try RetentionSettingsFormat.parseSize("2T") == .set(2 << 40))
        #expect(try RetentionSettingsFormat.parseSize("none") == .clear)
        for bad in ["", "K", "-1", "0", "0K", "1.5G", "10X", "10KB", " 10", "16777216T"] {
            #expect(throws: (any Error).self, "\(bad)") { try RetentionSettingsFormat.parseSize(bad) }
        }

        #expect(try RetentionSettingsFormat.parseCursorList("") == [])
        #expect(try RetentionSettingsFormat.parseCursorList("relay") == ["relay"])
        #expect(try RetentionSettingsFormat.parseCursorList("relay, group:audit") == ["relay", "group:audit"])
        for bad in [",", "a,", "a,,b", "a,a", String(repeating: "n", count: 256)] {
            #expect(throws: (any Error).self, "\(bad)") { try RetentionSettingsFormat.parseCursorList(bad) }
        }

        // Each value's description in the text output.
        #expect(RetentionSettingsFormat.describeAge(nil) == "unlimited")
        #expect(RetentionSettingsFormat.describeAge(.seconds(90)) == "90s")
        #expect(RetentionSettingsFormat.describeAge(.seconds(604_800)) == "7d (604800 seconds)")
        #expect(RetentionSettingsFormat.describeSize(nil) == "unlimited")
        #expect(RetentionSettingsFormat.describeSize(1000) == "1000 bytes")
        #expect(RetentionSettingsFormat.describeSize(10 << 30) == "10737418240 bytes (10G)")
    }
}
