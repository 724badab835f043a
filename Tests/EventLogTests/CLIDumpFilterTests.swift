import Foundation
import Testing
@testable import EventLog

/// `eventlog dump --since/--until/--meta/--data`, run as a real child process.
@Suite struct CLIDumpFilterTests {
    /// 2023-11-14T22:13:20Z.
    static let t0: Int64 = 1_700_000_000_000_000

    /// Eight events whose timestamps do not follow their positions (event 5
    /// is stamped before event 4), with metadata to match:
    ///
    /// | position | stream | type | seconds after t0 | metadata |
    /// |---|---|---|---|---|
    /// | 0 | order-1 | Placed | 0 | tenant=acme, correlationId=c-1 |
    /// | 1 | order-2 | Placed | 10 | tenant=other |
    /// | 2 | order-1 | Paid | 20 | tenant=acme, correlationId=c-1, schemaVersion 2 |
    /// | 3 | cust-1 | Joined | 30 | tenant=acme, eventId …0003 |
    /// | 4 | order-1 | Shipped | 50 | tenant=acme, causationId=cmd-9 |
    /// | 5 | order-2 | Paid | 40 (late) | tenant=acme |
    /// | 6 | order-3 | Placed | 60 | none |
    /// | 7 | order-1 | Paid | 70 | tenant=acme, correlationId=c-2 |
    static func fixture(_ path: String) throws {
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        func e(_ stream: String, _ type: String, _ seconds: Int64, _ metadata: EventMetadata = EventMetadata()) -> NewEvent {
            var metadata = metadata
            metadata.contentType = metadata.contentType ?? "application/json"
            return NewEvent(stream: stream, type: type, data: Array(#"{"s":\#(seconds)}"#.utf8), metadata: metadata, timestamp: t0 + seconds * 1_000_000)
        }
        let acme = EventMetadata.Header("tenant", "acme")
        try log.append([
            e("order-1", "Placed", 0, EventMetadata(correlationID: "c-1", headers: [acme])),
            e("order-2", "Placed", 10, EventMetadata(headers: [.init("tenant", "other")])),
        ])
        try log.append([
            e("order-1", "Paid", 20, EventMetadata(schemaVersion: 2, correlationID: "c-1", headers: [acme])),
            e("cust-1", "Joined", 30, EventMetadata(eventID: UUID(uuidString: "00000000-0000-4000-8000-000000000003"), headers: [acme])),
            e("order-1", "Shipped", 50, EventMetadata(causationID: "cmd-9", headers: [acme])),
        ])
        try log.append([e("order-2", "Paid", 40, EventMetadata(headers: [acme])), e("order-3", "Placed", 60)])
        try log.append([e("order-1", "Paid", 70, EventMetadata(correlationID: "c-2", headers: [acme]))])
        try log.close()
    }

    static func positions(_ directory: String, _ options: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [Int] {
        let output = try CLIProcess.run(["dump", directory, "--json"] + options)
        #expect(output.status == 0, "\(options): \(output)", sourceLocation: sourceLocation)
        return CLITests.positions(output.lines)
    }

    @Test func sinceAndUntilKeepATimeWindow() throws {
        let dir = TemporaryDirectory("cli")
        try Self.fixture(dir.path)
        let p = { (options: [String]) in try Self.positions(dir.path, options) }
        // Times below are t0 (22:13:20) plus the seconds in the fixture's table.
        #expect(try p(["--since", "2023-11-14T22:14:00Z"]) == [4, 5, 6, 7])  // 40 s
        // The late event 5 (40 s) comes after event 4 (50 s): --since 45 s starts at 4 and leaves 5 out.
        #expect(try p(["--since", "2023-11-14T22:14:05Z"]) == [4, 6, 7])
        // --until is exclusive, and checked on every event: the read goes on past event 4 to event 5.
        #expect(try p(["--until", "2023-11-14T22:14:05Z"]) == [0, 1, 2, 3, 5])  // 45 s
        #expect(try p(["--until", "2023-11-14T22:14:00Z"]) == [0, 1, 2, 3])  // 40 s: event 5 is not before it
        #expect(try p(["--since", "2023-11-14T22:13:50Z", "--until", "2023-11-14T22:14:05Z"]) == [3, 5])  // [30 s, 45 s)
        // Fractional seconds and offsets.
        #expect(try p(["--since", "2023-11-14T22:13:49.999999Z", "--until", "2023-11-14T22:13:50.000001Z"]) == [3])
        #expect(try p(["--since", "2023-11-14T22:13:50.000001Z", "--until", "2023-11-14T22:14:00Z"]) == [])
        #expect(try p(["--since", "2023-11-14T23:14:15+01:00"]) == [6, 7])  // 55 s
        #expect(try p(["--since", "2023-11-14T20:14:25.5-02:00"]) == [7])  // 65.5 s
        // With --from, --to and --count.
        #expect(try p(["--since", "2023-11-14T22:13:30Z", "--from", "3", "--to", "7"]) == [3, 4, 5, 6])
        #expect(try p(["--since", "2023-11-14T22:13:30Z", "--count", "2"]) == [1, 2])
        #expect(try p(["--since", "2023-11-14T22:13:30Z", "--until", "2023-11-14T22:14:05Z", "--count", "3", "--from", "2"]) == [2, 3, 5])
        // Nothing at or after it, or a window that holds nothing.
        #expect(try p(["--since", "2030-01-01T00:00:00Z"]) == [])
        #expect(try p(["--until", "2023-11-14T22:13:20Z"]) == [])
        // Combined with --type and --stream-prefix, and with --stream.
        #expect(try p(["--since", "2023-11-14T22:13:45Z", "--type", "Paid"]) == [5, 7])  // 25 s
        #expect(try p(["--since", "2023-11-14T22:13:35Z", "--until", "2023-11-14T22:14:10Z", "--stream-prefix", "order-2"]) == [5])
        #expect(try p(["--stream", "order-1", "--since", "2023-11-14T22:13:20.5Z", "--until", "2023-11-14T22:14:15Z"]) == [2, 4])
        #expect(try p(["--stream", "order-1", "--backward", "--since", "2023-11-14T22:13:20.5Z", "--count", "1"]) == [7])
    }

    /// A duration counts back from now: events stamped 2 h and 10 min ago.
    @Test func sinceAndUntilTakeADurationBackFromNow() throws {
        let dir = TemporaryDirectory("cli")
        let now = currentTimestamp()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try log.append([
            NewEvent(stream: "s", type: "Old", data: [], timestamp: now - 7_200_000_000),
            NewEvent(stream: "s", type: "Recent", data: [], timestamp: now - 600_000_000),
        ])
        try log.close()
        #expect(try Self.positions(dir.path, ["--since", "1h"]) == [1])
        #expect(try Self.positions(dir.path, ["--since", "30m"]) == [1])
        #expect(try Self.positions(dir.path, ["--since", "5m"]) == [])
        #expect(try Self.positions(dir.path, ["--since", "3h", "--until", "1h"]) == [0])
        #expect(try Self.positions(dir.path, ["--since", "10800s"]) == [0, 1])
        #expect(try Self.positions(dir.path, ["--until", "1d"]) == [])
        #expect(try Self.positions(dir.path, ["--since", "7d"]) == [0, 1])
    }

    /// --since starts the read where the time index says: a damaged batch
    /// in an earlier segment is never read (and a read that reaches it is a
    /// finding, exit 1).
    @Test func sinceSeeksPastEarlierSegments() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)  // events 0..<9 in the first segment, 9..<14 in the second; event i at i s
        let first = dir.sub("00000000000000000000.segment")
        let batches = Fixtures.batches(in: first)
        try #require(batches.count == 3)
        // The middle batch (event 3): an open checks each sealed segment's last batch, not this one.
        Damage.flipBit(first, at: batches[1].offset + BatchHeader.size + 3)
        #expect(try Self.positions(dir.path, ["--since", "2026-01-15T09:00:09Z"]) == Array(9..<14))
        #expect(try Self.positions(dir.path, ["--since", "2026-01-15T09:00:12Z", "--meta", "contentType=application/json"]) == [12])
        for options in [["--since", "2026-01-15T09:00:08Z"], ["--until", "2026-01-15T09:00:01Z"], ["--since", "2026-01-15T09:00:02Z"]] {
            let output = try CLIProcess.run(["dump", dir.path, "--json"] + options)
            #expect(output.status == 1, "\(options): \(output)")
            #expect(output.stderr.contains(first), "\(options): \(output.stderr)")
        }
    }

    @Test func metaKeepsEventsWhoseMetadataMatches() throws {
        let dir = TemporaryDirectory("cli")
        try Self.fixture(dir.path)
        let p = { (options: [String]) in try Self.positions(dir.path, options) }
        #expect(try p(["--meta", "tenant=acme"]) == [0, 2, 3, 4, 5, 7])
        #expect(try p(["--meta", "tenant=other"]) == [1])
        #expect(try p(["--meta", "tenant=acme", "--meta", "correlationId=c-1"]) == [0, 2])
        #expect(try p(["--meta", "correlationId=c-1", "--meta", "tenant=other"]) == [])
        #expect(try p(["--meta", "causationId=cmd-9"]) == [4])
        #expect(try p(["--meta", "schemaVersion=2"]) == [2])
        #expect(try p(["--meta", "eventId=00000000-0000-4000-8000-000000000003"]) == [3])
        #expect(try p(["--meta", "contentType=application/json"]) == Array(0...7))
        // A value holding "=", and an empty value, match as written.
        #expect(try p(["--meta", "tenant=acme=x"]) == [])
        #expect(try p(["--meta", "tenant="]) == [])
        #expect(try p(["--meta", "region=eu"]) == [])
        // With the other filters, --count after all of them, and one stream.
        #expect(try p(["--meta", "tenant=acme", "--type", "Paid"]) == [2, 5, 7])
        #expect(try p(["--meta", "tenant=acme", "--stream-prefix", "order-1", "--count", "2", "--from", "1"]) == [2, 4])
        #expect(try p(["--meta", "tenant=acme", "--since", "2023-11-14T22:14:05Z", "--until", "2023-11-14T22:14:15Z"]) == [4])
        #expect(try p(["--stream", "order-2", "--meta", "tenant=acme"]) == [5])
        // The text format prints the same events.
        let text = try CLIProcess.run(["dump", dir.path, "--meta", "correlationId=c-2"])
        #expect(text.status == 0 && text.lines == [#"7  2023-11-14T22:14:30.000000Z  order-1  v3  Paid  {"s":70}"#], "\(text)")
    }

    /// Markers are printed by the unfiltered dump only.
    @Test func filtersLeaveMarkersOut() throws {
        let dir = TemporaryDirectory("cli")
        try Self.fixture(dir.path)
        #expect(try CLIProcess.run(["streams", dir.path, "delete", "order-3"]).status == 0)  // a marker at 8, stamped now
        #expect(try Self.positions(dir.path, []) == Array(0...8))
        #expect(try Self.positions(dir.path, ["--since", "2023-11-14T22:14:00Z"]) == [4, 5, 6, 7])
        #expect(try Self.positions(dir.path, ["--until", "2100-01-01T00:00:00Z"]) == Array(0...7))
    }

    @Test func dataFormatsInText() throws {
        let dir = TemporaryDirectory("cli")
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try log.append([
            NewEvent(stream: "s", type: "Bin", data: [0xFF, 0x00, 0x41, 0x0A], timestamp: 0),
            NewEvent(stream: "s", type: "Json", data: Array("{\n \"a\": [1, \"x\\\\y\"]\n}".utf8), timestamp: 0),
            NewEvent(stream: "s", type: "Text", data: Array("tab\there \"q\" é".utf8), timestamp: 0),
            NewEvent(stream: "s", type: "Empty", data: [], timestamp: 0),
        ])
        try log.close()
        func data(_ options: [String]) throws -> [String] {
            let output = try CLIProcess.run(["dump", dir.path] + options)
            #expect(output.status == 0, "\(options): \(output)")
            // The data follows the type, two spaces after it.
            return output.lines.map { line in
                let type = ["  Bin  ", "  Json  ", "  Text  ", "  Empty  "].first { line.contains($0) } ?? "?"
                return line.components(separatedBy: type).dropFirst().joined(separator: type)
            }
        }
        #expect(try data([]) == ["base64:/wBBCg==", "base64:ewogImEiOiBbMSwgInhcXHkiXQp9", "tab\there \"q\" é", ""])
        #expect(try data(["--data", "text"]) == ["\u{FFFD}\\u0000A\\n", #"{\n "a": [1, "x\\y"]\n}"#, "tab\there \"q\" é", ""])
        #expect(try data(["--data", "json"]) == ["base64:/wBBCg==", #"{  "a": [1, "x\\y"] }"#, "tab\there \"q\" é", ""])
        #expect(try data(["--data", "hex"]) == ["ff00410a", "7b0a202261223a205b312c2022785c5c79225d0a7d", "74616209686572652022712220c3a9", ""])
        #expect(try data(["--data", "base64"]) == ["/wBBCg==", "ewogImEiOiBbMSwgInhcXHkiXQp9", "dGFiCWhlcmUgInEiIMOp", ""])
    }

    @Test func dataFormatsInJSON() throws {
        let dir = TemporaryDirectory("cli")
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        try log.append([
            NewEvent(stream: "s", type: "Json", data: Array(#"{"a":1}"#.utf8), metadata: EventMetadata(contentType: "application/json")),
            NewEvent(stream: "s", type: "Bin", data: [0xFF, 0x00]),
        ])
        try log.close()
        func objects(_ options: [String]) throws -> [[String: Any]] {
            let output = try CLIProcess.run(["dump", dir.path, "--json"] + options)
            #expect(output.status == 0, "\(options): \(output)")
            return output.lines.compactMap(CLITests.object)
        }
        let plain = try objects([])
        #expect(plain.count == 2 && plain[0]["data"] != nil && plain[1]["data_base64"] as? String == "/wA=")
        let base64 = try objects(["--data", "base64"])
        #expect(base64.map { $0["data_base64"] as? String } == ["eyJhIjoxfQ==", "/wA="])
        #expect(base64.allSatisfy { $0["data"] == nil && $0["data_hex"] == nil })
        let hex = try objects(["--data", "hex"])
        #expect(hex.map { $0["data_hex"] as? String } == ["7b2261223a317d", "ff00"])
        #expect(hex.allSatisfy { $0["data"] == nil && $0["data_base64"] == nil })
        // --data base64 output appends again as it is.
        let copy = dir.sub("copy")
        let dumped = try CLIProcess.run(["dump", dir.path, "--json", "--data", "base64"])
        #expect(try CLIProcess.run(["append", copy], stdin: CLITests.stdin(dumped.lines)).status == 0)
        let reader = try Log.open(at: copy, options: LogOptions(readOnly: true))
        #expect(try reader.events(from: 0).map(\.data) == [Array(#"{"a":1}"#.utf8), [0xFF, 0x00]])
        try reader.close()
    }

    /// Malformed values are usage errors (exit 2) naming the option and saying what is expected.
    @Test func badFilterValuesAreUsageErrors() throws {
        let dir = TemporaryDirectory("cli")
        try Self.fixture(dir.path)
        for (options, message) in [
            (["--since", "yesterday"], "--since"), (["--until", "2023-11-14T22:13"], "--until"),
            (["--since", "2023-11-14T22:13:20"], "RFC 3339"), (["--since", "-5m"], "RFC 3339"), (["--since", "1.5h"], "RFC 3339"),
            (["--since", "99999999999999999d"], "at most"),
            (["--meta", "tenant"], "KEY=VALUE"), (["--meta", "=acme"], "key is empty"),
            (["--meta", "eventId=nope"], "UUID"), (["--meta", "schemaVersion=x"], "integer"),
            (["--data", "xml"], "--data"), (["--json", "--data", "text"], "with --json, --data takes base64 or hex"),
            (["--json", "--data", "json"], "with --json"),
            (["--since", "2023-11-14T22:14:00Z", "--until", "2023-11-14T22:13:00Z"], "is not after --since"),
            (["--since", "1h", "--batches"], "does not go with --batches"), (["--meta", "a=b", "--batches"], "does not go with --batches"),
            (["--data", "hex", "--batches"], "does not go with --batches"),
        ] {
            let output = try CLIProcess.run(["dump", dir.path] + options)
            #expect(output.status == 2, "\(options): \(output)")
            #expect(output.stderr.contains(message), "\(options): \(output.stderr)")
            #expect(output.stdout.isEmpty, "\(options)")
        }
    }
}
