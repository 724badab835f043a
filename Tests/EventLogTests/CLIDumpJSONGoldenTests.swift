import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog dump --json` byte for byte against `Tests/Golden/dump-json.jsonl`:
/// the output that its speed work must keep. The log holds every shape
/// the JSON writer treats apart: JSON data (with line breaks, and a content
/// type with parameters), data that claims JSON but is not, binary and empty
/// data, every metadata field, headers (repeated, non-ASCII, control
/// characters, a quote), keys, tombstones, non-ASCII and escaped stream and
/// type names, and stream markers.
@Suite struct CLIDumpJSONGoldenTests {
    static let t0: Int64 = 1_768_467_600_000_000

    static func build(at path: String) throws {
        let log = try Log.open(at: path, options: LogOptions(segmentBytes: 4096, durability: .none))
        var i: Int64 = 0
        func event(
            _ stream: String, _ type: String, _ data: [UInt8], _ metadata: EventMetadata = EventMetadata(), key: String? = nil,
            tombstone: Bool = false
        ) -> NewEvent {
            defer { i += 1 }
            return NewEvent(
                stream: stream, type: type, data: data, metadata: metadata, timestamp: t0 + i * 1_000_123, key: key, isTombstone: tombstone)
        }
        let id = UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF")
        let full = EventMetadata(
            eventID: id, schemaVersion: 4_000_000_000, contentType: "Application/JSON; charset=utf-8", correlationID: "corr \"1\"",
            causationID: "cause\\2",
            headers: [.init("tenant", "acme"), .init("tenant", "zweite Größe"), .init("ctl", "a\u{1}b\tc\nd"), .init("é", "\u{2028}")])
        try log.append([
            event("order-1", "Placed", Array("{\"total\": 10,\n \"items\": [1,\r\n2]}".utf8), full),
            event("order-1", "Broken", Array("{\"total\": ".utf8), EventMetadata(contentType: "application/json")),
            event("bin", "Blob", (0..<200).map { UInt8($0 * 37 % 256) }, EventMetadata(schemaVersion: 0)),
            event("bin", "Empty", []),
        ])
        try log.append([
            event("keyed", "Set", [1, 2, 3, 4, 5], key: "k-1"),
            event("keyed", "Unset", [], key: "k-1", tombstone: true),
            event("tomb", "Gone", [0xFF], tombstone: true),
            event("ström \"q\"", "Typ\u{7}é", Array("plain text\n".utf8), EventMetadata(contentType: "text/plain")),
        ])
        try log.append((0..<3).map { n in event("big", "Attachment", Array(repeating: UInt8(48 + n), count: 1500 + n)) })
        _ = try log.truncateStream("order-1", before: 1)
        _ = try log.deleteStream("tomb")
        _ = try log.setStreamLimits("bin", StreamLimits(maxAge: nil, maxCount: 5))
        try log.close()
    }

    /// The markers' timestamps are the time they were written: replaced by a placeholder.
    static func normalised(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.contains(#""marker":true"#) else { return String(line) }
            return line.replacingOccurrences(of: #""timestamp":[0-9]+"#, with: #""timestamp":MARKER_TIME"#, options: .regularExpression)
        }.joined(separator: "\n")
    }

    @Test func dumpJSONMatchesItsGoldenFile() throws {
        let dir = TemporaryDirectory("dump-json")
        try Self.build(at: dir.path)
        var all = ""
        for extra in [[], ["--data", "base64"], ["--data", "hex"]] {
            let output = try CLIProcess.run(["dump", dir.path, "--json"] + extra)
            #expect(output.status == 0 && output.stderr.isEmpty, "\(output)")
            all += "# dump --json \(extra.joined(separator: " "))\n" + output.stdout
        }
        // Every line (but the section titles) is one JSON object.
        for line in all.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(CLITests.object(String(line)) != nil, "\(line)")
        }
        try GoldenLog.expectMatches(Self.normalised(all), golden: "dump-json.jsonl")
    }
}
