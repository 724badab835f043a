import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `eventlog export` and `eventlog import`, run as real child processes.
@Suite struct CLIExportImportTests {
    static func options() -> LogOptions {
        var options = LogOptions(segmentBytes: 4096, durability: .none)
        options.maintenanceInterval = nil
        options.checkpointBytes = 4096
        return options
    }

    static let ids = (0..<400).map { _ in UUID() }

    /// A log with several streams, metadata and headers (a repeated one, one
    /// named like a field), keys, tombstones, binary data, multi-event
    /// batches, a soft and a hard deletion, a truncation, stream limits, and
    /// retention settings; scavenged, so it has gaps; its active segment
    /// holds a last multi-stream append with event ids.
    static func buildLog(at path: String) throws -> Log {
        let log = try Log.open(at: path, options: options())
        var n = 0
        func id() -> UUID { n += 1; return ids[n] }
        for i in 0..<60 {
            let metadata = EventMetadata(
                eventID: id(), schemaVersion: UInt32(i % 3), contentType: i % 2 == 0 ? "application/json" : nil,
                correlationID: "corr-\(i)", causationID: i % 5 == 0 ? "cause" : nil,
                headers: [EventMetadata.Header("tenant", "acme"), EventMetadata.Header("tenant", "second"), EventMetadata.Header("event_id", "a header")])
            try log.append([
                NewEvent(stream: "order-\(i % 4)", type: "Placed", data: Array(#"{"i":\#(i)}"#.utf8), metadata: metadata),
                NewEvent(stream: "bin-\(i % 3)", type: "Blob", data: (0..<(i * 7 % 200)).map { UInt8(($0 * 31 + i) % 256) },
                         metadata: EventMetadata(eventID: id())),
                NewEvent(stream: "keyed", type: "Set", data: [UInt8(i)], key: "k-\(i % 5)", isTombstone: i % 11 == 10),
            ])
        }
        _ = try log.truncateStream("order-0", before: 10)
        _ = try log.deleteStream("order-1")
        _ = try log.deleteStream("order-2", hard: true)
        _ = try log.setStreamLimits("bin-0", StreamLimits(maxAge: .seconds(86_400 * 365 * 100), maxCount: 3))
        try log.updateSettings(LogSettings(retainCursors: ["relay"], keyCompaction: true, tombstoneRetention: .seconds(3600)))
        for i in 0..<30 {
            try log.append([NewEvent(stream: "filler-\(i % 7)", type: "Fill", data: Array(repeating: UInt8(i), count: 150))])
        }
        // Soft-deleted order-1 written again continues its versions.
        try log.append([NewEvent(stream: "order-1", type: "Placed", data: Array("again".utf8))])
        let result = try log.compact()
        #expect(result.eventsScavenged > 0, "the log must have gaps: \(result)")
        try log.append([NewEvent(stream: "keyed", type: "Unset", data: [], key: "k-1", isTombstone: true)])
        _ = try log.append(
            [NewEvent(stream: "last-a", type: "A", data: [1], metadata: EventMetadata(eventID: ids[390])),
             NewEvent(stream: "last-b", type: "B", data: [2], metadata: EventMetadata(eventID: ids[391])),
             NewEvent(stream: "last-a", type: "A", data: [3], metadata: EventMetadata(eventID: ids[392]))],
            expecting: ["last-a": .noStream])
        // Cursors (one behind the start of the scavenged part, one at the end) and a consumer group with parked events.
        try log.commitCursor("relay", position: 40)
        try log.createCursor("projector ✓", at: .end)
        try log.resetCursor("zero", to: .position(0))
        let group = try log.consumerGroup("mailer", options: ConsumerGroupOptions(maxDeliveries: 1))
        for (k, delivery) in try group.receive(maxCount: 4).enumerated() {
            if k % 2 == 0 { try group.nack(delivery.event.position) } else { try group.ack(delivery.event.position) }
        }
        #expect(!group.parked().isEmpty, "the group parked events")
        return log
    }

    static func export(_ directory: String, _ extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let output = try CLIProcess.run(["export", directory] + extra)
        #expect(output.status == 0, "\(output)", sourceLocation: sourceLocation)
        #expect(output.stderr.isEmpty, "\(output.stderr)", sourceLocation: sourceLocation)
        return output.stdout
    }

    /// Every read of the two logs agrees.
    static func expectSameReads(_ a: Log, _ b: Log) throws {
        #expect(a.startPosition == b.startPosition)
        #expect(a.endPosition == b.endPosition)
        #expect(try a.events(from: 0) == b.events(from: 0))
        var batchesA: [[UInt64]] = []
        var batchesB: [[UInt64]] = []
        try a.readBatches { batchesA.append([$0.basePosition, UInt64($0.recordCount), UInt64(bitPattern: $0.firstTimestamp)]) }
        try b.readBatches { batchesB.append([$0.basePosition, UInt64($0.recordCount), UInt64(bitPattern: $0.firstTimestamp)]) }
        #expect(batchesA == batchesB)
        let infos = try a.streamInfos()
        #expect(infos == (try b.streamInfos()))
        #expect(try a.streamSnapshots() == b.streamSnapshots())
        for info in infos where info.deletion != .hard {
            #expect(try a.events(inStream: info.name) == b.events(inStream: info.name), "\(info.name)")
        }
        #expect(try a.settings() == b.settings())
        #expect(a.consumerSnapshot() == b.consumerSnapshot())
        // Every position, removed ones included, reads the same.
        for position in a.startPosition..<a.endPosition {
            let left = Result(catching: { try a.event(at: position) })
            let right = Result(catching: { try b.event(at: position) })
            switch (left, right) {
            case (.success(let x), .success(let y)): #expect(x == y)
            case (.failure, .failure): break
            default: Issue.record("position \(position): \(left) vs \(right)")
            }
        }
    }

    @Test func exportImportExportIsByteIdenticalAndTheLogReadsTheSame() throws {
        let source = TemporaryDirectory("export")
        let original = try Self.buildLog(at: source.path)
        try original.close()
        let first = try Self.export(source.path)
        let lines = first.split(separator: "\n")
        #expect(lines.contains { $0.contains(#""marker":true"#) && $0.contains("$deleted") })
        #expect(lines.contains { $0.contains("$truncated") } && lines.contains { $0.contains("$limits") })
        #expect(lines.contains { $0.contains(#""tombstone":true"#) })
        // Every cursor, with when it was set, and the group's parked events, before the last line.
        let cursorLines = lines.filter { $0.hasPrefix(#"{"cursor":"#) }
        #expect(cursorLines.count == 4, "relay, projector ✓, zero and group:mailer: \(cursorLines)")
        #expect(cursorLines.contains { $0.hasPrefix(#"{"cursor":"relay","position":40,"updated_at":"#) })
        #expect(lines.contains { $0.hasPrefix(#"{"parked":"group:mailer","position":"#) && $0.hasSuffix(#","deliveries":1}"#) })
        #expect(lines.last?.hasSuffix(#","cursors":4,"parked":\#(lines.filter { $0.hasPrefix(#"{"parked":"#) }.count)}"#) == true)
        // Gaps: some batch starts after the end of the one before.
        var expected: UInt64 = 0
        var gaps = 0
        for line in lines where line.hasPrefix(#"{"batch":"#) {
            let object = try #require(CLITests.object(String(line)))
            let base = UInt64(try #require(object["batch"] as? Int))
            if base > expected { gaps += 1 }
            expected = base + UInt64(try #require(object["record_count"] as? Int))
        }
        #expect(gaps > 0, "scavenging left gaps")

        let target = TemporaryDirectory("import")
        let into = target.path + "/log"
        let imported = try CLIProcess.run(["import", into, "--json"], stdin: first)
        #expect(imported.status == 0, "\(imported)")
        let summary = try #require(CLITests.object(imported.stdout))
        #expect(summary["records"] as? Int == lines.filter { $0.hasPrefix(#"{"position":"#) }.count)
        #expect(summary["markers"] as? Int == 3 + 1)  // truncate, two deletions, limits
        let second = try Self.export(into)
        #expect(second == first, "export → import → export is byte-identical")
        #expect(try Log.verify(at: into).isSound)
        // Deeply sound too: the scavenged original (what survives scavenging is compared with a
        // replay) and the copy, whose stream table run import wrote from the exported states.
        for path in [source.path, into] {
            let deep = try CLIProcess.run(["verify", path, "--deep"])
            #expect(deep.status == 0, "\(deep)")
        }

        let a = try Log.openReadOnly(source.path)
        let b = try Log.open(at: into, options: Self.options())
        try Self.expectSameReads(a, b)
        #expect(try b.cursorPosition("relay") == 40)
        #expect(try b.consumerGroup("mailer").parked().map(\.position) == a.consumerSnapshot().parked.map(\.position))
        // The last append is recognised as a retry in the imported log, as in the original.
        let retry = try b.append(
            [NewEvent(stream: "last-a", type: "A", data: [1], metadata: EventMetadata(eventID: Self.ids[390])),
             NewEvent(stream: "last-b", type: "B", data: [2], metadata: EventMetadata(eventID: Self.ids[391])),
             NewEvent(stream: "last-a", type: "A", data: [3], metadata: EventMetadata(eventID: Self.ids[392]))],
            expecting: ["last-a": .noStream])
        #expect(retry.wasRetry)
        #expect(b.endPosition == a.endPosition, "nothing written")
        // The hard-deleted stream stays deleted; versions go on where they were.
        #expect(throws: EventLogError.self) { try b.append([NewEvent(stream: "order-2", type: "X", data: [])]) }
        let next = try b.append([NewEvent(stream: "order-3", type: "X", data: [])], expecting: ["order-3": .exact(14)])
        #expect(next.streams.first?.firstVersion == 15)
        try b.close()
        try a.close()
    }

    @Test func importRefusesALogAndBadInput() throws {
        let source = TemporaryDirectory("export")
        let log = try Log.open(at: source.path, options: Self.options())
        try log.append([NewEvent(stream: "s", type: "T", data: [1]), NewEvent(stream: "s", type: "T", data: [2])])
        try log.append([NewEvent(stream: "t", type: "T", data: [3])])
        try log.close()
        let text = try Self.export(source.path)

        // A directory holding a log is refused, and left as it was.
        let refused = try CLIProcess.run(["import", source.path], stdin: text)
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stderr.contains("already holds a log"), "\(refused.stderr)")
        #expect(try Self.export(source.path) == text)

        let target = TemporaryDirectory("import")
        func importing(_ input: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> CLIProcess.Output {
            let into = target.path + "/log-\(UUID().uuidString)"
            let output = try CLIProcess.run(["import", into], stdin: input)
            #expect(output.status == 2, "\(output)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: into), "a failed import leaves nothing", sourceLocation: sourceLocation)
            return output
        }
        var lines = text.split(separator: "\n").map(String.init)
        // An unknown key names the line and the key.
        var bad = lines
        bad[2] = bad[2].replacingOccurrences(of: #""stream":"#, with: #""colour":"red","stream":"#)
        #expect(try importing(bad.joined(separator: "\n")).stderr.contains(#"line 3: unknown key "colour""#))
        // Malformed base64.
        bad = lines
        bad[2] = bad[2].replacingOccurrences(of: #""data_base64":""#, with: #""data_base64":"!!"#)
        #expect(try importing(bad.joined(separator: "\n")).stderr.contains("line 3: \"data_base64\" is not base64"))
        // A record not where its batch puts it.
        bad = lines
        bad[3] = bad[3].replacingOccurrences(of: #"{"position":1,"#, with: #"{"position":5,"#)
        #expect(try importing(bad.joined(separator: "\n")).stderr.contains("line 4: record at position 5"))
        // A batch below the end of the one before (out of order).
        bad = lines
        bad[4] = bad[4].replacingOccurrences(of: #"{"batch":2,"#, with: #"{"batch":1,"#)
        #expect(try importing(bad.joined(separator: "\n")).stderr.contains("line 5: batch at position 1 is below"))
        // Cut short: no last line.
        lines.removeLast()
        #expect(try importing(lines.joined(separator: "\n")).stderr.contains("without the export's last line"))
        // Not an export at all.
        #expect(try importing(#"{"stream":"s","type":"T","data":1}"#).stderr.contains("line 1: unknown line kind"))
    }

    /// An export of layout 1 (before cursors: no cursor or parked lines, a
    /// last line without their counts) still imports; its cursor lines are refused.
    @Test func anExportOfLayoutOneStillImports() throws {
        let source = TemporaryDirectory("export")
        let log = try Log.open(at: source.path, options: Self.options())
        try log.append([NewEvent(stream: "s", type: "T", data: [1]), NewEvent(stream: "t", type: "T", data: [2])])
        try log.commitCursor("c", position: 1)
        try log.close()
        let current = try Self.export(source.path).split(separator: "\n").map(String.init)
        #expect(current.first?.hasPrefix(#"{"eventlog_export":2,"#) == true)
        // What the build before wrote: layout 1, no cursor lines, no cursor counts.
        var old = current.filter { !$0.hasPrefix(#"{"cursor":"#) && !$0.hasPrefix(#"{"parked":"#) }
        old[0] = old[0].replacingOccurrences(of: #"{"eventlog_export":2,"#, with: #"{"eventlog_export":1,"#)
        old[old.count - 1] = old[old.count - 1].replacingOccurrences(of: #","cursors":1,"parked":0}"#, with: "}")
        #expect(old.last == #"{"export_end":2,"batches":1,"records":2,"stream_states":2}"#)
        let target = TemporaryDirectory("import")
        let imported = try CLIProcess.run(["import", target.path + "/old"], stdin: old.joined(separator: "\n"))
        #expect(imported.status == 0, "\(imported)")
        let copy = try Log.openReadOnly(target.path + "/old")
        #expect(try copy.events(from: 0).count == 2)
        #expect(try copy.cursors().isEmpty)
        try copy.close()
        // Layout 1 has no cursor lines: one is refused, as are counts of them on its last line.
        var mixed = old
        mixed.insert(#"{"cursor":"c","position":1,"updated_at":5}"#, at: mixed.count - 1)
        let refused = try CLIProcess.run(["import", target.path + "/mixed"], stdin: mixed.joined(separator: "\n"))
        #expect(refused.status == 2 && refused.stderr.contains("line 7: a cursor line in an export of layout 1"), "\(refused)")
        // Layout 2 must count them.
        var uncounted = current
        uncounted[uncounted.count - 1] = old[old.count - 1]
        let short = try CLIProcess.run(["import", target.path + "/short"], stdin: uncounted.joined(separator: "\n"))
        #expect(short.status == 2 && short.stderr.contains("lacks \"cursors\""), "\(short)")
        // A cursor past the export's end.
        var past = current
        let cursorLine = try #require(past.firstIndex { $0.hasPrefix(#"{"cursor":"#) })
        past[cursorLine] = past[cursorLine].replacingOccurrences(of: #""position":1,"#, with: #""position":3,"#)
        let beyond = try CLIProcess.run(["import", target.path + "/past"], stdin: past.joined(separator: "\n"))
        #expect(beyond.status == 2 && beyond.stderr.contains("line \(cursorLine + 1): cursor \"c\" at position 3 is past"), "\(beyond)")
    }

    @Test func fromAndToBoundTheExportToWholeBatches() throws {
        let source = TemporaryDirectory("export")
        let log = try Log.open(at: source.path, options: Self.options())
        for i in 0..<10 {
            try log.append((0..<3).map { NewEvent(stream: "s-\($0)", type: "T", data: [UInt8(i), UInt8($0)]) })
        }
        try log.close()
        // Positions 4..<11 lie in the batches 3..<6, 6..<9 and 9..<12.
        let text = try Self.export(source.path, ["--from", "4", "--to", "11"])
        let lines = text.split(separator: "\n").map(String.init)
        let header = try #require(CLITests.object(lines[0]))
        #expect(header["start_position"] as? Int == 3)
        #expect(header["end_position"] as? Int == 12)
        #expect(header["stream_states"] as? Bool == false)
        #expect(lines.filter { $0.hasPrefix(#"{"batch":"#) }.count == 3)
        #expect(lines.filter { $0.hasPrefix(#"{"position":"#) }.count == 9)
        #expect(!lines.contains { $0.hasPrefix(#"{"stream_state":"#) })

        // Imported, it is a log of positions 3..<12 whose streams come from its records.
        let target = TemporaryDirectory("import")
        let into = target.path + "/log"
        let imported = try CLIProcess.run(["import", into], stdin: text)
        #expect(imported.status == 0, "\(imported)")
        // Exported whole, the copy carries its stream states; its batches and records are the ones imported.
        func records(_ text: String) -> [Substring] { text.split(separator: "\n").filter { $0.hasPrefix(#"{"batch":"#) || $0.hasPrefix(#"{"position":"#) } }
        #expect(records(try Self.export(into)) == records(text))
        let copy = try Log.open(at: into, options: Self.options())
        #expect(copy.startPosition == 3 && copy.endPosition == 12)
        #expect(try copy.streamInfo("s-1")?.currentVersion == 3)
        #expect(try copy.events(from: 0).map(\.position) == Array(3..<12))
        try copy.close()
        #expect(try Log.verify(at: into).isSound)

        // An empty range is a header and a last line.
        let empty = try Self.export(source.path, ["--from", "7", "--to", "7"]).split(separator: "\n")
        #expect(empty.count == 2)
    }
}
