import Foundation
import Testing
@testable import EventLog

/// `eventlog repair DIR [--yes] [--json]`, with `verify`, `dump` and
/// `append` around it, every one a real child process on real files.
@Suite struct CLIRepairTests {
    // MARK: Helpers

    /// A log of `count` events appended by `eventlog append` in batches of 10
    /// (closed cleanly), and what `dump --json` printed for it then. Small
    /// segments: the tests read whole segment files.
    static func appendedLog(_ dir: TemporaryDirectory, count: Int = 100, segmentBytes: Int = 65536) throws -> (log: String, dumped: [String]) {
        let log = dir.sub("log")
        let options = ["--batch", "10", "--durability", "none", "--segment-bytes", "\(segmentBytes)"]
        let appended = try CLIProcess.run(["append", log] + options, stdin: CLITests.stdin(CLITests.eventLines(count)))
        try #require(appended.status == 0 && appended.lines.count == count, "\(appended)")
        let dumped = try CLIProcess.run(["dump", log, "--json"])
        try #require(dumped.status == 0 && dumped.lines.count == count, "\(dumped)")
        return (log, dumped.lines)
    }

    static func segments(_ log: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: log)) ?? []).filter { $0.hasSuffix(".segment") }.sorted().map { log + "/" + $0 }
    }

    /// The damaged directories in `log`.
    static func damagedDirectories(_ log: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: log)) ?? []).filter { $0.hasPrefix("damaged-") }.map { log + "/" + $0 }
    }

    /// Runs `repair` without `--yes`, as text and as JSON: exit 1, nothing
    /// changed on disk; returns the JSON object.
    static func planChangesNothing(_ log: String) throws -> [String: Any] {
        let before = RepairTests.contents(log)
        let text = try CLIProcess.run(["repair", log])
        #expect(text.status == 1, "\(text)")
        #expect(text.stdout.hasPrefix("repair plan for \(log) (nothing was changed"), "\(text.stdout)")
        #expect(text.stderr.contains("run with --yes to apply"), "\(text.stderr)")
        let json = try CLIProcess.run(["repair", log, "--json"])
        #expect(json.status == 1, "\(json)")
        #expect(RepairTests.contents(log) == before, "repair without --yes changed files")
        let object = try #require(CLITests.object(json.stdout), "not one JSON object: \(json.stdout)")
        #expect(object["sound"] as? Bool == false && object["applied"] as? Bool == false)
        #expect(object["refused"] is NSNull)
        return object
    }

    /// `repair --yes`, then `verify` exits 0, `dump --json` prints exactly
    /// `expected`, and `append` goes on at `expected.count`.
    static func applyThenCheck(_ log: String, expected: [String]) throws -> [String: Any] {
        let applied = try CLIProcess.run(["repair", log, "--yes", "--json"])
        #expect(applied.status == 0, "\(applied)")
        let object = try #require(CLITests.object(applied.stdout), "\(applied.stdout)")
        #expect(object["applied"] as? Bool == true)
        #expect((object["problems_after"] as? [Any])?.isEmpty == true)
        #expect(object["end_position_after"] as? Int == expected.count)
        let verify = try CLIProcess.run(["verify", log])
        #expect(verify.status == 0, "\(verify)")
        let dumped = try CLIProcess.run(["dump", log, "--json"])
        #expect(dumped.status == 0 && dumped.lines == expected, "\(dumped)")
        // Appends go on at the cut, and the streams' versions with them.
        let more = try CLIProcess.run(["append", log], stdin: CLITests.stdin(CLITests.eventLines(5, from: expected.count)))
        #expect(more.status == 0, "\(more)")
        let acks = more.lines.compactMap(CLITests.object)
        #expect(acks.map { $0["position"] as? Int } == (0..<5).map { expected.count + $0 })
        for ack in acks {
            let stream = ack["stream"] as? String ?? ""
            let earlier = expected.filter { CLITests.object($0)?["stream"] as? String == stream }.count
            let inBatch = acks.prefix { $0["position"] as? Int != ack["position"] as? Int }.filter { $0["stream"] as? String == stream }.count
            #expect(ack["version"] as? Int == earlier + inBatch, "\(ack)")
        }
        #expect(try CLIProcess.run(["verify", log]).status == 0)
        return object
    }

    // MARK: Damage kinds

    @Test func aDamagedBatchInTheMiddleOfTheLastSegmentIsCut() throws {
        let dir = TemporaryDirectory("cli")
        let (log, dumped) = try Self.appendedLog(dir)
        let segment = try #require(Self.segments(log).last)
        let batches = Fixtures.batches(in: segment)
        let damaged = batches[4]
        Damage.flipBit(segment, at: damaged.offset + 60)
        let original = Damage.read(segment)
        // The open refuses: the clean-shutdown marker says the batch was on disk.
        #expect(try CLIProcess.run(["dump", log]).status == 1)

        let plan = try Self.planChangesNothing(log)
        let actions = try #require(plan["actions"] as? [[String: Any]])
        #expect(actions.first?["action"] as? String == "cut")
        #expect(actions.first?["file"] as? String == FileNames.segment(0))
        #expect(actions.first?["offset"] as? Int == damaged.offset)
        #expect(plan["end_position_before"] as? Int == 100 && plan["end_position_after"] as? Int == 40)
        for action in actions {
            #expect(["cut", "move_aside", "rebuild"].contains(action["action"] as? String ?? ""), "\(action)")
            #expect(action["file"] is String && action["reason"] is String && action.keys.contains("offset"))
        }

        let applied = try Self.applyThenCheck(log, expected: Array(dumped.prefix(40)))
        let directory = try #require(applied["damaged_directory"] as? String)
        #expect(Self.damagedDirectories(log) == [directory])
        #expect(Damage.read(directory + "/" + FileNames.cutOff(0, from: damaged.offset)) == Array(original[damaged.offset...]))
    }

    @Test func aDamagedSealedSegmentAndTheSegmentsAfterItMoveAside() throws {
        let dir = TemporaryDirectory("cli")
        let (log, dumped) = try Self.appendedLog(dir, count: 300, segmentBytes: 8192)
        let segments = Self.segments(log)
        try #require(segments.count >= 4)
        let target = segments[1]
        let batches = Fixtures.batches(in: target)
        Damage.flipBit(target, at: batches[2].offset + 60)
        let originals = Dictionary(uniqueKeysWithValues: segments[1...].map { ($0, Damage.read($0)) })
        // After a clean shutdown the open does not look, but verify does, and so does repair.
        #expect(try CLIProcess.run(["verify", log]).status == 1)

        let plan = try Self.planChangesNothing(log)
        let actions = try #require(plan["actions"] as? [[String: Any]])
        #expect(actions.first?["action"] as? String == "move_aside")
        #expect(actions.first?["file"] as? String == RepairTests.name(target))
        #expect(actions.first?["offset"] as? Int == batches[2].offset)
        let cut = Int(batches[0].base)
        #expect(plan["end_position_after"] as? Int == cut)

        let applied = try Self.applyThenCheck(log, expected: Array(dumped.prefix(cut)))
        let directory = try #require(applied["damaged_directory"] as? String)
        for (path, bytes) in originals {
            let aside = directory + "/" + RepairTests.name(path)
            #expect(Damage.read(aside) == bytes, "\(aside)")
        }
        // dump reads a segment moved aside: the damaged one up to its damage (exit 1), a later one whole.
        let damagedDump = try CLIProcess.run(["dump", directory + "/" + RepairTests.name(target), "--json"])
        #expect(damagedDump.status == 1 && damagedDump.stderr.contains("at byte \(batches[2].offset)"), "\(damagedDump)")
        #expect(damagedDump.lines == Array(dumped[cut..<Int(batches[2].base)]))
        let later = Fixtures.batches(in: directory + "/" + RepairTests.name(segments[2]))
        try #require(!later.isEmpty)
        let laterDump = try CLIProcess.run(["dump", directory + "/" + RepairTests.name(segments[2]), "--json"])
        #expect(laterDump.status == 0, "\(laterDump)")
        let laterEnd = Int(later.last.map { $0.base + UInt64($0.count) } ?? 0)
        #expect(laterDump.lines == Array(dumped[Int(later[0].base)..<laterEnd]))
    }

    @Test func aMissingMiddleSegmentEndsTheLogBeforeIt() throws {
        let dir = TemporaryDirectory("cli")
        let (log, dumped) = try Self.appendedLog(dir, count: 300, segmentBytes: 8192)
        let segments = Self.segments(log)
        try #require(segments.count >= 4)
        let missing = Int(Fixtures.batches(in: segments[2])[0].base)
        let later = Dictionary(uniqueKeysWithValues: segments[3...].map { ($0, Damage.read($0)) })
        Damage.remove(segments[2])
        #expect(try CLIProcess.run(["dump", log]).status == 1)

        let plan = try Self.planChangesNothing(log)
        let actions = try #require(plan["actions"] as? [[String: Any]])
        #expect(actions.first?["action"] as? String == "move_aside" && actions.first?["file"] as? String == RepairTests.name(segments[3]))
        #expect(actions.first?["offset"] is NSNull)
        let applied = try Self.applyThenCheck(log, expected: Array(dumped.prefix(missing)))
        let directory = try #require(applied["damaged_directory"] as? String)
        for (path, bytes) in later { #expect(Damage.read(directory + "/" + RepairTests.name(path)) == bytes) }
    }

    // MARK: Nothing to repair, a writer, a refusal

    @Test func aSoundLogHasNothingToRepair() throws {
        let dir = TemporaryDirectory("cli")
        let (log, _) = try Self.appendedLog(dir)
        let before = RepairTests.contents(log)
        let text = try CLIProcess.run(["repair", log])
        #expect(text.status == 0 && text.stdout == "nothing to repair in \(log) (end position 100)\n", "\(text)")
        let applied = try CLIProcess.run(["repair", log, "--yes", "--json"])
        #expect(applied.status == 0, "\(applied)")
        let object = try #require(CLITests.object(applied.stdout))
        #expect(object["sound"] as? Bool == true && object["applied"] as? Bool == false)
        #expect((object["actions"] as? [Any])?.isEmpty == true && object["damaged_directory"] is NSNull)
        #expect(object["end_position_before"] as? Int == 100 && object["end_position_after"] as? Int == 100)
        #expect(RepairTests.contents(log) == before)
    }

    @Test func aWriterKeepsRepairOut() throws {
        let dir = TemporaryDirectory("cli")
        let (log, _) = try Self.appendedLog(dir)
        let writer = try CLIProcess.start(["append", log])
        try writer.writeLine(CLITests.eventLines(1, from: 100)[0])
        #expect(writer.waitForLines(1, timeout: 30).count == 1)
        let refused = try CLIProcess.run(["repair", log, "--yes"])
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stderr.contains("repair needs the log not to be open by a writer"), "\(refused.stderr)")
        writer.closeStdin()
        #expect(writer.waitForExit(timeout: 30)?.status == 0)
        #expect(try CLIProcess.run(["repair", log]).status == 0)
    }

    @Test func aRepairThatWouldLoseTheStreamsOfRemovedSegmentsIsRefused() throws {
        let dir = TemporaryDirectory("cli")
        let opened = try RetentionTests.filledLog(dir)
        try opened.updateSettings(LogSettings(retainBytes: 4 * 4096))
        let start = try opened.compact().startPosition
        try opened.close()
        let target = try #require(RepairTests.segmentInsideARun(dir) { run, _ in run.from < start })
        Damage.flipBit(target, at: Fixtures.batches(in: target)[0].offset + 60)
        let before = RepairTests.contents(dir.path)
        let plan = try CLIProcess.run(["repair", dir.path])
        #expect(plan.status == 1 && plan.stderr.contains("retention"), "\(plan)")
        let applied = try CLIProcess.run(["repair", dir.path, "--yes", "--json"])
        #expect(applied.status == 3, "\(applied)")
        let object = try #require(CLITests.object(applied.stdout))
        #expect((object["refused"] as? String)?.contains("§14.3") == true && object["applied"] as? Bool == false)
        #expect(RepairTests.contents(dir.path) == before)
    }
}
