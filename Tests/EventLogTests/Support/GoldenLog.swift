import Foundation
import Testing
@testable import EventLog

/// A small log whose every byte but the log id (and so the CRC32C chain,
/// seeded with the segment header's checksum) is the same on every run:
/// fixed timestamps, no event ids, five batches of 3, 1, 5, 3 and 2 events
/// over two segments (4 KiB each), uncompressed. The golden-file tests
/// compare the human output of `dump --batches` and `stats` with
/// `Tests/Golden/`.
enum GoldenLog {
    /// 2026-01-15T09:00:00Z: the timestamp of event 0; event i is i seconds later.
    static let firstTimestamp: Int64 = 1_768_467_600_000_000

    static func build(at path: String) throws {
        let log = try Log.open(at: path, options: LogOptions(segmentBytes: 4096, durability: .none))
        var i: Int64 = 0
        func event(_ stream: String, _ type: String, _ data: String, metadata: EventMetadata = EventMetadata()) -> NewEvent {
            defer { i += 1 }
            return NewEvent(stream: stream, type: type, data: Array(data.utf8), metadata: metadata, timestamp: firstTimestamp + i * 1_000_000)
        }
        let json = EventMetadata(contentType: "application/json")
        try log.append([
            event("order-1", "OrderPlaced", #"{"total":10}"#, metadata: json),
            event("order-2", "OrderPlaced", #"{"total":25}"#, metadata: json),
            event("customer-1", "Registered", #"{"name":"Ada"}"#, metadata: EventMetadata(
                contentType: "application/json", correlationID: "signup-1", headers: [.init("tenant", "acme")])),
        ])
        try log.append([event("order-1", "ItemAdded", #"{"sku":"a"}"#, metadata: json)])
        try log.append([
            event("order-1", "ItemAdded", #"{"sku":"b"}"#, metadata: json),
            event("order-1", "ItemAdded", #"{"sku":"c"}"#, metadata: json),
            event("order-2", "ItemAdded", #"{"sku":"a"}"#, metadata: json),
            event("order-1", "OrderPaid", #"{"total":10}"#, metadata: json),
            event("customer-1", "EmailChanged", #"{"email":"ada@example.com"}"#, metadata: json),
        ])
        // 3.3 KB: too big for what is left of the first segment.
        try log.append((0..<3).map { n in event("order-3", "Attachment", String(repeating: "\(n)", count: 1100)) })
        try log.append([event("order-3", "OrderPlaced", #"{"total":5}"#, metadata: json), event("audit", "Checked", "ok")])
        try log.close()
    }

    /// `Tests/Golden/NAME`.
    static func url(_ name: String, filePath: String = #filePath) -> URL {
        URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Golden").appendingPathComponent(name)
    }

    /// Compares `actual` with the golden file `name`; with
    /// `EVENTLOG_UPDATE_GOLDEN=1` in the environment, writes it instead.
    static func expectMatches(_ actual: String, golden name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = url(name)
        if ProcessInfo.processInfo.environment["EVENTLOG_UPDATE_GOLDEN"] == "1" {
            try actual.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        if actual == expected { return }
        let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let first = zip(actualLines, expectedLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(actualLines.count, expectedLines.count)
        Issue.record(
            """
            output differs from Tests/Golden/\(name) at line \(first + 1):
              expected: \(first < expectedLines.count ? String(expectedLines[first]) : "(end)")
              actual:   \(first < actualLines.count ? String(actualLines[first]) : "(end)")
            whole output:
            \(actual)
            """, sourceLocation: sourceLocation)
    }
}
