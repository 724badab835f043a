import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// The `eventlog` command-line tool, run as a real child process.
@Suite struct CLITests {
    // MARK: Helpers

    static func object(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// `count` events of about 130 bytes, spread over 5 streams.
    static func eventLines(_ count: Int, from first: Int = 0) -> [String] {
        (first..<(first + count)).map { i in
            #"{"stream": "s-\#(i % 5)", "type": "Tick", "data": {"i": \#(i), "pad": "\#(String(repeating: "x", count: 100))"}}"#
        }
    }

    static func stdin(_ lines: [String]) -> String { lines.map { $0 + "\n" }.joined() }

    /// Appends `lines` with `eventlog append` and checks that every one was acknowledged.
    static func append(_ lines: [String], to directory: String, options: [String] = []) throws {
        let output = try CLIProcess.run(["append", directory] + options, stdin: stdin(lines))
        #expect(output.status == 0, "\(output)")
        #expect(output.lines.count == lines.count)
    }

    // MARK: append + dump

    /// (raw data as written on the line, the rest of the line after it)
    static let roundTripEvents: [(stream: String, type: String, data: String, rest: String)] = [
        ("order-1", "OrderPlaced", #"{"total": 10.50, "items": [ {"sku":"a","qty":1} ], "note": "caf\u00e9 \"x\""}"#,
         #", "metadata": {"eventId": "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "schemaVersion": 3, "correlationId": "corr-1", "causationId": "cmd-1", "tenant": "acme", "region": "eu"}"#),
        ("order-1", "ItemAdded", "[1, 2e10, -0.5, true, false, null]", #", "timestamp": 1700000000123456"#),
        ("order-2", "Note", #""plain \ud83d\ude00 text""#, #", "metadata": {"contentType": "text/plain"}"#),
        ("order-2", "Zero", "0", ""),
        ("日本", "Unicode", #"{"名前":"値",   "empty": {}, "list": []}"#, #", "metadata": null"#),
    ]

    static func roundTripLine(_ e: (stream: String, type: String, data: String, rest: String)) -> String {
        #"{"stream": "\#(e.stream)", "type": "\#(e.type)", "data":  \#(e.data) \#(e.rest)}"#
    }

    @Test func appendThenDumpRoundTrip() throws {
        let dir = TemporaryDirectory("cli")
        let log = dir.sub("log")  // created by append
        let lines = Self.roundTripEvents.map(Self.roundTripLine)
        let appended = try CLIProcess.run(["append", log], stdin: Self.stdin(lines))
        #expect(appended.status == 0, "\(appended)")
        #expect(appended.stderr.isEmpty)
        try #require(appended.lines.count == lines.count)
        #expect(appended.lines[0] == #"{"position": 0, "stream": "order-1"}"#)
        for (i, ack) in appended.lines.enumerated() {
            let fields = try #require(Self.object(ack))
            #expect(fields["position"] as? Int == i)
            #expect(fields["stream"] as? String == Self.roundTripEvents[i].stream)
        }

        let dumped = try CLIProcess.run(["dump", log, "--json"])
        #expect(dumped.status == 0, "\(dumped)")
        try #require(dumped.lines.count == lines.count)
        for (i, line) in dumped.lines.enumerated() {
            let expected = Self.roundTripEvents[i]
            let fields = try #require(Self.object(line), "not JSON: \(line)")
            #expect(fields["position"] as? Int == i)
            #expect(fields["stream"] as? String == expected.stream)
            #expect(fields["type"] as? String == expected.type)
            // The version within its stream: the number of earlier events of that stream.
            let expectedVersion = Self.roundTripEvents[..<i].filter { $0.stream == expected.stream }.count
            #expect(fields["version"] as? Int == expectedVersion)
            #expect(fields["timestamp"] is Int)
            if i == 2 {
                // text/plain: the bytes travel as base64.
                #expect(fields["data"] == nil)
                let base64 = try #require(fields["data_base64"] as? String)
                #expect(Data(base64Encoded: base64) == Data(expected.data.utf8))
            } else {
                // The original bytes, not a re-serialization.
                #expect(line.contains("\"data\":" + expected.data + ",\"metadata\":"), "\(line)")
                #expect(fields["data_base64"] == nil)
            }
        }
        let first = try #require(Self.object(dumped.lines[0])?["metadata"] as? [String: Any])
        #expect(first["eventId"] as? String == "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        #expect(first["schemaVersion"] as? Int == 3)
        #expect(first["contentType"] as? String == "application/json")
        #expect(first["correlationId"] as? String == "corr-1")
        #expect(first["causationId"] as? String == "cmd-1")
        #expect(first["tenant"] as? String == "acme")
        #expect(first["region"] as? String == "eu")
        #expect(first.count == 7)
        #expect(Self.object(dumped.lines[1])?["timestamp"] as? Int == 1_700_000_000_123_456)
        #expect((Self.object(dumped.lines[2])?["metadata"] as? [String: Any])?["contentType"] as? String == "text/plain")
        #expect((Self.object(dumped.lines[3])?["metadata"] as? [String: String]) == ["contentType": "application/json"])

        // What the library stored, byte for byte.
        let reader = try Log.open(at: log, options: LogOptions(readOnly: true))
        let events = try reader.events(from: 0)
        try #require(events.count == lines.count)
        for (event, expected) in zip(events, Self.roundTripEvents) {
            #expect(event.data == Array(expected.data.utf8))
            #expect(event.stream == expected.stream)
            #expect(event.type == expected.type)
        }
        #expect(events[0].metadata == EventMetadata(
            eventID: UUID(uuidString: "3F2504E0-4F89-11D3-9A0C-0305E82C3301"), schemaVersion: 3,
            contentType: "application/json", correlationID: "corr-1", causationID: "cmd-1",
            headers: [.init("tenant", "acme"), .init("region", "eu")]))
        #expect(events[1].timestamp == 1_700_000_000_123_456)
        try reader.close()

        // Text output, and --to is exclusive.
        let text = try CLIProcess.run(["dump", log, "--from", "1", "--to", "3"])
        #expect(text.status == 0, "\(text)")
        try #require(text.lines.count == 2)
        #expect(text.lines[0] == "1  2023-11-14T22:13:20.123456Z  order-1  v1  ItemAdded  [1, 2e10, -0.5, true, false, null]")
        #expect(text.lines[1].hasPrefix("2  "))
        #expect(text.lines[1].hasSuffix(#"  order-2  v0  Note  "plain \ud83d\ude00 text""#))

        let window = try CLIProcess.run(["dump", log, "--json", "--from", "3"])
        #expect(window.lines.compactMap { Self.object($0)?["position"] as? Int } == [3, 4])
    }

    @Test func dumpPrintsNonUTF8DataAsBase64() throws {
        let dir = TemporaryDirectory("cli")
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try log.append([
            NewEvent(stream: "bin", type: "Blob", data: [0xFF, 0x00, 0x41], timestamp: 0),
            NewEvent(stream: "bin", type: "Json", data: Array("{\n \"a\": 1\n}".utf8), metadata: EventMetadata(contentType: "application/json")),
            NewEvent(stream: "bin", type: "BadJson", data: Array("{oops".utf8), metadata: EventMetadata(contentType: "application/json")),
        ])
        try log.close()
        let text = try CLIProcess.run(["dump", dir.path])
        #expect(text.status == 0, "\(text)")
        #expect(text.lines.first == "0  1970-01-01T00:00:00.000000Z  bin  v0  Blob  base64:/wBB")
        let json = try CLIProcess.run(["dump", dir.path, "--json"])
        try #require(json.lines.count == 3)
        #expect(Self.object(json.lines[0])?["data_base64"] as? String == "/wBB")
        // Line breaks inside JSON data become spaces, keeping one event per line.
        #expect(json.lines[1].contains(#""data":{  "a": 1 },"#), "\(json.lines[1])")
        #expect(Self.object(json.lines[2])?["data_base64"] as? String == Data("{oops".utf8).base64EncodedString())
    }

    // MARK: Malformed input

    static let malformedLines: [(line: String, reason: String)] = [
        ("this is not json", "invalid JSON"),
        (#"["stream", "type"]"#, "expected a JSON object"),
        (#"{"type": "T", "data": 1}"#, #"missing "stream""#),
        (#"{"stream": "", "type": "T", "data": 1}"#, #""stream" is empty"#),
        (#"{"stream": "s", "type": 7, "data": 1}"#, #""type" must be a string"#),
        (#"{"stream": "s", "type": "T"}"#, #"missing "data""#),
        (#"{"stream": "s", "type": "T", "data": 1, "metadata": "m"}"#, #""metadata" must be an object"#),
        (#"{"stream": "s", "type": "T", "data": 1, "metadata": {"tenant": 5}}"#, #""metadata.tenant" must be a string"#),
        (#"{"stream": "s", "type": "T", "data": 1, "metadata": {"eventId": "nope"}}"#, "is not a UUID"),
        (#"{"stream": "s", "type": "T", "data": 1, "metadata": {"schemaVersion": -1}}"#, "schemaVersion"),
        (#"{"stream": "s", "type": "T", "data": {"a": 1,}}"#, "invalid JSON"),
        (#"{"stream": "s", "type": "T", "data": 1, "timestamp": 1.5}"#, "timestamp"),
        (#"{"stream": "s", "type": "T", "data": 1, "data": 2}"#, "duplicate key"),
        (#"{"stream": "\#(String(repeating: "s", count: 300))", "type": "T", "data": 1}"#, "stream name bytes"),
    ]

    @Test(arguments: malformedLines)
    func malformedLineStopsWithItsLineNumber(line: String, reason: String) throws {
        let dir = TemporaryDirectory("cli")
        // Lines 1 and 3 valid, 2 empty (skipped), 4 malformed, 5 valid but never reached.
        let input = Self.eventLines(1)[0] + "\n\n" + Self.eventLines(1, from: 1)[0] + "\n" + line + "\n"
            + Self.eventLines(1, from: 2)[0] + "\n"
        let output = try CLIProcess.run(["append", dir.path], stdin: input)
        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("line 4"), "\(output.stderr)")
        #expect(output.stderr.contains(reason), "\(output.stderr)")
        #expect(output.lines.count == 2)
        let dumped = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dumped.status == 0, "\(dumped)")
        #expect(dumped.lines.compactMap { Self.object($0)?["position"] as? Int } == [0, 1])
        #expect(dumped.lines.compactMap { Self.object($0)?["stream"] as? String } == ["s-0", "s-1"])
    }

    @Test func malformedLineAfterAFullBatchKeepsEveryEarlierLine() throws {
        let dir = TemporaryDirectory("cli")
        let input = Self.stdin(Self.eventLines(25)) + "{broken\n"
        let output = try CLIProcess.run(["append", dir.path, "--batch", "10", "--durability", "interval", "--interval-ms", "5"], stdin: input)
        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("line 26"), "\(output.stderr)")
        #expect(output.lines.count == 25)
        let reader = try Log.open(at: dir.path, options: LogOptions(readOnly: true))
        #expect(reader.endPosition == 25)
        try reader.close()
    }

    // MARK: Batching, live processes

    @Test func batchIsCutWhenStdinPauses() throws {
        let dir = TemporaryDirectory("cli")
        // A batch limit that is never reached: only the early cut can acknowledge these.
        let child = try CLIProcess.start(["append", dir.path, "--batch", "1000"])
        defer { child.kill() }
        let lines = Self.eventLines(5)
        for line in lines.prefix(3) { try child.writeLine(line) }
        let first = child.waitForLines(3, timeout: 30)
        try #require(first.count == 3, "stderr: \(child.stderrText)")
        #expect(first.compactMap { Self.object($0)?["position"] as? Int } == [0, 1, 2])

        // A writer holds the log: inspect says so, and a second writer is refused.
        let inspection = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspection.status == 0, "\(inspection)")
        #expect(Self.object(inspection.stdout)?["last_shutdown"] as? String == "open")
        let second = try CLIProcess.run(["append", dir.path], stdin: Self.stdin(Self.eventLines(1)))
        #expect(second.status == 1, "\(second)")
        #expect(second.stderr.contains("another process"), "\(second.stderr)")
        // A reader beside the writer sees what was acknowledged.
        let dumped = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dumped.status == 0, "\(dumped)")
        #expect(dumped.lines.count == 3)

        for line in lines.suffix(2) { try child.writeLine(line) }
        #expect(child.waitForLines(5, timeout: 30).count == 5)
        child.closeStdin()
        let output = try #require(child.waitForExit(timeout: 30))
        #expect(output.status == 0, "\(output)")
        #expect(!output.signaled)
        #expect(output.lines.count == 5)
    }

    @Test func acknowledgedEventsSurviveKill() throws {
        let dir = TemporaryDirectory("cli")
        let child = try CLIProcess.start(["append", dir.path])
        for line in Self.eventLines(4) { try child.writeLine(line) }
        let acknowledged = child.waitForLines(4, timeout: 30)
        try #require(acknowledged.count == 4, "stderr: \(child.stderrText)")
        let killed = try #require(child.kill())
        #expect(killed.signaled)
        #expect(killed.status == SIGKILL)

        let inspection = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(Self.object(inspection.stdout)?["last_shutdown"] as? String == "unclean")
        let dumped = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dumped.status == 0, "\(dumped)")
        #expect(dumped.lines.compactMap { Self.object($0)?["position"] as? Int } == [0, 1, 2, 3])
    }

    // MARK: verify

    @Test func verifyPassesASoundLogAndNamesADamagedByte() throws {
        let dir = TemporaryDirectory("cli")
        try Self.append(Self.eventLines(300), to: dir.path, options: ["--segment-bytes", "4096", "--batch", "10", "--durability", "none"])
        let sound = try CLIProcess.run(["verify", dir.path])
        #expect(sound.status == 0, "\(sound)")
        #expect(sound.lines.count == 1)
        #expect(sound.stdout.contains("300 events"), "\(sound.stdout)")

        // Flip a byte inside the records of the first batch of a sealed segment.
        let segments = dir.files().filter { $0.hasSuffix(".segment") }
        try #require(segments.count >= 3)
        let damaged = dir.sub(segments[1])
        let flipped = SegmentHeader.size + BatchHeader.size + 20
        Damage.flipBit(damaged, at: flipped)

        let report = try CLIProcess.run(["verify", dir.path])
        #expect(report.status == 1, "\(report)")
        #expect(!report.stderr.isEmpty)
        let located = report.lines.compactMap { line -> Int? in
            guard line.hasPrefix(damaged + " at byte ") else { return nil }
            let rest = line.dropFirst((damaged + " at byte ").count)
            return Int(rest.prefix { $0.isNumber })
        }
        try #require(!located.isEmpty, "no problem names \(damaged): \(report.stdout)")
        // The offset is the damaged batch or record, at or before the flipped byte and past the segment header.
        #expect(located.contains { $0 >= SegmentHeader.size && $0 <= flipped }, "\(report.stdout)")

        // dump stops at the damage with exit 1, naming the file.
        let dumped = try CLIProcess.run(["dump", dir.path])
        #expect(dumped.status == 1)
        #expect(dumped.stderr.contains(damaged), "\(dumped.stderr)")
    }

    @Test func missingLogFailsWithExitCode1() throws {
        let dir = TemporaryDirectory("cli")
        for command in ["dump", "verify", "inspect"] {
            let output = try CLIProcess.run([command, dir.sub("nothing-here")])
            #expect(output.status == 1, "\(command): \(output)")
            #expect(output.stderr.contains("no event log"), "\(command): \(output.stderr)")
            #expect(output.stdout.isEmpty)
        }
    }

    // MARK: inspect

    @Test func inspectJSONDescribesSegmentsAndTotals() throws {
        let dir = TemporaryDirectory("cli")
        try Self.append(Self.eventLines(200), to: dir.path, options: ["--segment-bytes", "4096", "--batch", "7", "--compression", "lz4"])
        let output = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(output.status == 0, "\(output)")
        let root = try #require(Self.object(output.stdout), "not JSON: \(output.stdout)")
        #expect(root["path"] as? String == dir.path)
        #expect(root["format_version"] as? Int == 1)
        #expect(UUID(uuidString: root["log_id"] as? String ?? "") != nil)
        #expect((root["created_at"] as? Int ?? 0) > 1_600_000_000_000_000)
        #expect(root["last_shutdown"] as? String == "clean")
        #expect((root["last_shutdown_at"] as? Int ?? 0) >= (root["created_at"] as? Int ?? .max))
        #expect(root["start_position"] as? Int == 0)
        #expect(root["end_position"] as? Int == 200)

        let segments = try #require(root["segments"] as? [[String: Any]])
        try #require(segments.count >= 2)
        let keys: Set<String> = [
            "file", "base_position", "end_position", "batches", "events", "bytes", "allocated_bytes",
            "first_timestamp", "last_timestamp", "sealed",
        ]
        var next = 0
        for (i, segment) in segments.enumerated() {
            #expect(Set(segment.keys) == keys)
            #expect(segment["base_position"] as? Int == next)
            next = segment["end_position"] as? Int ?? -1
            #expect(segment["sealed"] as? Bool == (i < segments.count - 1))
            #expect((segment["file"] as? String)?.hasSuffix(".segment") == true)
        }
        #expect(next == 200)
        let totals = try #require(root["totals"] as? [String: Int])
        #expect(Set(totals.keys) == ["segments", "batches", "events", "bytes", "allocated_bytes"])
        #expect(totals["segments"] == segments.count)
        #expect(totals["events"] == 200)
        #expect(totals["batches"] == segments.reduce(0) { $0 + ($1["batches"] as? Int ?? 0) })
        #expect(totals["bytes"] == segments.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) })

        let text = try CLIProcess.run(["inspect", dir.path])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("format version  1"))
        #expect(text.stdout.contains("last shutdown   clean at "))
        #expect(text.lines.contains { $0.hasPrefix("FILE ") && $0.hasSuffix("STATE") })
        #expect(text.lines.filter { $0.hasSuffix("sealed") }.count == segments.count - 1)
    }
}

// MARK: - The JSON scanner behind `append`

extension CLITests {
    @Suite struct JSONScannerTests {
        static let valid = [
            "0", "-0", "1.5e-3", "-12E+2", "\"\"", "\"a\\u00e9\\n\\\"\"", "\"日本\"", "true", "false", "null", "[]", "{}",
            " [1, [2, [3]], {\"a\": {\"b\": null}}] ", "{\"\": 1}", "\"\\ud83d\\ude00\"",
        ]
        static let invalid = [
            "", " ", "01", "1.", ".5", "-", "1e", "+1", "[1,]", "{\"a\":1,}", "{a: 1}", "'x'", "\"\\x\"", "\"\\u12\"",
            "\"tab\there\"", "tru", "nul", "[1 2]", "{\"a\" 1}", "1 2", "\"open", "[", "{\"a\":", "\u{7F}",
        ]

        @Test(arguments: valid)
        func acceptsValidJSON(_ text: String) {
            #expect(JSONScanner.isValid(Array(text.utf8)))
        }

        @Test(arguments: invalid)
        func rejectsInvalidJSON(_ text: String) {
            #expect(!JSONScanner.isValid(Array(text.utf8)))
        }

        @Test func rejectsMalformedUTF8AndDeepNesting() {
            #expect(!JSONScanner.isValid([0x22, 0xC3, 0x22]))  // truncated sequence
            #expect(!JSONScanner.isValid([0x22, 0xC0, 0x80, 0x22]))  // overlong
            #expect(!JSONScanner.isValid([0x22, 0xED, 0xA0, 0x80, 0x22]))  // UTF-16 surrogate
            #expect(JSONScanner.isValid(Array((String(repeating: "[", count: 512) + String(repeating: "]", count: 512)).utf8)))
            #expect(!JSONScanner.isValid(Array((String(repeating: "[", count: 513) + String(repeating: "]", count: 513)).utf8)))
        }

        @Test func eventLineKeepsTheRawDataBytes() throws {
            let line = Array(#"{ "data" :\#t{"b": [1 ,2]} , "type": "T\u00e9", "stream": "s\"1", "timestamp": -5 }"#.utf8)
            let event = try JSONEventLine.parse(line)
            #expect(event.data == Array(#"{"b": [1 ,2]}"#.utf8))
            #expect(event.type == "Té")
            #expect(event.stream == "s\"1")
            #expect(event.timestamp == -5)
            #expect(event.metadata == EventMetadata(contentType: "application/json"))
        }
    }
}
