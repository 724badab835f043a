import Foundation
import Testing
@testable import EventLog
@testable import EventLogCLI

/// `ExportReader`'s two ways of reading a record line: the one pass for
/// lines written as `export` writes them, and the general JSON path for any
/// other. Over real exports, every record line takes the one pass, and the
/// general path reads it the same way (the fuzz target `import-json` checks
/// the second on mutated lines).
@Suite struct ExportReaderPathsTests {
    /// Each record line of `export`: taken by the one pass, and read the same by the general path.
    static func expectBothPathsAgree(on export: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        var records = 0
        for text in export.split(separator: "\n") where text.hasPrefix(#"{"position":"#) {
            let line = Array(text.utf8)
            var canonical = ExportReader()
            let taken = canonical.parseCanonicalRecord(line)
            #expect(taken, "export writes it canonically: \(text)", sourceLocation: sourceLocation)
            var general = ExportReader()
            guard case .record = try general.parseGeneral(line) else {
                Issue.record("not a record: \(text)", sourceLocation: sourceLocation)
                continue
            }
            #expect(canonical.readTheSameRecord(as: general, from: line), "\(text)", sourceLocation: sourceLocation)
            records += 1
        }
        return records
    }

    /// The export test's log: metadata and headers, keys, tombstones, binary data, stream markers, gaps.
    @Test func everyRecordLineOfAPlainExportIsReadTheSameBothWays() throws {
        let dir = TemporaryDirectory("export-paths")
        try CLIExportImportTests.buildLog(at: dir.path).close()
        let export = try CLIExportImportTests.export(dir.path)
        let records = try Self.expectBothPathsAgree(on: export)
        #expect(records >= 30, "what scavenging left of the log")
        #expect(export.contains(#""marker":true"#) && export.contains(#""tombstone":true"#) && export.contains(#""metadata":{"#))
    }

    /// An encrypted log with a forgotten stream: `"forgotten": true` is read by both paths.
    @Test func forgottenEventsAreReadTheSameBothWays() throws {
        let dir = TemporaryDirectory("export-paths-forgotten")
        try EncryptedImportTests.buildSource(at: dir.sub("log")).close()
        let keyFile = dir.sub("master.key")
        Damage.write(keyFile, EncryptionTests.key)
        chmod(keyFile, 0o600)
        let export = try CLIProcess.run(["export", dir.sub("log")], environment: ["EVENTLOG_MASTER_KEY_FILE": keyFile])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(try Self.expectBothPathsAgree(on: export.stdout) > 700)
        var reader = ExportReader()
        let forgotten = export.stdout.split(separator: "\n").filter { $0.contains(#""forgotten":true"#) }
        #expect(forgotten.count > 100)
        for text in forgotten {
            guard case .record = try reader.parse(Array(text.utf8)) else { Issue.record("not a record: \(text)"); continue }
            #expect(reader.record.isForgotten && reader.data.isEmpty && reader.record.metadata == nil)
        }
    }
}
