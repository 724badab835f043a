import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog import DIR --append`, run as a real child process: an export's
/// events appended after the end of an existing log.
@Suite struct CLIImportAppendTests {
    static func options() -> LogOptions { CLIExportImportTests.options() }

    /// A source log of three batches (the middle one multi-stream, with
    /// event ids, metadata, a key, a tombstone and binary data) and a cursor.
    static func source(at path: String) throws {
        let log = try Log.open(at: path, options: options())
        try log.append([NewEvent(stream: "orders", type: "Placed", data: Array("one".utf8), timestamp: 1_700_000_000_000_000)])
        try log.append([
            NewEvent(stream: "orders", type: "Paid", data: [0, 255, 7], metadata: EventMetadata(
                eventID: UUID(), correlationID: "c-1", headers: [EventMetadata.Header("tenant", "acme")]), timestamp: 1_700_000_000_000_001),
            NewEvent(stream: "keyed", type: "Set", data: [1], metadata: EventMetadata(eventID: UUID()), key: "k", isTombstone: true),
        ])
        try log.append([NewEvent(stream: "other", type: "X", data: Array(repeating: 9, count: 300), metadata: EventMetadata(eventID: UUID()))])
        try log.commitCursor("projector", position: 2)
        try log.close()
    }

    /// A target log holding events of its own, in a stream the export also has.
    static func target(at path: String) throws -> UInt64 {
        let log = try Log.open(at: path, options: options())
        try log.append([NewEvent(stream: "orders", type: "Old", data: [1]), NewEvent(stream: "mine", type: "Old", data: [2])])
        try log.append([NewEvent(stream: "orders", type: "Old", data: [3])])
        try log.commitCursor("mine", position: 1)
        let end = log.endPosition
        try log.close()
        return end
    }

    @Test func appendsTheEventsAsNewBatchesWithNewPositionsAndVersions() throws {
        let dir = TemporaryDirectory("append")
        try Self.source(at: dir.sub("source"))
        let before = try Self.target(at: dir.sub("target"))
        let text = try CLIExportImportTests.export(dir.sub("source"))

        // Without --append a log is refused as before, and left as it was.
        let refused = try CLIProcess.run(["import", dir.sub("target")], stdin: text)
        #expect(refused.status == 2 && refused.stderr.contains("already holds a log") && refused.stderr.contains("--append"), "\(refused)")

        let output = try CLIProcess.run(["import", dir.sub("target"), "--append", "--json"], stdin: text)
        #expect(output.status == 0, "\(output)")
        let summary = try #require(CLITests.object(output.stdout))
        #expect(summary["appended"] as? Bool == true)
        #expect(summary["batches"] as? Int == 3 && summary["events"] as? Int == 4)
        #expect(summary["start_position"] as? Int == Int(before) && summary["end_position"] as? Int == Int(before) + 4)
        #expect(summary["skipped_lines"] as? Int == 4, "3 stream states and 1 cursor left out: \(summary)")

        let source = try Log.openReadOnly(dir.sub("source"))
        let target = try Log.open(at: dir.sub("target"), options: Self.options())
        let original = try source.events(from: 0)
        let appended = try target.events(from: before)
        #expect(appended.count == original.count)
        for (new, old) in zip(appended, original) {
            #expect(new.position == old.position + before, "new positions after the log's end, no gap")
            #expect(new.stream == old.stream && new.type == old.type && new.data == old.data && new.metadata == old.metadata)
            #expect(new.timestamp == old.timestamp && new.key == old.key && new.isTombstone == old.isTombstone)
        }
        // Versions continue this log's: orders had 2 events here.
        #expect(try target.events(inStream: "orders").map(\.version) == [0, 1, 2, 3])
        #expect(try target.events(inStream: "keyed").map(\.version) == [0])
        // Batch boundaries are kept: one append per exported batch.
        var counts: [Int] = []
        try target.readBatches(from: before) { counts.append($0.recordCount) }
        #expect(counts == [1, 2, 1])
        // Cursors are this log's own: the export's are left out.
        #expect(try target.cursors().map(\.name) == ["mine"])
        try target.close()
        try source.close()
        #expect(try Log.verify(at: dir.sub("target")).isSound)

        // The same export again: its first batch has no event id, so it is written again, and its
        // second repeats nothing the log's last appends hold; its last batch repeats the last append
        // to "other" (the same event id) and is refused with exit 3, after the first two went in.
        let again = try CLIProcess.run(["import", dir.sub("target"), "--append"], stdin: text)
        #expect(again.status == 3, "\(again)")
        #expect(again.stderr.contains("line 8: ") && again.stderr.contains("already in the log"), "\(again.stderr)")
        #expect(again.stderr.contains("2 batches (3 events) went in before it, at positions \(before + 4)..<\(before + 7)"), "\(again.stderr)")
        let reopened = try Log.openReadOnly(dir.sub("target"))
        #expect(reopened.endPosition == before + 7)
        try reopened.close()
    }

    @Test func aBadLineHalfWayLeavesTheBatchesBeforeItAndSaysSo() throws {
        let dir = TemporaryDirectory("append")
        try Self.source(at: dir.sub("source"))
        let before = try Self.target(at: dir.sub("target"))
        var lines = try CLIExportImportTests.export(dir.sub("source")).split(separator: "\n").map(String.init)
        // Line 5 is the first record of the second batch (of two records): its base64 broken.
        #expect(lines[4].hasPrefix(#"{"position":1,"#))
        lines[4] = lines[4].replacingOccurrences(of: #""data_base64":""#, with: #""data_base64":"!!"#)
        let output = try CLIProcess.run(["import", dir.sub("target"), "--append"], stdin: lines.joined(separator: "\n"))
        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("line 5: \"data_base64\" is not base64"), "\(output.stderr)")
        #expect(output.stderr.contains("1 batch (1 event) went in before it, at positions \(before)..<\(before + 1)"), "\(output.stderr)")
        // The first batch is in, whole; nothing of the second.
        let log = try Log.openReadOnly(dir.sub("target"))
        #expect(log.endPosition == before + 1)
        #expect(try log.events(from: before).map(\.type) == ["Placed"])
        try log.close()
        #expect(try Log.verify(at: dir.sub("target")).isSound)

        // Cut short after the second batch: the first two go in, then the missing last line is reported.
        let text = try CLIExportImportTests.export(dir.sub("source")).split(separator: "\n").map(String.init)
        let cut = try CLIProcess.run(["import", dir.sub("target"), "--append"], stdin: text.prefix(6).joined(separator: "\n"))
        #expect(cut.status == 2 && cut.stderr.contains("without the export's last line"), "\(cut)")
        #expect(cut.stderr.contains("2 batches (3 events) went in"), "\(cut.stderr)")
    }

    @Test func aStreamMarkerIsRefusedAndAMissingLogToo() throws {
        let dir = TemporaryDirectory("append")
        let log = try Log.open(at: dir.sub("source"), options: Self.options())
        try log.append([NewEvent(stream: "a", type: "T", data: [1])])
        _ = try log.deleteStream("a")
        try log.close()
        let before = try Self.target(at: dir.sub("target"))
        let text = try CLIExportImportTests.export(dir.sub("source"))
        let output = try CLIProcess.run(["import", dir.sub("target"), "--append"], stdin: text)
        #expect(output.status == 2, "\(output)")
        #expect(output.stderr.contains("line 5: ") && output.stderr.contains("stream marker $deleted of stream a cannot be appended"), "\(output.stderr)")
        #expect(output.stderr.contains("1 batch (1 event) went in before it"), "\(output.stderr)")
        let target = try Log.openReadOnly(dir.sub("target"))
        #expect(target.endPosition == before + 1)
        try target.close()

        // --append needs a log.
        let missing = try CLIProcess.run(["import", dir.sub("nothing"), "--append"], stdin: text)
        #expect(missing.status == 2 && missing.stderr.contains("holds no log"), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("nothing")))
    }
}
