import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog verify --deep`, run as a real child process on logs with real damaged files
/// that the plain checks pass.
@Suite struct CLIVerifyDeepTests {
    static func buildLog(at path: String) throws {
        let log = try Log.open(at: path, options: CLIExportImportTests.options())
        for i in 0..<40 {
            try log.append([
                NewEvent(stream: "order-\(i % 3)", type: "Placed", data: Array(repeating: UInt8(i), count: 100)),
                NewEvent(stream: "audit", type: "Seen", data: [UInt8(i)]),
            ])
        }
        _ = try log.deleteStream("order-2")
        try log.close()
    }

    static func verify(_ path: String, _ extra: [String]) throws -> (CLIProcess.Output, [String: Any]) {
        let output = try CLIProcess.run(["verify", path, "--json"] + extra)
        let object = try #require(CLITests.object(output.stdout), "not JSON: \(output)")
        return (output, object)
    }

    static func problems(_ object: [String: Any]) -> [[String: Any]] { object["problems"] as? [[String: Any]] ?? [] }

    @Test func aSoundLogIsSoundDeeply() throws {
        let dir = TemporaryDirectory("deep")
        try Self.buildLog(at: dir.path)
        let (output, object) = try Self.verify(dir.path, ["--deep"])
        #expect(output.status == 0, "\(output)")
        #expect(object["deep"] as? Bool == true)
        #expect(object["streams_compared"] as? Int == 4)
        #expect((object["notes"] as? [String]) == [])
        let text = try CLIProcess.run(["verify", dir.path, "--deep"])
        #expect(text.status == 0 && text.stdout.contains("deep: 4 streams compared with a replay, 0 cursors checked"), "\(text)")
        // Without --deep the JSON keeps its keys.
        let (_, plain) = try Self.verify(dir.path, [])
        #expect(Set(plain.keys) == ["sound", "segments", "batches", "events", "index_files", "problems"])
    }

    /// A stream table run whose checksums hold but whose row is not what the log says: plain verify
    /// passes it (the run is well formed), --deep names the run.
    @Test func aStreamTableRunThatDisagreesWithTheLog() throws {
        let dir = TemporaryDirectory("deep")
        try Self.buildLog(at: dir.path)
        let directory = DirectoryOperations(path: dir.path, faults: nil)
        let names = try directory.list().filter { $0.hasSuffix(".streamtable") }
        #expect(!names.isEmpty)
        // One run for the whole log, as a merge would write it, with order-1's next version off by one.
        var rows: [String: (UInt64, StreamTableRow)] = [:]
        for run in StreamTableRunChain.select(in: directory, end: 81) {
            try run.forEachRow { hash, row in rows[row.name] = (hash, row) }
        }
        var wrong = try #require(rows["order-1"])
        wrong.1.nextVersion += 1
        rows["order-1"] = wrong
        for name in names { try directory.remove(name) }
        let sorted = rows.values.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : Array($0.1.name.utf8).lexicographicallyPrecedes(Array($1.1.name.utf8)) }
        let runName = FileNames.streamTableRun(from: 0, to: 81)
        try StreamTableRunWriter.write(rows: sorted, to: runName, in: directory, from: 0, to: 81, expectedRows: sorted.count)

        let (plainOutput, _) = try Self.verify(dir.path, [])
        #expect(plainOutput.status == 0, "plain verify checks the run's form, not its contents: \(plainOutput)")
        let (output, object) = try Self.verify(dir.path, ["--deep"])
        #expect(output.status == 1, "\(output)")
        let found = Self.problems(object)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?["file"] as? String == directory.file(runName))
        let reason = found.first?["reason"] as? String ?? ""
        #expect(reason.contains("stream order-1") && reason.contains("next version 14 where the log replays 13"), "\(reason)")
        #expect(reason.contains("rebuilds it"), "derived data: says it is rebuilt")
    }

    /// A cursor past the end of the log (as a journal copied from another machine, or a
    /// lost tail, leaves one): plain verify does not read the journal, --deep names it.
    @Test func aCursorPastTheEnd() throws {
        let dir = TemporaryDirectory("deep")
        try Self.buildLog(at: dir.path)
        let log = try Log.open(at: dir.path, options: CLIExportImportTests.options())
        try log.commitCursor("projection", position: 10)
        try log.close()
        // A record setting the cursor to position 500, appended to the journal as a writer would.
        var writer = ByteWriter()
        CursorRecord(kind: .set, name: "projection", position: 500, timestamp: currentTimestamp()).encode(into: &writer, layout: .v2)
        let journal = try #require(FileHandle(forWritingAtPath: dir.path + "/cursors.journal"))
        journal.seekToEndOfFile()
        journal.write(Data(writer.bytes))
        try journal.close()

        let (plainOutput, _) = try Self.verify(dir.path, [])
        #expect(plainOutput.status == 0, "\(plainOutput)")
        let (output, object) = try Self.verify(dir.path, ["--deep"])
        #expect(output.status == 1, "\(output)")
        let found = Self.problems(object)
        #expect(found.count == 1, "\(found)")
        #expect(found.first?["file"] as? String == dir.path + "/cursors.journal")
        let reason = found.first?["reason"] as? String ?? ""
        #expect(reason.contains("cursor projection is at position 500, past the end of the log 81"), "\(found)")
        #expect(object["cursors_checked"] as? Int == 1)
    }

    /// A cursor that retention left behind the log start (it is not one the
    /// settings hold retention back for): a note, not a problem; exit 0.
    @Test func aCursorBehindTheStartIsANote() throws {
        let dir = TemporaryDirectory("deep")
        var options = LogOptions(durability: .none)
        options.segmentBytes = Limits.minSegmentBytes
        let log = try Log.open(at: dir.path, options: options)
        for i in 0..<200 { try log.append([NewEvent(stream: "s\(i % 5)", type: "T", data: Array(repeating: UInt8(i & 0xFF), count: 200))]) }
        try log.commitCursor("slow", position: 1)
        var settings = try log.settings()
        settings.retainBytes = UInt64(3 * Limits.minSegmentBytes)
        try log.updateSettings(settings)
        _ = try log.compact()
        let start = log.startPosition
        try log.close()
        #expect(start > 1, "retention moved the start to \(start)")

        let (output, object) = try Self.verify(dir.path, ["--deep"])
        #expect(output.status == 0, "\(output)")
        #expect(Self.problems(object).isEmpty, "\(object)")
        let notes = object["notes"] as? [String] ?? []
        #expect(notes.contains { $0.contains("cursor slow is at position 1, below the log start \(start)") }, "\(notes)")
    }

    /// A record whose version breaks its stream's sequence, in a batch whose checksums are made to hold.
    @Test func aRecordWithAVersionGap() throws {
        let dir = TemporaryDirectory("deep")
        // A log of one segment written by the importer with a version gap in stream s.
        let importer = try LogImporter(at: dir.path + "/log", logID: UUID(), startPosition: 0, options: CLIExportImportTests.options())
        try importer.beginBatch(at: 0, firstTimestamp: 1_000)
        for (i, version) in [0, 1, 3].enumerated() {
            try importer.appendRecord(Event(
                position: UInt64(i), stream: "s", version: UInt64(version), type: "T", data: [1], metadata: EventMetadata(),
                timestamp: 1_000))
        }
        try importer.endBatch()
        try importer.finish(endPosition: 3, streams: nil)
        let (plainOutput, _) = try Self.verify(dir.path + "/log", [])
        #expect(plainOutput.status == 0, "\(plainOutput)")
        let (output, object) = try Self.verify(dir.path + "/log", ["--deep"])
        #expect(output.status == 1, "\(output)")
        let reasons = Self.problems(object).compactMap { $0["reason"] as? String }
        #expect(reasons.contains { $0.contains("event 2: stream s version 3 where its next version is 2: versions have no gaps") }, "\(reasons)")
    }
}
