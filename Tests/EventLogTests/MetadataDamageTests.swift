import Foundation
import Testing

@testable import EventLog

/// A damaged or missing `eventlog.meta` (Format.md §10.2): readers read every
/// event with the log id of the segment headers and report the file; a writer
/// refuses, naming `eventlog repair`, which rebuilds it from the segment
/// headers (settings at their defaults, said in the plan).
@Suite struct MetadataDamageTests {
    /// The kinds of damage, and the offset each is reported at: a flipped
    /// byte fails the whole-file checksum (its field, byte 56, is named); a
    /// file cut short, zeroed or missing is named at byte 0.
    static let kinds: [(String, Int64)] = [("flipped", 56), ("truncated", 0), ("zeroed", 0), ("missing", 0)]

    static func damage(_ kind: String, _ file: String) {
        switch kind {
        case "flipped": Damage.flipBit(file, at: 20)
        case "truncated": Damage.truncate(file, to: 30)
        case "zeroed": Damage.write(file, [UInt8](repeating: 0, count: LogMetadata.size))
        default: Damage.remove(file)
        }
    }

    @Test(arguments: kinds.map(\.0))
    func aDamagedMetadataFileLeavesTheEventsReadableAndRepairRebuildsIt(_ kind: String) throws {
        let offset = try #require(Self.kinds.first { $0.0 == kind }?.1)
        let dir = TemporaryDirectory()
        let logID: [UInt8]
        do {
            let log = try Log.open(at: dir.path, options: LogOptions(segmentBytes: 1 << 16, durability: .none))
            try Fixtures.append(log, 0..<2000, batch: 50)  // several segments
            try log.commitCursor("relay", position: 700)
            try log.close()
            logID = try LogMetadata.decode(Damage.read(dir.sub(FileNames.metadata)), file: "").logID
        }
        let meta = dir.sub(FileNames.metadata)
        Self.damage(kind, meta)

        for _ in 0..<2 {  // a retried open reports the same
            let reader = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
            #expect(reader.recovery.damagedFiles == [
                RecoveryReport.DamagedFile(
                    file: meta, offset: offset, reason: reader.recovery.damagedFiles.first?.reason ?? ""),
            ])
            #expect(try reader.events(from: 0).count == 2000)
            #expect(try reader.cursorPosition("relay") == 700)  // the journal's log id matches the segments'
            try reader.close()
        }
        do {
            _ = try Log.open(at: dir.path, options: LogOptions(durability: .none))
            Issue.record("a writer opened a log whose metadata file is \(kind)")
        } catch {
            #expect("\(error)".contains("eventlog repair") && "\(error)".contains(meta), "\(error)")
        }
        let inspect = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("\"damaged_files\":[{\"file\":\"\(meta)\",\"offset\":\(offset),"), "\(inspect)")
        let dump = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dump.status == 0 && dump.lines.count == 2000, "\(dump.stderr)")
        let tail = try CLIProcess.run(["tail", dir.path, "--json"])
        #expect(tail.status == 0 && tail.lines.count == 2000, "\(tail.stderr)")
        let export = try CLIProcess.run(["export", dir.path])
        #expect(export.status == 0 && export.lines.filter { $0.hasPrefix("{\"position\":") }.count == 2000, "\(export.stderr)")
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 1 && verify.stdout.contains("\(meta) at byte \(offset)"), "\(verify)")

        let repair = try CLIProcess.run(["repair", dir.path, "--yes"])
        #expect(repair.status == 0 && repair.stdout.contains("rebuilt from the segment headers"), "\(repair)")
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
        #expect(try LogMetadata.decode(Damage.read(meta), file: meta).logID == logID)
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(log.recovery.damagedFiles.isEmpty)
        #expect(try log.cursorPosition("relay") == 700)
        try Fixtures.append(log, 2000..<2010, batch: 10)
        #expect(try log.events(from: 0).count == 2010)
        try log.close()
    }
}
