import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog tail --from start|end|P|-N|TIME`, run as a real child process.
@Suite struct CLITailStartTests {
    static func tailed(_ directory: String, _ options: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [Int] {
        let output = try CLIProcess.run(["tail", directory, "--json"] + options)
        #expect(output.status == 0, "\(options): \(output)", sourceLocation: sourceLocation)
        return CLITests.positions(output.lines)
    }

    @Test func fromTakesStartEndAPositionTheLastNAndATime() throws {
        let dir = TemporaryDirectory("cli")
        try CLITests.timedFixture(dir.path, count: 10)  // s-0, s-1 in turn; types T0, T1, T2 in turn; event i at t0 + i ms
        let p = { (options: [String]) in try Self.tailed(dir.path, options) }
        #expect(try p(["--from", "start"]) == Array(0..<10))
        #expect(try p(["--from", "end"]) == [])
        #expect(try p(["--from", "7"]) == [7, 8, 9])
        // -N: as a separate argument and after "=".
        #expect(try p(["--from", "-3"]) == [7, 8, 9])
        #expect(try p(["--from=-3"]) == [7, 8, 9])
        #expect(try p(["--from", "-1"]) == [9])
        #expect(try p(["--from", "-0"]) == [])
        #expect(try p(["--from", "-10"]) == Array(0..<10))
        #expect(try p(["--from", "-1000"]) == Array(0..<10))
        // The last N of the events the filters pass.
        #expect(try p(["--from", "-2", "--stream", "s-1"]) == [7, 9])
        #expect(try p(["--from=-2", "--type", "T0"]) == [6, 9])
        #expect(try p(["--from", "-3", "--stream-prefix", "s-", "--type", "T1"]) == [1, 4, 7])
        #expect(try p(["--from", "-2", "--stream", "s-"]) == [])
        // A time: the first event stamped at or after it (fixture time 2023-11-14T22:13:20Z).
        #expect(try p(["--from", "2023-11-14T22:13:20.007Z"]) == [7, 8, 9])
        #expect(try p(["--from", "2023-11-14T22:13:20.0065Z"]) == [7, 8, 9])
        #expect(try p(["--from", "2023-11-14T23:13:20.008+01:00"]) == [8, 9])
        #expect(try p(["--from", "2023-11-14T22:13:19Z"]) == Array(0..<10))
        #expect(try p(["--from", "2030-01-01T00:00:00Z"]) == [])
        #expect(try p(["--from", "2023-11-14T22:13:20.003Z", "--stream", "s-0"]) == [4, 6, 8])
    }

    /// -N reads back from the end in growing windows: events of a rare
    /// stream far apart are found however far back they are.
    @Test func lastNFindsEventsFarBack() throws {
        let dir = TemporaryDirectory("cli")
        var lines = CLITests.eventLines(2000)
        lines[3] = CLITests.line("rare", data: 3)
        lines[1500] = CLITests.line("rare", data: 1500)
        lines[1998] = CLITests.line("rare-not", data: 1998)
        try CLITests.append(lines, to: dir.path, options: ["--batch", "50", "--segment-bytes", "65536", "--durability", "none"])
        #expect(try Self.tailed(dir.path, ["--from", "-2", "--stream", "rare"]) == [3, 1500])
        #expect(try Self.tailed(dir.path, ["--from", "-1", "--stream", "rare"]) == [1500])
        #expect(try Self.tailed(dir.path, ["--from", "-5", "--stream", "rare"]) == [3, 1500])
        #expect(try Self.tailed(dir.path, ["--from", "-3", "--stream-prefix", "rare"]) == [3, 1500, 1998])
        #expect(try Self.tailed(dir.path, ["--from", "-2", "--stream-prefix", "s-"]) == [1997, 1999])
    }

    /// With -f, --from -N prints those, then what is appended; --from end
    /// prints only what is appended after it started.
    @Test func followFromTheLastNOrTheEnd() throws {
        let dir = TemporaryDirectory("cli")
        try CLITests.timedFixture(dir.path, count: 5)
        let last = try CLIProcess.start(["tail", dir.path, "-f", "--json", "--from", "-2"])
        defer { last.kill() }
        let end = try CLIProcess.start(["tail", dir.path, "-f", "--json", "--from", "end", "--stream", "s-1"])
        defer { end.kill() }
        #expect(CLITests.positions(last.waitForLines(2, timeout: 30)) == [3, 4], "stderr: \(last.stderrText)")
        // When `end` took the end is not visible from here: append two events (one of s-1) at a time until it prints.
        var appended = 5
        while end.lines.isEmpty && appended < 45 {
            try CLITests.timedFixture(dir.path, count: 2, first: appended)
            appended += 2
            end.waitForLines(1, timeout: 0.5)
        }
        let printed = CLITests.positions(end.lines)
        try #require(!printed.isEmpty, "stderr: \(end.stderrText)")
        #expect(printed.allSatisfy { $0 >= 5 && $0 % 2 == 1 }, "only appended events of s-1: \(printed)")
        #expect(CLITests.positions(last.waitForLines(2 + appended - 5, timeout: 30)) == [3] + Array(4..<appended), "stderr: \(last.stderrText)")
        for tail in [last, end] {
            kill(tail.processIdentifier, SIGTERM)
            let output = try #require(tail.waitForExit(timeout: 30))
            #expect(!output.signaled && output.status == 0, "\(output)")
        }
    }

    @Test func badStartsAreUsageErrors() throws {
        let dir = TemporaryDirectory("cli")
        try CLITests.timedFixture(dir.path, count: 3)
        for value in ["x", "-", "-1x", "--json", "1.5", "2023-11-14T22:13:20", "2023-13-01T00:00:00Z", "begin", "-99999999999999999999"] {
            let output = try CLIProcess.run(["tail", dir.path, "--from", value])
            #expect(output.status == 2, "\(value): \(output)")
            #expect(output.stderr.contains("--from"), "\(value): \(output.stderr)")
            #expect(output.stdout.isEmpty, "\(value)")
        }
        let both = try CLIProcess.run(["tail", dir.path, "--stream", "s-0", "--stream-prefix", "s-"])
        #expect(both.status == 2 && both.stderr.contains("--stream-prefix"), "\(both)")
        let cursor = try CLIProcess.run(["tail", dir.path, "--cursor", "c", "--from", "-1"])
        #expect(cursor.status == 2, "\(cursor)")
    }

    @Test func startsParse() throws {
        #expect(try TailStart.parse("start") == .start)
        #expect(try TailStart.parse("end") == .end)
        #expect(try TailStart.parse("0") == .position(0))
        #expect(try TailStart.parse("18446744073709551615") == .position(.max))
        #expect(try TailStart.parse("-5") == .last(5))
        #expect(try TailStart.parse("2023-11-14T22:13:20.5Z") == .time(CLITests.fixtureTime + 500_000))
        #expect(throws: (any Error).self) { try TailStart.parse("") }
        #expect(throws: (any Error).self) { try TailStart.parse("+5") }
    }
}
