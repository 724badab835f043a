import Foundation
import Testing
@testable import EventLog

/// `eventlog dump SEGMENT-FILE`: one segment file read on its own (a copy
/// outside its log here), run as a real child process.
@Suite struct CLIDumpSegmentFileTests {
    /// A log of 400 events over segments of 8 KiB, and a copy of its second
    /// segment in another directory; returns the copy's path and its positions.
    static func copiedSegment(_ dir: TemporaryDirectory) throws -> (log: String, file: String, positions: Range<UInt64>) {
        let log = dir.sub("log")
        let opened = try Log.open(at: log, options: LogOptions(segmentBytes: 8 << 10, durability: .none))
        try Fixtures.append(opened, 0..<400, batch: 10, size: 60)
        try opened.close()
        let names = try FileManager.default.contentsOfDirectory(atPath: log).filter { $0.hasSuffix(".segment") }.sorted()
        let name = try #require(names.dropFirst().first)
        let segment = log + "/" + name
        try FileManager.default.createDirectory(atPath: dir.sub("aside"), withIntermediateDirectories: true)
        let file = dir.sub("aside/" + name)
        try FileManager.default.copyItem(atPath: segment, toPath: file)
        let batches = Fixtures.batches(in: file)
        let last = try #require(batches.last)
        return (log, file, batches[0].base..<(last.base + UInt64(last.count)))
    }

    @Test func aSegmentFilePrintsWhatTheLogPrintsForItsPositions() throws {
        let dir = TemporaryDirectory("cli")
        let (log, file, positions) = try Self.copiedSegment(dir)
        let range = ["--from", "\(positions.lowerBound)", "--to", "\(positions.upperBound)"]
        for format in [[], ["--json"], ["--batches"], ["--batches", "--json"], ["--data", "hex"]] {
            let fromLog = try CLIProcess.run(["dump", log] + range + format)
            let fromFile = try CLIProcess.run(["dump", file] + format)
            #expect(fromFile.status == 0 && fromFile.stderr.isEmpty, "\(format): \(fromFile)")
            #expect(fromFile.lines == fromLog.lines, "\(format)")
            #expect(!fromFile.lines.isEmpty)
        }
        // --from, --to, --count and the filters apply as to a log.
        let window = try CLIProcess.run(["dump", file, "--from", "\(positions.lowerBound + 5)", "--count", "3", "--json"])
        #expect(window.lines.compactMap { CLITests.object($0)?["position"] as? Int } == (0..<3).map { Int(positions.lowerBound) + 5 + $0 })
        let typed = try CLIProcess.run(["dump", file, "--type", "Type1"])
        let typedFromLog = try CLIProcess.run(["dump", log, "--type", "Type1"] + range)
        #expect(typed.lines == typedFromLog.lines && !typed.lines.isEmpty)
        // --stream reads a log's stream index: not for a file.
        #expect(try CLIProcess.run(["dump", file, "--stream", "stream-1"]).status == 2)
    }

    @Test func damageEndsTheOutputWithExit1NamingFileAndOffset() throws {
        let dir = TemporaryDirectory("cli")
        let (log, file, positions) = try Self.copiedSegment(dir)
        let batches = Fixtures.batches(in: file)
        Damage.flipBit(file, at: batches[2].offset + 70)
        let output = try CLIProcess.run(["dump", file])
        #expect(output.status == 1, "\(output)")
        #expect(output.stderr.contains(file) && output.stderr.contains("at byte \(batches[2].offset)"), "\(output.stderr)")
        let before = try CLIProcess.run(["dump", log, "--from", "\(positions.lowerBound)", "--to", "\(batches[2].base)"])
        #expect(output.lines == before.lines && output.lines.count == Int(batches[2].base - positions.lowerBound))
        let listing = try CLIProcess.run(["dump", file, "--batches"])
        #expect(listing.status == 1 && listing.lines.count == 2, "\(listing)")
        // Not a segment at all: a finding too.
        let text = dir.sub("aside/notes.txt")
        Damage.write(text, Array("not a segment, just some text for the header".utf8))
        let foreign = try CLIProcess.run(["dump", text])
        #expect(foreign.status == 1 && foreign.stderr.contains("not an EventLog segment"), "\(foreign)")
    }
}
