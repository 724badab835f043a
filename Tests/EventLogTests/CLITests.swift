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

    /// An input key `append` does not know is an error naming it and its
    /// line (exit 2, the lines before it acknowledged), with the known key
    /// it probably meant: a misspelt expectation must never be dropped.
    @Test func appendRefusesUnknownKeysAndMarkers() throws {
        let dir = TemporaryDirectory("cli")
        let log = dir.sub("log")
        let cases: [(line: String, message: String)] = [
            (#"{"stream":"s","type":"T","data":1,"expectedversion":0}"#, #"line 2: unknown key "expectedversion" (did you mean "expected_version"?)"#),
            (#"{"stream":"s","type":"T","data":1,"expected_version":0,"expectedVersion":0}"#, #"line 2: both "expected_version" and "expectedVersion""#),
            (#"{"stream":"s","type":"T","data":1,"colour":"red"}"#, #"line 2: unknown key "colour""#),
            (#"{"stream":"s","type":"T","data":1,"marker":true}"#, #"line 2: a stream marker ("marker": true) cannot be appended"#),
            (#"{"stream":"s","type":"T","data":1,"version":"7"}"#, #"line 2: "version" must be an integer or null"#),
            (#"{"stream":"s","type":"T","data":1,"data_base64":"AA=="}"#, #"line 2: both "data" and "data_base64""#),
            (#"{"stream":"s","type":"T","data_base64":"not base64!"}"#, #"line 2: "data_base64" is not base64"#),
        ]
        var acknowledged = 0
        for (line, message) in cases {
            let first = #"{"stream":"ok","type":"T","data":\#(acknowledged)}"#
            let output = try CLIProcess.run(["append", log], stdin: Self.stdin([first, line]))
            #expect(output.status == 2, "\(line): \(output)")
            #expect(output.stderr.contains("eventlog append: " + message), "\(line): \(output.stderr)")
            #expect(output.lines.count == 1, "the line before is acknowledged: \(output)")
            acknowledged += 1
        }
        let reader = try Log.open(at: log, options: LogOptions(readOnly: true))
        #expect(try reader.events(from: 0).map(\.stream) == Array(repeating: "ok", count: acknowledged))
        try reader.close()
        // Binary data in base64, and what dump --json adds, appended.
        let binary = try CLIProcess.run(
            ["append", log], stdin: Self.stdin([#"{"stream":"b","type":"T","data_base64":"AAEC/w==","position":0,"version":null,"marker":false}"#]))
        #expect(binary.status == 0, "\(binary)")
        let stored = try Log.open(at: log, options: LogOptions(readOnly: true))
        let event = try stored.event(at: UInt64(acknowledged))
        #expect(event.data == [0, 1, 2, 255])
        #expect(event.metadata.contentType == "application/octet-stream")
        try stored.close()
        // --version, and an unknown option is a usage error: 2.
        let version = try CLIProcess.run(["--version"])
        #expect(version.status == 0 && version.stdout.contains("format version \(Log.formatVersion)"), "\(version)")
        #expect(try CLIProcess.run(["dump", log, "--no-such-option"]).status == 2)
        // The completion scripts README documents name every command.
        for shell in ["bash", "zsh", "fish"] {
            let script = try CLIProcess.run(["--generate-completion-script", shell])
            #expect(script.status == 0, "\(shell): \(script)")
            for command in ["append", "dump", "repair", "stats", "streams", "config", "compact", "verify", "export", "import"] {
                #expect(script.stdout.contains(command), "\(shell) completion lacks \(command)")
            }
        }
    }

    @Test func appendThenDumpRoundTrip() throws {
        let dir = TemporaryDirectory("cli")
        let log = dir.sub("log")  // created by append
        let lines = Self.roundTripEvents.map(Self.roundTripLine)
        let appended = try CLIProcess.run(["append", log], stdin: Self.stdin(lines))
        #expect(appended.status == 0, "\(appended)")
        #expect(appended.stderr.isEmpty)
        try #require(appended.lines.count == lines.count)
        #expect(appended.lines[0] == #"{"position": 0, "stream": "order-1", "version": 0}"#)
        for (i, ack) in appended.lines.enumerated() {
            let fields = try #require(Self.object(ack))
            #expect(fields["position"] as? Int == i)
            #expect(fields["stream"] as? String == Self.roundTripEvents[i].stream)
            let version = Self.roundTripEvents[..<i].filter { $0.stream == Self.roundTripEvents[i].stream }.count
            #expect(fields["version"] as? Int == version)
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
        // snake_case, as every key the tool prints (the input used camelCase: still read).
        #expect(first["event_id"] as? String == "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        #expect(first["schema_version"] as? Int == 3)
        #expect(first["content_type"] as? String == "application/json")
        #expect(first["correlation_id"] as? String == "corr-1")
        #expect(first["causation_id"] as? String == "cmd-1")
        #expect(first["tenant"] as? String == "acme")
        #expect(first["region"] as? String == "eu")
        #expect(first.count == 7)
        #expect(Self.object(dumped.lines[1])?["timestamp"] as? Int == 1_700_000_000_123_456)
        #expect((Self.object(dumped.lines[2])?["metadata"] as? [String: Any])?["content_type"] as? String == "text/plain")
        #expect((Self.object(dumped.lines[3])?["metadata"] as? [String: String]) == ["content_type": "application/json"])

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

        // dump --json appends again as it is (data_base64, position, version
        // included), and the copy dumps the same, byte for byte.
        let copy = dir.sub("copy")
        let again = try CLIProcess.run(["append", copy], stdin: Self.stdin(dumped.lines))
        #expect(again.status == 0, "\(again)")
        #expect(try CLIProcess.run(["dump", copy, "--json"]).lines == dumped.lines)

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
        (#"{"stream": "s", "type": "$deleted", "data": 1}"#, "reserved for stream markers"),
        (#"{"stream": "s", "type": "T", "data": 1, "id": "nope"}"#, #""id" is not a UUID"#),
        (#"{"stream": "s", "type": "T", "data": 1, "id": "3F2504E0-4F89-11D3-9A0C-0305E82C3301", "metadata": {"eventId": "3F2504E0-4F89-11D3-9A0C-0305E82C3302"}}"#,
         #""id" and "metadata.event_id" differ"#),
        (#"{"stream": "s", "type": "T", "data": 1, "expectedVersion": -1}"#, #""expected_version" must be"#),
        (#"{"stream": "s", "type": "T", "data": 1, "expectedVersion": "soon"}"#, #"found "soon""#),
        (#"{"stream": "s", "type": "T", "data": 1, "expectedVersion": 1.5}"#, #""expected_version" must be"#),
        (#"{"stream": "s", "type": "T", "data": 1, "expectedVersion": "4"}"#, #"found "4""#),
        (#"{"stream": "s", "type": "T", "data": 1, "expectedVersion": [0]}"#, "found an array"),
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
        #expect(second.status == 2, "\(second)")
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

    // MARK: Streams: expected versions, retries

    /// `{"stream": S, "type": T, "data": N, ...extra}` as one input line.
    static func line(_ stream: String, type: String = "T", data: Int = 0, _ extra: String = "") -> String {
        #"{"stream": "\#(stream)", "type": "\#(type)", "data": \#(data)\#(extra.isEmpty ? "" : ", " + extra)}"#
    }

    /// The acknowledgement lines as (position, stream, version); nil for a line that is not one.
    static func acks(_ lines: [String]) -> [Ack?] {
        lines.map { line in
            guard let fields = object(line), let position = fields["position"] as? Int, let stream = fields["stream"] as? String,
                  let version = fields["version"] as? Int, fields.count == 3
            else { return nil }
            return Ack(position: position, stream: stream, version: version)
        }
    }

    struct Ack: Equatable, CustomStringConvertible {
        var position: Int
        var stream: String
        var version: Int
        var description: String { "\(position):\(stream)@\(version)" }
    }

    /// Every event of the log as (position, stream, version), markers included, from `dump --json`.
    static func dumped(_ directory: String) throws -> [Ack] {
        let output = try CLIProcess.run(["dump", directory, "--json"])
        #expect(output.status == 0, "\(output)")
        return output.lines.compactMap { line in
            guard let f = object(line), let p = f["position"] as? Int, let s = f["stream"] as? String, let v = f["version"] as? Int
            else { return nil }
            return Ack(position: p, stream: s, version: v)
        }
    }

    @Test func perLineExpectedVersionsAndAConflictAfterTheAcknowledgedLines() throws {
        let dir = TemporaryDirectory("cli")
        let first = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([
            Self.line("a", #""expectedVersion": "no_stream""#),
            Self.line("b", #""expectedVersion": "no_stream""#),
            Self.line("a"),
            Self.line("a", #""expected_version": 1"#),  // after a@0 and a@1: starts a batch of its own
            Self.line("b", #""expected_version": "stream_exists""#),
            Self.line("c", #""expectedVersion": "any""#),
        ]))
        #expect(first.status == 0, "\(first)")
        #expect(first.stderr.isEmpty)
        #expect(Self.acks(first.lines) == [
            Ack(position: 0, stream: "a", version: 0), Ack(position: 1, stream: "b", version: 0),
            Ack(position: 2, stream: "a", version: 1), Ack(position: 3, stream: "a", version: 2),
            Ack(position: 4, stream: "b", version: 1), Ack(position: 5, stream: "c", version: 0),
        ])

        // Line 3 conflicts. Lines 1-4 share a batch when read at once; lines 1 and 2 are
        // acknowledged all the same, and nothing at or after line 3 is written.
        let second = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([
            Self.line("c", data: 1),
            Self.line("a", data: 2, #""expected_version": 2"#),
            Self.line("b", data: 3, #""expected_version": 5"#),
            Self.line("c", data: 4),
            Self.line("d", data: 5),
        ]))
        #expect(second.status == 3, "\(second)")
        #expect(second.stderr.contains("line 3: stream b: expected version 5, actual 1"), "\(second.stderr)")
        #expect(Self.acks(second.lines) == [Ack(position: 6, stream: "c", version: 1), Ack(position: 7, stream: "a", version: 3)])
        #expect(try Self.dumped(dir.path).count == 8)

        // A stream that does not exist has no version: "actual no stream".
        let third = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([Self.line("new", #""expectedVersion": 0"#)]))
        #expect(third.status == 3, "\(third)")
        #expect(third.stderr.contains("line 1: stream new: expected version 0, actual no stream"), "\(third.stderr)")
        #expect(third.lines.isEmpty)
        let fourth = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([Self.line("a", #""expectedVersion": "no_stream""#)]))
        #expect(fourth.status == 3, "\(fourth)")
        #expect(fourth.stderr.contains("line 1: stream a: expected version no stream, actual 3"), "\(fourth.stderr)")
        #expect(try Self.dumped(dir.path).count == 8)
    }

    @Test func expectedVersionOptionAppliesBeforeEachStreamsFirstLine() throws {
        let dir = TemporaryDirectory("cli")
        // --batch 2 spreads x over two batches: the second expects the version the first left.
        let created = try CLIProcess.run(
            ["append", dir.path, "--expected-version", "no_stream", "--batch", "2"],
            stdin: Self.stdin([Self.line("x"), Self.line("y"), Self.line("x"), Self.line("x"), Self.line("y")]))
        #expect(created.status == 0, "\(created)")
        #expect(Self.acks(created.lines).map { $0?.version } == [0, 0, 1, 2, 1])

        let exact = try CLIProcess.run(["append", dir.path, "--expected-version", "2"], stdin: Self.stdin([Self.line("x"), Self.line("x")]))
        #expect(exact.status == 0, "\(exact)")
        #expect(Self.acks(exact.lines) == [Ack(position: 5, stream: "x", version: 3), Ack(position: 6, stream: "x", version: 4)])

        // z is new, x is not: z is acknowledged, x ends the command, the y after it is not written.
        let conflict = try CLIProcess.run(
            ["append", dir.path, "--expected-version", "no_stream"], stdin: Self.stdin([Self.line("z"), Self.line("x"), Self.line("w")]))
        #expect(conflict.status == 3, "\(conflict)")
        #expect(conflict.stderr.contains("line 2: stream x: expected version no stream, actual 4"), "\(conflict.stderr)")
        #expect(Self.acks(conflict.lines) == [Ack(position: 7, stream: "z", version: 0)])
        #expect(try Self.dumped(dir.path).map(\.stream) == ["x", "y", "x", "x", "y", "x", "x", "z"])

        // A line's own expectation wins over the option.
        let own = try CLIProcess.run(
            ["append", dir.path, "--expected-version", "no_stream"], stdin: Self.stdin([Self.line("y", #""expectedVersion": 1"#)]))
        #expect(own.status == 0, "\(own)")
        #expect(Self.acks(own.lines) == [Ack(position: 8, stream: "y", version: 2)])

        let usage = try CLIProcess.run(["append", dir.path, "--expected-version", "-1"])
        #expect(usage.status == 2, "\(usage)")
    }

    @Test func rerunningAnInputWithIdsIsARetry() throws {
        let dir = TemporaryDirectory("cli")
        func id(_ n: Int) -> String { #""id": "00000000-0000-4000-8000-\#(String(format: "%012d", n))""# }
        // Each stream's lines form one batch (the input is read at once), as the retry needs.
        let input = Self.stdin([
            Self.line("r-1", data: 1, #""expectedVersion": "no_stream", "# + id(1)),
            Self.line("r-2", data: 2, #""expectedVersion": "no_stream", "# + id(2)),
            Self.line("r-1", data: 3, id(3)),
            Self.line("r-3", data: 4, #""expectedVersion": "any", "# + id(4)),
            Self.line("r-2", data: 5, id(5)),
        ])
        let first = try CLIProcess.run(["append", dir.path], stdin: input)
        #expect(first.status == 0, "\(first)")
        #expect(Self.acks(first.lines).map { $0?.description } == ["0:r-1@0", "1:r-2@0", "2:r-1@1", "3:r-3@0", "4:r-2@1"])
        let second = try CLIProcess.run(["append", dir.path], stdin: input)
        #expect(second.status == 0, "\(second)")
        #expect(second.stderr.isEmpty)
        #expect(second.lines == first.lines)
        #expect(try Self.dumped(dir.path).count == 5)

        // The id is the event id.
        let dump = try CLIProcess.run(["dump", dir.path, "--json", "--count", "1"])
        let metadata = try #require(Self.object(dump.lines.first ?? "")?["metadata"] as? [String: Any])
        #expect(metadata["event_id"] as? String == "00000000-0000-4000-8000-000000000001")

        // Some of the same ids but not all: neither a retry nor a new append.
        let partial = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([
            Self.line("r-1", data: 1, #""expectedVersion": "no_stream", "# + id(1)),
            Self.line("r-1", data: 6, id(6)),
        ]))
        #expect(partial.status == 3, "\(partial)")
        #expect(partial.stderr.contains("line 1: stream r-1: the append repeats some"), "\(partial.stderr)")
        #expect(partial.lines.isEmpty)
        #expect(try Self.dumped(dir.path).count == 5)
    }

    // MARK: Streams: dump and the streams command

    /// order-1: v0 Placed, v1 Paid, v2 Shipped, v3 Paid; order-2: v0 Placed; cust-1: v0 Joined.
    static func streamFixture(_ directory: String) throws {
        try append([
            line("order-1", type: "Placed"), line("order-2", type: "Placed"), line("order-1", type: "Paid"),
            line("cust-1", type: "Joined"), line("order-1", type: "Shipped"), line("order-1", type: "Paid"),
        ], to: directory)
    }

    @Test func dumpOneStreamForwardBackwardAndByType() throws {
        let dir = TemporaryDirectory("cli")
        try Self.streamFixture(dir.path)
        func dump(_ options: [String]) throws -> [String] {
            let output = try CLIProcess.run(["dump", dir.path, "--json"] + options)
            #expect(output.status == 0, "\(options): \(output)")
            return output.lines.map { line in
                let f = Self.object(line) ?? [:]
                return "\(f["position"] as? Int ?? -1):\(f["stream"] as? String ?? "?")@\(f["version"] as? Int ?? -1)"
            }
        }
        #expect(try dump(["--stream", "order-1"]) == ["0:order-1@0", "2:order-1@1", "4:order-1@2", "5:order-1@3"])
        #expect(try dump(["--stream", "order-1", "--backward"]) == ["5:order-1@3", "4:order-1@2", "2:order-1@1", "0:order-1@0"])
        #expect(try dump(["--stream", "order-1", "--from-version", "1", "--count", "2"]) == ["2:order-1@1", "4:order-1@2"])
        #expect(try dump(["--stream", "order-1", "--backward", "--from-version", "2"]) == ["4:order-1@2", "2:order-1@1", "0:order-1@0"])
        #expect(try dump(["--stream", "order-1", "--type", "Paid"]) == ["2:order-1@1", "5:order-1@3"])
        #expect(try dump(["--stream", "order-1", "--type", "Paid", "--count", "1", "--backward"]) == ["5:order-1@3"])
        #expect(try dump(["--stream", "nobody"]) == [])
        #expect(try dump(["--type", "Placed"]) == ["0:order-1@0", "1:order-2@0"])
        #expect(try dump(["--type", "Placed", "--type", "Joined"]) == ["0:order-1@0", "1:order-2@0", "3:cust-1@0"])
        #expect(try dump(["--stream-prefix", "order-"]) == ["0:order-1@0", "1:order-2@0", "2:order-1@1", "4:order-1@2", "5:order-1@3"])
        #expect(try dump(["--stream-prefix", "order-", "--type", "Paid", "--from", "3"]) == ["5:order-1@3"])
        #expect(try dump(["--stream-prefix", "order-", "--to", "3", "--count", "2"]) == ["0:order-1@0", "1:order-2@0"])
        #expect(try dump(["--type", "Paid", "--to", "5"]) == ["2:order-1@1"])
        #expect(try dump(["--count", "2", "--from", "1"]) == ["1:order-2@0", "2:order-1@1"])
        #expect(try dump(["--stream", "order-1", "--count", "0"]) == [])

        let text = try CLIProcess.run(["dump", dir.path, "--stream", "order-2"])
        #expect(text.lines.count == 1)
        #expect(text.lines.first?.hasSuffix("  order-2  v0  Placed  0") == true, "\(text)")

        for usage in [["--backward"], ["--from-version", "1"], ["--stream", "order-1", "--from", "1"], ["--stream", "s", "--stream-prefix", "o"]] {
            let output = try CLIProcess.run(["dump", dir.path] + usage)
            #expect(output.status == 2, "\(usage): \(output)")
        }
    }

    @Test func streamsListsDeletesAndTruncates() throws {
        let dir = TemporaryDirectory("cli")
        try Self.streamFixture(dir.path)

        let listed = try CLIProcess.run(["streams", dir.path, "--json"])
        #expect(listed.status == 0, "\(listed)")
        let rows = listed.lines.compactMap(Self.object)
        #expect(rows.map { $0["stream"] as? String } == ["cust-1", "order-1", "order-2"])
        let keys: Set<String> = [
            "stream", "version", "count", "first_position", "last_position", "deleted", "truncate_before", "max_age_seconds", "max_count",
        ]
        for row in rows { #expect(Set(row.keys) == keys) }
        #expect(rows[1]["version"] as? Int == 3)
        #expect(rows[1]["count"] as? Int == 4)
        #expect(rows[1]["first_position"] as? Int == 0)
        #expect(rows[1]["last_position"] as? Int == 5)
        #expect(rows[1]["deleted"] as? String == "none")
        #expect(rows[1]["truncate_before"] as? Int == 0)
        let prefixed = try CLIProcess.run(["streams", dir.path, "--json", "--prefix", "order-"])
        #expect(prefixed.lines.compactMap { Self.object($0)?["stream"] as? String } == ["order-1", "order-2"])

        // Truncate: a stream read no longer shows the versions below 2.
        let truncated = try CLIProcess.run(["streams", dir.path, "truncate", "order-1", "--before", "2"])
        #expect(truncated.status == 0, "\(truncated)")
        #expect(truncated.stdout.contains("marker at position 6"), "\(truncated.stdout)")
        let hidden = try CLIProcess.run(["dump", dir.path, "--stream", "order-1", "--json"])
        #expect(hidden.lines.compactMap { Self.object($0)?["version"] as? Int } == [2, 3])

        // Soft delete: the stream reads as empty; the next append recreates it, continuing its versions.
        let soft = try CLIProcess.run(["streams", dir.path, "delete", "order-2"])
        #expect(soft.status == 0, "\(soft)")
        #expect(try CLIProcess.run(["dump", dir.path, "--stream", "order-2"]).lines.isEmpty)
        let recreated = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([Self.line("order-2", #""expectedVersion": "no_stream""#)]))
        #expect(recreated.status == 0, "\(recreated)")
        #expect(Self.acks(recreated.lines) == [Ack(position: 8, stream: "order-2", version: 1)])

        // Hard delete: reads fail with exit 1, appends with exit 3.
        let hard = try CLIProcess.run(["streams", dir.path, "delete", "cust-1", "--hard"])
        #expect(hard.status == 0, "\(hard)")
        let refused = try CLIProcess.run(["append", dir.path], stdin: Self.stdin([Self.line("order-1"), Self.line("cust-1")]))
        #expect(refused.status == 3, "\(refused)")
        #expect(refused.stderr.contains("line 2: stream cust-1 was deleted"), "\(refused.stderr)")
        #expect(Self.acks(refused.lines) == [Ack(position: 10, stream: "order-1", version: 4)])
        let unreadable = try CLIProcess.run(["dump", dir.path, "--stream", "cust-1"])
        #expect(unreadable.status == 1, "\(unreadable)")
        #expect(unreadable.stderr.contains("stream cust-1 was deleted"), "\(unreadable.stderr)")
        let again = try CLIProcess.run(["streams", dir.path, "delete", "cust-1"])
        #expect(again.status == 3, "\(again)")
        let missing = try CLIProcess.run(["streams", dir.path, "delete", "nobody"])
        #expect(missing.status == 2, "\(missing)")
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")

        // The listing's states, as JSON and as text.
        let states = try CLIProcess.run(["streams", dir.path, "--json"]).lines.compactMap(Self.object)
        #expect(states.map { $0["deleted"] as? String } == ["hard", "none", "none"])
        #expect(states.map { $0["truncate_before"] as? Int } == [1, 2, 1])
        #expect(states.map { $0["version"] as? Int } == [0, 4, 1])
        #expect(states.map { $0["count"] as? Int } == [0, 3, 1])
        #expect(states[1]["first_position"] as? Int == 4)  // the first readable event, version 2
        #expect(states[0]["first_position"] is NSNull)
        let text = try CLIProcess.run(["streams", dir.path])
        #expect(text.status == 0, "\(text)")
        try #require(text.lines.count == 4, "\(text)")
        #expect(text.lines[0].split(separator: " ") == ["STREAM", "VERSION", "COUNT", "FIRST", "LAST", "STATE", "LIMITS"])
        #expect(text.lines[1].split(separator: " ") == ["cust-1", "0", "0", "-", "3", "hard-deleted", "-"])
        #expect(text.lines[2].split(separator: " ") == ["order-1", "4", "3", "4", "10", "truncated", "before", "2", "-"])
        #expect(text.lines[3].split(separator: " ") == ["order-2", "1", "1", "8", "8", "truncated", "before", "1", "-"])

        // The unfiltered dump shows the markers; filtered and stream dumps do not.
        let all = try CLIProcess.run(["dump", dir.path])
        #expect(all.lines.filter { $0.contains("[marker]") }.count == 3)
        #expect(all.lines.contains { $0.hasPrefix("6  ") && $0.hasSuffix("  order-1  [marker] $truncated  before 2") }, "\(all.stdout)")
        #expect(all.lines.contains { $0.hasPrefix("7  ") && $0.hasSuffix("  order-2  [marker] $deleted  soft") }, "\(all.stdout)")
        #expect(all.lines.contains { $0.hasPrefix("9  ") && $0.hasSuffix("  cust-1  [marker] $deleted  hard") }, "\(all.stdout)")
        let json = try CLIProcess.run(["dump", dir.path, "--json"]).lines.compactMap(Self.object)
        #expect(json.filter { $0["marker"] as? Bool == true }.compactMap { $0["position"] as? Int } == [6, 7, 9])
        #expect(json.filter { $0["marker"] != nil }.count == 3)
        let filtered = try CLIProcess.run(["dump", dir.path, "--stream-prefix", "order-"])
        #expect(!filtered.stdout.contains("[marker]"))

        for usage in [
            ["frob", "x"], ["truncate", "order-1"], ["delete"], ["delete", "x", "--before", "1"], ["truncate", "x", "--before", "1", "--hard"],
            ["--hard"], ["delete", "x", "--json"],
        ] {
            let output = try CLIProcess.run(["streams", dir.path] + usage)
            #expect(output.status == 2, "\(usage): \(output)")
        }
    }

    @Test func streamsBesideALiveWriter() throws {
        let dir = TemporaryDirectory("cli")
        let child = try CLIProcess.start(["append", dir.path])
        defer { child.kill() }
        for line in Self.eventLines(3) { try child.writeLine(line) }
        try #require(child.waitForLines(3, timeout: 30).count == 3, "stderr: \(child.stderrText)")

        let listed = try CLIProcess.run(["streams", dir.path, "--json"])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.lines.compactMap { Self.object($0)?["stream"] as? String } == ["s-0", "s-1", "s-2"])
        for marker in [["delete", "s-0"], ["truncate", "s-0", "--before", "1"]] {
            let output = try CLIProcess.run(["streams", dir.path] + marker)
            #expect(output.status == 2, "\(output)")
            #expect(output.stderr.contains("another process"), "\(output.stderr)")
        }
        child.closeStdin()
        let output = try #require(child.waitForExit(timeout: 30))
        #expect(output.status == 0, "\(output)")
        #expect(try CLIProcess.run(["streams", dir.path, "delete", "s-0"]).status == 0)
    }

    // MARK: verify

    @Test func verifyPassesASoundLogAndNamesADamagedByte() throws {
        let dir = TemporaryDirectory("cli")
        try Self.append(Self.eventLines(300), to: dir.path, options: ["--segment-bytes", "4096", "--batch", "10", "--durability", "none"])
        let sound = try CLIProcess.run(["verify", dir.path])
        #expect(sound.status == 0, "\(sound)")
        #expect(sound.lines.count == 1)
        #expect(sound.stdout.contains("300 events"), "\(sound.stdout)")
        let soundJSON = try CLIProcess.run(["verify", dir.path, "--json"])
        #expect(soundJSON.status == 0, "\(soundJSON)")
        let soundObject = try #require(Self.object(soundJSON.stdout), "not JSON: \(soundJSON.stdout)")
        #expect(Set(soundObject.keys) == ["sound", "segments", "batches", "events", "index_files", "problems"])
        #expect(soundObject["sound"] as? Bool == true && soundObject["events"] as? Int == 300)
        #expect((soundObject["problems"] as? [Any])?.isEmpty == true)

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
        // The same problems as JSON, and the same exit code.
        let reportJSON = try CLIProcess.run(["verify", dir.path, "--json"])
        #expect(reportJSON.status == 1, "\(reportJSON)")
        let reportObject = try #require(Self.object(reportJSON.stdout), "not JSON: \(reportJSON.stdout)")
        #expect(reportObject["sound"] as? Bool == false)
        let problems = try #require(reportObject["problems"] as? [[String: Any]])
        #expect(problems.map { "\($0["file"] as? String ?? "") at byte \($0["offset"] as? Int ?? -1): \($0["reason"] as? String ?? "")" }
            == report.lines)

        // dump stops at the damage with exit 1, naming the file.
        let dumped = try CLIProcess.run(["dump", dir.path])
        #expect(dumped.status == 1)
        #expect(dumped.stderr.contains(damaged), "\(dumped.stderr)")
    }

    @Test func missingLogFailsWithExitCode2() throws {
        let dir = TemporaryDirectory("cli")
        for command in ["dump", "verify", "inspect"] {
            let output = try CLIProcess.run([command, dir.sub("nothing-here")])
            #expect(output.status == 2, "\(command): \(output)")
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
        #expect(root["format_version"] as? Int == Int(FormatVersion.current))
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
            "first_timestamp", "last_timestamp", "sealed", "rewritten", "scanned",
        ]
        var next = 0
        for (i, segment) in segments.enumerated() {
            #expect(Set(segment.keys) == keys)
            #expect(segment["base_position"] as? Int == next)
            next = segment["end_position"] as? Int ?? -1
            #expect(segment["sealed"] as? Bool == (i < segments.count - 1))
            #expect((segment["file"] as? String)?.hasSuffix(".segment") == true)
            // Read from the index files: the batches are not counted.
            #expect(segment["scanned"] is NSNull && segment["batches"] is NSNull, "\(segment)")
        }
        #expect(next == 200)
        let totals = try #require(root["totals"] as? [String: Any])
        #expect(Set(totals.keys) == ["segments", "batches", "events", "bytes", "allocated_bytes"])
        #expect(totals["segments"] as? Int == segments.count)
        #expect(totals["events"] as? Int == 200)
        #expect(totals["batches"] is NSNull)
        #expect(totals["bytes"] as? Int == segments.reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) })

        // --scan walks every batch header: the same figures, and the batches counted (200 events in batches of at most 7).
        let scanned = try CLIProcess.run(["inspect", dir.path, "--json", "--scan"])
        #expect(scanned.status == 0, "\(scanned)")
        let scannedRoot = try #require(Self.object(scanned.stdout), "not JSON: \(scanned.stdout)")
        let scannedSegments = try #require(scannedRoot["segments"] as? [[String: Any]])
        #expect(scannedSegments.count == segments.count)
        for (fast, full) in zip(segments, scannedSegments) {
            for key in ["base_position", "end_position", "events", "bytes", "first_timestamp", "last_timestamp"] {
                #expect(fast[key] as? Int == full[key] as? Int, "\(key): \(fast) \(full)")
            }
            #expect(full["scanned"] as? String == "asked")
            #expect((full["batches"] as? Int ?? 0) >= (full["events"] as? Int ?? .max) / 7)
        }
        let scannedTotals = try #require(scannedRoot["totals"] as? [String: Int])
        #expect(scannedTotals["batches"] == scannedSegments.reduce(0) { $0 + ($1["batches"] as? Int ?? 0) })
        #expect((scannedTotals["batches"] ?? 0) >= 200 / 7)

        let text = try CLIProcess.run(["inspect", dir.path])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("format version  \(FormatVersion.current)"))
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

// MARK: - Cursors and tail

extension CLITests {
    /// 2023-11-14T22:13:20Z: the timestamp of event 0 of `timedFixture`; event i is i ms later.
    static let fixtureTime: Int64 = 1_700_000_000_000_000

    /// Six events, s-0 and s-1 in turn, types T0, T1, T2 in turn, event i at `fixtureTime` + i ms.
    static func timedFixture(_ directory: String, count: Int = 6, first: Int = 0) throws {
        try append((first..<(first + count)).map { i in
            line("s-\(i % 2)", type: "T\(i % 3)", data: i, #""timestamp": \#(fixtureTime + Int64(i) * 1000)"#)
        }, to: directory)
    }

    /// `eventlog cursors DIR --json`, by cursor name.
    static func cursorRows(_ directory: String) throws -> [String: [String: Any]] {
        let output = try CLIProcess.run(["cursors", directory, "--json"])
        #expect(output.status == 0, "\(output)")
        var rows: [String: [String: Any]] = [:]
        for line in output.lines {
            guard let row = object(line), let name = row["cursor"] as? String else {
                Issue.record("not a cursor line: \(line)")
                continue
            }
            rows[name] = row
        }
        return rows
    }

    static func positions(_ lines: [String]) -> [Int] {
        lines.compactMap { object($0)?["position"] as? Int }
    }

    @Test func cursorsSetListAndDelete() throws {
        let dir = TemporaryDirectory("cli")
        try Self.timedFixture(dir.path)
        let empty = try CLIProcess.run(["cursors", dir.path, "--json"])
        #expect(empty.status == 0 && empty.stdout.isEmpty, "\(empty)")
        let started = currentTimestamp()

        // set: each way of choosing the position, creating the cursor.
        for (name, option, expected) in [
            ("a", ["--position", "2"], 2), ("b", ["--start"], 0), ("c", ["--end"], 6),
            ("d", ["--time", "\(Self.fixtureTime + 2500)"], 3), ("e", ["--time", "2023-11-14T22:13:20.003Z"], 3),
            ("f", ["--time", "2023-11-14T23:13:20.004+01:00"], 4), ("g", ["--time", "2030-01-01"], 6),
        ] {
            let set = try CLIProcess.run(["cursors", dir.path, "set", name] + option)
            #expect(set.status == 0, "\(option): \(set)")
            #expect(set.stdout == "created cursor \(name) at position \(expected)\n", "\(option)")
        }
        // A consumer group's cursor is listed with the others.
        do {
            let log = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false))
            _ = try log.consumerGroup("workers")
            try log.close()
        }

        let before = currentTimestamp()
        let rows = try Self.cursorRows(dir.path)
        let after = currentTimestamp()
        #expect(rows.keys.sorted() == ["a", "b", "c", "d", "e", "f", "g", "group:workers"])
        let keys: Set<String> = ["cursor", "position", "updated_at", "lag_events", "lag_bytes", "oldest_unconsumed_age_us"]
        for row in rows.values { #expect(Set(row.keys) == keys) }
        let reader = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? reader.close() }
        for (name, row) in rows {
            let position = try #require(row["position"] as? Int)
            #expect(position == [
                "a": 2, "b": 0, "c": 6, "d": 3, "e": 3, "f": 4, "g": 6, "group:workers": 0,
            ][name], "\(name)")
            #expect(row["lag_events"] as? Int == 6 - position, "\(name)")
            let lag = try #require(try reader.lag(ofCursor: name))
            #expect(row["lag_bytes"] as? Int == Int(lag.bytes), "\(name)")
            #expect((row["lag_bytes"] as? Int == 0) == (position == 6), "\(name)")
            let updated = try #require(row["updated_at"] as? Int)
            #expect(updated >= Int(started) && updated <= Int(after), "\(name)")
            if position == 6 {
                #expect(row["oldest_unconsumed_age_us"] is NSNull, "\(name)")
            } else {
                // The age of event `position`, stamped fixtureTime + position ms.
                let age = try #require(row["oldest_unconsumed_age_us"] as? Int, "\(name)")
                let stamped = Int(Self.fixtureTime) + position * 1000
                #expect(age >= Int(before) - stamped && age <= Int(after) - stamped, "\(name)")
            }
        }
        #expect((rows["b"]?["lag_bytes"] as? Int ?? 0) >= (rows["a"]?["lag_bytes"] as? Int ?? .max))

        let text = try CLIProcess.run(["cursors", dir.path])
        #expect(text.status == 0, "\(text)")
        try #require(text.lines.count == 9, "\(text)")
        #expect(text.lines[0].split(separator: " ") == ["CURSOR", "POSITION", "UPDATED", "LAG_EVENTS", "LAG_BYTES", "OLDEST_AGE"])
        let a = text.lines[1].split(separator: " ").map(String.init)
        #expect(a.count == 6 && a[0] == "a" && a[1] == "2" && a[3] == "4", "\(a)")
        #expect(a.count == 6 && a[4] == "\(rows["a"]?["lag_bytes"] as? Int ?? -1)", "\(a)")
        #expect(a.count == 6 && a[5].contains("d") && a[5].hasSuffix("h"), "\(a)")  // years old: "1107d19h"
        let c = text.lines[3].split(separator: " ").map(String.init)
        #expect(c.count == 6 && c[0] == "c" && c[1] == "6" && c[3] == "0" && c[4] == "0" && c[5] == "-", "\(c)")
        #expect(c.count == 6 && c[2].hasSuffix("Z") && c[2].count == 27, "\(c)")
        #expect(text.lines[8].hasPrefix("group:workers "), "\(text.lines[8])")

        // set moves a cursor backwards or forwards.
        let back = try CLIProcess.run(["cursors", dir.path, "set", "c", "--position", "1"])
        #expect(back.stdout == "set cursor c to position 1 (was 6)\n", "\(back)")
        let forward = try CLIProcess.run(["cursors", dir.path, "set", "b", "--end"])
        #expect(forward.stdout == "set cursor b to position 6 (was 0)\n", "\(forward)")
        let beyond = try CLIProcess.run(["cursors", dir.path, "set", "c", "--position", "7"])
        #expect(beyond.status == 2, "\(beyond)")
        #expect(beyond.stderr.contains("outside the log"), "\(beyond.stderr)")

        // delete, and a missing cursor.
        let deleted = try CLIProcess.run(["cursors", dir.path, "delete", "a"])
        #expect(deleted.status == 0, "\(deleted)")
        #expect(deleted.stdout == "deleted cursor a (it was at position 2)\n")
        let missing = try CLIProcess.run(["cursors", dir.path, "delete", "a"])
        #expect(missing.status == 2, "\(missing)")
        #expect(missing.stderr.contains("cursor a does not exist"), "\(missing.stderr)")
        let left = try Self.cursorRows(dir.path)
        #expect(left.keys.sorted() == ["b", "c", "d", "e", "f", "g", "group:workers"])
        #expect(left["c"]?["position"] as? Int == 1)
        #expect(left["b"]?["position"] as? Int == 6)

        for usage in [
            ["set", "x"], ["set", "x", "--start", "--end"], ["set", "x", "--position", "1", "--time", "5"], ["set"],
            ["delete", "x", "--start"], ["--start"], ["frob", "x"], ["set", "x", "--start", "--json"],
            ["set", "x", "--time", "yesterday"], ["set", "x", "--time", "2023-02-30T00:00:00Z"], ["delete", ""],
            ["set", String(repeating: "n", count: 256), "--start"],
        ] {
            let output = try CLIProcess.run(["cursors", dir.path] + usage)
            #expect(output.status == 2, "\(usage): \(output)")
        }
        let nothing = try CLIProcess.run(["cursors", dir.sub("nothing-here")])
        #expect(nothing.status == 2, "\(nothing)")
    }

    @Test func cursorsAndTailBesideALiveWriter() throws {
        let dir = TemporaryDirectory("cli")
        try Self.timedFixture(dir.path)
        #expect(try CLIProcess.run(["cursors", dir.path, "set", "a", "--position", "2"]).status == 0)
        let writer = try CLIProcess.start(["append", dir.path])
        defer { writer.kill() }
        try writer.writeLine(Self.line("s-9"))
        try #require(writer.waitForLines(1, timeout: 30).count == 1, "stderr: \(writer.stderrText)")

        // Listing and reading are read-only.
        let rows = try Self.cursorRows(dir.path)
        #expect(rows["a"]?["position"] as? Int == 2)
        #expect(rows["a"]?["lag_events"] as? Int == 5)
        let read = try CLIProcess.run(["tail", dir.path, "--json"])
        #expect(read.status == 0, "\(read)")
        #expect(Self.positions(read.lines) == Array(0...6))

        // Whatever commits needs the writer's lock.
        for command in [["cursors", dir.path, "set", "a", "--start"], ["cursors", dir.path, "delete", "a"]] {
            let output = try CLIProcess.run(command)
            #expect(output.status == 2, "\(command): \(output)")
            #expect(output.stderr.contains("is open for writing by another process"), "\(command): \(output.stderr)")
        }
        // tail --cursor commits beside the writer: the cursor journal is shared under its own lock.
        let tail = try CLIProcess.run(["tail", dir.path, "--cursor", "a", "--json"])
        #expect(tail.status == 0, "\(tail)")
        #expect(Self.positions(tail.lines) == Array(2...6))
        #expect(try Self.cursorRows(dir.path)["a"]?["position"] as? Int == 7)

        writer.closeStdin()
        #expect(writer.waitForExit(timeout: 30)?.status == 0)
        #expect(try Self.cursorRows(dir.path)["a"]?["position"] as? Int == 7)
    }

    @Test func tailPrintsWhatDumpPrints() throws {
        let dir = TemporaryDirectory("cli")
        try Self.streamFixture(dir.path)
        #expect(try CLIProcess.run(["streams", dir.path, "delete", "order-2"]).status == 0)  // a marker at 6
        try Self.append([Self.line("order-3", type: "Placed"), Self.line("order-1", type: "Paid")], to: dir.path)

        for (tail, dump) in [
            ([String](), [String]()), (["--from", "2"], ["--from", "2"]), (["--from", "8"], ["--from", "8"]),
            (["--stream-prefix", "order-"], ["--stream-prefix", "order-"]), (["--type", "Paid"], ["--type", "Paid"]),
            (["--type", "Placed", "--type", "Joined"], ["--type", "Placed", "--type", "Joined"]),
            (["--stream-prefix", "order-", "--type", "Paid", "--from", "3"], ["--stream-prefix", "order-", "--type", "Paid", "--from", "3"]),
            (["--stream-prefix", "nobody"], ["--stream-prefix", "nobody"]),
            // --stream is the exact name, as in dump: "order-" names no stream.
            (["--stream", "order-1"], ["--stream", "order-1"]), (["--stream", "order-"], ["--stream", "order-"]),
            (["--stream", "order-1", "--type", "Paid"], ["--stream", "order-1", "--type", "Paid"]),
        ] {
            for format in [["--json"], []] {
                let tailed = try CLIProcess.run(["tail", dir.path] + tail + format)
                let dumped = try CLIProcess.run(["dump", dir.path] + dump + format)
                #expect(tailed.status == 0, "\(tail): \(tailed)")
                #expect(dumped.status == 0, "\(dump): \(dumped)")
                #expect(tailed.stdout == dumped.stdout, "\(tail) \(format)")
            }
        }
        // Spot checks that the comparison compared something.
        let json = try CLIProcess.run(["tail", dir.path, "--json"])
        #expect(Self.positions(json.lines) == Array(0...8))
        #expect(Self.object(json.lines[6])?["marker"] as? Bool == true)
        let paid = try CLIProcess.run(["tail", dir.path, "--json", "--stream-prefix", "order-", "--type", "Paid"])
        #expect(Self.positions(paid.lines) == [2, 5, 8])
        let one = try CLIProcess.run(["tail", dir.path, "--json", "--stream", "order-1"])
        #expect(Self.positions(one.lines) == [0, 2, 4, 5, 8])

        let beyond = try CLIProcess.run(["tail", dir.path, "--from", "10"])
        #expect(beyond.status == 2, "\(beyond)")
        #expect(try CLIProcess.run(["tail", dir.path, "--from", "9"]).stdout.isEmpty)
        for usage in [["--cursor", "c", "--from", "1"], ["--cursor", ""], ["--frob"], ["--stream", "a", "--stream-prefix", "a"]] {
            let output = try CLIProcess.run(["tail", dir.path] + usage)
            #expect(output.status == 2, "\(usage): \(output)")
        }
        #expect(try CLIProcess.run(["tail", dir.sub("nothing-here")]).status == 2)
    }

    @Test func tailFollowSeesAppendsOfAnotherProcess() throws {
        let dir = TemporaryDirectory("cli")
        try Self.timedFixture(dir.path, count: 3)
        let tail = try CLIProcess.start(["tail", dir.path, "-f", "--json", "--stream-prefix", "s-"])
        defer { tail.kill() }
        try #require(tail.waitForLines(3, timeout: 30).count == 3, "stderr: \(tail.stderrText)")

        // Appended right away, and after the log was quiet for longer than a file time can be trusted.
        try Self.timedFixture(dir.path, count: 2, first: 3)
        try Self.append([Self.line("other", type: "T0")], to: dir.path)  // filtered out
        #expect(Self.positions(tail.waitForLines(5, timeout: 30)) == [0, 1, 2, 3, 4], "stderr: \(tail.stderrText)")
        Thread.sleep(forTimeInterval: 0.5)  // a quiet while: tail keeps reading on
        try Self.timedFixture(dir.path, count: 3, first: 6)
        #expect(Self.positions(tail.waitForLines(8, timeout: 30)) == [0, 1, 2, 3, 4, 6, 7, 8], "stderr: \(tail.stderrText)")
        // Across segment rolls.
        try Self.append(Self.eventLines(200), to: dir.path, options: ["--segment-bytes", "4096", "--batch", "10"])
        let expected = [0, 1, 2, 3, 4, 6, 7, 8] + Array(9..<209)
        #expect(Self.positions(tail.waitForLines(expected.count, timeout: 30)) == expected, "stderr: \(tail.stderrText)")

        // SIGTERM ends it cleanly.
        kill(tail.processIdentifier, SIGTERM)
        let output = try #require(tail.waitForExit(timeout: 30))
        #expect(!output.signaled && output.status == 0, "\(output)")
        #expect(output.lines.count == expected.count)
    }

    @Test func tailFollowStopsOnSIGINTAndWhenItsReaderGoes() throws {
        let dir = TemporaryDirectory("cli")
        try Self.timedFixture(dir.path, count: 3)
        for arguments in [["tail", dir.path, "-f"], ["tail", dir.path, "-f", "--cursor", "c"]] {
            let tail = try CLIProcess.start(arguments)
            defer { tail.kill() }
            try #require(tail.waitForLines(3, timeout: 30).count == 3, "stderr: \(tail.stderrText)")
            kill(tail.processIdentifier, SIGINT)
            let output = try #require(tail.waitForExit(timeout: 30))
            #expect(!output.signaled && output.status == 0, "\(arguments): \(output)")
        }
        #expect(try Self.cursorRows(dir.path)["c"]?["position"] as? Int == 3)

        // `tail -f | head -n 1`: the pipeline ends once head has exited, because tail notices.
        let binary = try CLIProcess.executableURL().path
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "'\(binary)' tail -f '\(dir.path)' | head -n 1 > /dev/null"]
        try shell.run()
        let deadline = Date(timeIntervalSinceNow: 30)
        while shell.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if shell.isRunning { shell.terminate() }
        #expect(!shell.isRunning, "tail -f kept running after its reader went away")
    }

    @Test func tailWithACursorCommitsWhatItPrinted() throws {
        let dir = TemporaryDirectory("cli")
        try Self.timedFixture(dir.path, count: 5)
        let first = try CLIProcess.run(["tail", dir.path, "--cursor", "c", "--json"])
        #expect(first.status == 0, "\(first)")
        #expect(Self.positions(first.lines) == [0, 1, 2, 3, 4])
        #expect(try Self.cursorRows(dir.path)["c"]?["position"] as? Int == 5)

        try Self.timedFixture(dir.path, count: 3, first: 5)
        let second = try CLIProcess.run(["tail", dir.path, "--cursor", "c", "--json"])
        #expect(Self.positions(second.lines) == [5, 6, 7], "\(second)")
        let third = try CLIProcess.run(["tail", dir.path, "--cursor", "c"])
        #expect(third.status == 0 && third.stdout.isEmpty, "\(third)")
        let rows = try Self.cursorRows(dir.path)
        #expect(rows["c"]?["position"] as? Int == 8)
        #expect(rows["c"]?["lag_events"] as? Int == 0)

        // The events a filter leaves out count as consumed; a reset cursor prints again.
        let filtered = try CLIProcess.run(["tail", dir.path, "--cursor", "f", "--json", "--type", "T1"])
        #expect(Self.positions(filtered.lines) == [1, 4, 7], "\(filtered)")
        #expect(try Self.cursorRows(dir.path)["f"]?["position"] as? Int == 8)
        #expect(try CLIProcess.run(["cursors", dir.path, "set", "c", "--position", "6"]).status == 0)
        #expect(Self.positions(try CLIProcess.run(["tail", dir.path, "--cursor", "c", "--json"]).lines) == [6, 7])
    }

    /// kill -9 of `tail -f --cursor` at random moments: every event is
    /// printed at least once, each run starts where the last commit left
    /// off, and no commit is ahead of what was printed.
    @Test func tailFollowWithACursorResumesAfterKill() throws {
        let dir = TemporaryDirectory("cli")
        let total = 20_000
        do {
            let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            try Fixtures.append(log, 0..<total, batch: 100)
            try log.close()
        }
        var random = SplitMix64(seed: 0x7A11_C0DE)
        var printed = Set<Int>()
        var highestPrinted = -1
        var committed = 0
        var round = 0
        while committed < total && round < 8 {
            round += 1
            let tail = try CLIProcess.start(["tail", dir.path, "-f", "--cursor", "c", "--json"])
            defer { tail.kill() }
            let wanted = Int.random(in: 1...max(1, min(3000, total - committed)), using: &random)
            try #require(tail.waitForLines(wanted, timeout: 60).count >= wanted, "round \(round): \(tail.stderrText)")
            usleep(UInt32.random(in: 0..<20_000, using: &random))
            let output = try #require(tail.kill())
            #expect(output.signaled, "round \(round): \(output.stderr)")

            // A line cut by the kill was not printed whole: it is not counted (nor committed).
            var run = output.lines.compactMap { Self.object($0)?["position"] as? Int }
            if run.count < output.lines.count - 1 { Issue.record("round \(round): a broken line before the last") }
            if run.count == output.lines.count, output.stdout.last != "\n" { run.removeLast() }
            #expect(run.first == committed, "round \(round): the run starts at the committed position")
            #expect(run == Array(committed..<(committed + run.count)), "round \(round): a gap or a repeat within the run")
            printed.formUnion(run)
            highestPrinted = max(highestPrinted, run.last ?? -1)

            let now = try #require(Self.cursorRows(dir.path)["c"]?["position"] as? Int, "round \(round)")
            #expect(now >= committed, "round \(round): the cursor went back")
            #expect(now <= highestPrinted + 1, "round \(round): committed \(now), printed up to \(highestPrinted)")
            committed = now
        }
        let rest = try CLIProcess.run(["tail", dir.path, "--cursor", "c", "--json"])
        #expect(rest.status == 0, "\(rest)")
        let last = Self.positions(rest.lines)
        #expect(last == Array(committed..<total))
        printed.formUnion(last)
        #expect(printed == Set(0..<total))
        #expect(try Self.cursorRows(dir.path)["c"]?["position"] as? Int == total)
    }

    @Test func timeArgumentsParse() {
        let t = Self.fixtureTime
        #expect(TimestampArgument(argument: "\(t)")?.microseconds == t)
        #expect(TimestampArgument(argument: "-5")?.microseconds == -5)
        #expect(TimestampArgument(argument: "2023-11-14T22:13:20Z")?.microseconds == t)
        #expect(TimestampArgument(argument: "2023-11-14t22:13:20.5z")?.microseconds == t + 500_000)
        #expect(TimestampArgument(argument: "2023-11-14 22:13:20.123456789Z")?.microseconds == t + 123_456)
        #expect(TimestampArgument(argument: "2023-11-14T20:13:20-02:00")?.microseconds == t)
        #expect(TimestampArgument(argument: "1970-01-01")?.microseconds == 0)
        #expect(TimestampArgument(argument: "1969-12-31T23:59:59Z")?.microseconds == -1_000_000)
        #expect(TimestampArgument(argument: "2024-02-29T00:00:00Z")?.microseconds == 1_709_164_800_000_000)
        for bad in ["", "x", "2023-11-14T22:13Z", "2023-11-14T22:13:20", "2023-13-01", "2023-02-29", "2023-11-14T24:00:00Z",
                    "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20.1234567890Z", "2023-11-14T22:13:20Zjunk", "1e6"] {
            #expect(TimestampArgument(argument: bad) == nil, "\(bad)")
        }
    }
}
