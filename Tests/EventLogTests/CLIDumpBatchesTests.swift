import Foundation
import Testing
@testable import EventLog

/// `eventlog dump --batches`, run as a real child process.
@Suite struct CLIDumpBatchesTests {
    /// The CRC32C of the batch frame at `offset` of `segment`, read from the file (bytes 4..<8 of the frame).
    static func storedCRC(_ segment: String, at offset: Int) -> String {
        let bytes = Damage.read(segment)
        guard offset + 8 <= bytes.count else { return "past the end of \(segment)" }
        let crc = bytes[(offset + 4)..<(offset + 8)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return String(format: "%08x", crc)
    }

    /// Fields of a text line, two spaces apart.
    static func fields(_ line: String) -> [String] {
        line.components(separatedBy: "  ")
    }

    /// The text listing matches `Tests/Golden/dump-batches.txt`, with each
    /// line's CRC32C (the log id seeds the chain, so it differs per run)
    /// first checked against the segment file and then replaced by `<crc32c>`.
    @Test func textListingMatchesTheGoldenFile() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        let output = try CLIProcess.run(["dump", dir.path, "--batches"])
        #expect(output.status == 0, "\(output)")
        #expect(output.stderr.isEmpty)
        var normalised = ""
        for line in output.lines {
            var columns = Self.fields(line)
            try #require(columns.count == 8, "\(line)")
            let offset = try #require(Int(columns[1]), "\(line)")
            #expect(columns[3] == Self.storedCRC(dir.sub(columns[0]), at: offset), "\(line)")
            columns[3] = "<crc32c>"
            normalised += columns.joined(separator: "  ") + "\n"
        }
        try GoldenLog.expectMatches(normalised, golden: "dump-batches.txt")
    }

    @Test func jsonListingHasTheKeysAndValuesOfTheText() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        let text = try CLIProcess.run(["dump", dir.path, "--batches"])
        let json = try CLIProcess.run(["dump", dir.path, "--batches", "--json"])
        #expect(json.status == 0, "\(json)")
        try #require(json.lines.count == 5 && text.lines.count == 5, "\(json)\n\(text)")
        let keys: Set = ["segment", "offset", "length", "crc", "codec", "base_position", "record_count", "first_timestamp"]
        var next = 0
        for (line, textLine) in zip(json.lines, text.lines) {
            let object = try #require(CLITests.object(line), "not JSON: \(line)")
            #expect(Set(object.keys) == keys, "\(line)")
            let columns = Self.fields(textLine)
            #expect(object["segment"] as? String == columns[0])
            #expect((object["offset"] as? Int).map(String.init) == columns[1])
            #expect((object["length"] as? Int).map(String.init) == columns[2])
            #expect(object["crc"] as? String == columns[3])
            #expect(object["codec"] as? String == "none")
            // Batches follow each other: each starts where the one before ended.
            let base = try #require(object["base_position"] as? Int)
            #expect(base == next)
            next = base + (object["record_count"] as? Int ?? 0)
            // Event `base` of the golden log is stamped `base` seconds after its first timestamp.
            #expect(object["first_timestamp"] as? Int == Int(GoldenLog.firstTimestamp) + base * 1_000_000, "\(line)")
        }
        #expect(next == 14)
    }

    /// `--from` and `--to` keep the batches holding a position in [from, to);
    /// `--count` caps them.
    @Test func positionsAndCountLimitTheBatches() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)  // batches at 0, 3, 4, 9, 12
        func bases(_ options: [String]) throws -> [Int] {
            let output = try CLIProcess.run(["dump", dir.path, "--batches", "--json"] + options)
            #expect(output.status == 0, "\(options): \(output)")
            return output.lines.compactMap { CLITests.object($0)?["base_position"] as? Int }
        }
        #expect(try bases([]) == [0, 3, 4, 9, 12])
        #expect(try bases(["--from", "5"]) == [4, 9, 12])
        #expect(try bases(["--from", "4", "--to", "9"]) == [4])
        #expect(try bases(["--from", "4", "--to", "10"]) == [4, 9])
        #expect(try bases(["--to", "1"]) == [0])
        #expect(try bases(["--from", "13", "--count", "5"]) == [12])
        #expect(try bases(["--count", "2"]) == [0, 3])
        #expect(try bases(["--count", "0"]) == [])
        #expect(try bases(["--from", "14"]) == [])
    }

    @Test func compressedBatchesSayLZ4() throws {
        let dir = TemporaryDirectory("cli")
        let lines = (0..<20).map { i in #"{"stream": "s", "type": "T", "data": "\#(String(repeating: "abc", count: 100))\#(i)"}"# }
        try CLITests.append(lines, to: dir.path, options: ["--compression", "lz4", "--batch", "20"])
        let output = try CLIProcess.run(["dump", dir.path, "--batches", "--json"])
        #expect(output.status == 0, "\(output)")
        let batch = try #require(output.lines.first.flatMap(CLITests.object), "\(output)")
        #expect(batch["codec"] as? String == "lz4")
        // 20 events of 300 bytes in far fewer bytes.
        #expect((batch["length"] as? Int ?? .max) < 20 * 300 / 2, "\(batch)")
    }

    /// A damaged batch ends the listing with exit 1, naming the file and the
    /// batch's offset, after the lines of the batches before it.
    @Test func damageIsAFindingNamingFileAndOffset() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        let segment = dir.sub("00000000000000000000.segment")
        let batches = Fixtures.batches(in: segment)
        try #require(batches.count == 3, "\(batches)")
        Damage.flipBit(segment, at: batches[1].offset + BatchHeader.size + 5)
        let output = try CLIProcess.run(["dump", dir.path, "--batches"])
        #expect(output.status == 1, "\(output)")
        #expect(output.lines.count == 1, "the first batch is listed: \(output)")
        #expect(output.stderr.contains("\(segment) at byte \(batches[1].offset): batch checksum mismatch"), "\(output.stderr)")
        // From past the damaged batch, the listing goes on (a batch before --from is passed on its header).
        let after = try CLIProcess.run(["dump", dir.path, "--batches", "--from", "4"])
        #expect(after.status == 0, "\(after)")
        #expect(after.lines.count == 3, "\(after)")
    }

    @Test func eventOptionsAreUsageErrors() throws {
        let dir = TemporaryDirectory("cli")
        try GoldenLog.build(at: dir.path)
        for usage in [
            ["--type", "T"], ["--stream", "order-1"], ["--stream-prefix", "order-"], ["--backward"], ["--from-version", "1"],
        ] {
            let output = try CLIProcess.run(["dump", dir.path, "--batches"] + usage)
            #expect(output.status == 2, "\(usage): \(output)")
            #expect(output.stderr.contains("does not go with --batches"), "\(usage): \(output.stderr)")
        }
        let missing = try CLIProcess.run(["dump", dir.sub("nothing-here"), "--batches"])
        #expect(missing.status == 2, "\(missing)")
    }
}
