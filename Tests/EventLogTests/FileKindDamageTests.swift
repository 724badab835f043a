import Foundation
import Testing

@testable import EventLog

/// Issue 19's table for every file kind but the segments (Format.md §10.2):
/// a flipped byte, a file cut short, a zeroed file and a missing file. For
/// each: the library's read-only open and `dump`, `tail`, `export` (real
/// child processes of the built `eventlog`) read every event; `verify`
/// exits 1 naming the file and the offset where the damage is (a missing
/// file whose absence has a meaning excepted); a writer's open (on a copy)
/// does what §10.2 says; `repair --yes` brings `verify` back to 0 and
/// appends work. `eventlog.meta` and the cursor journal have their own
/// suites (`MetadataDamageTests`, `CursorJournalDamageTests`).
///
/// Serialized: each case blocks its thread on child processes for seconds,
/// and cases run side by side would hold the test process's few shared
/// threads, starving the async tests running meanwhile.
@Suite(.serialized) struct FileKindDamageTests {
    enum Harm: String, CaseIterable, Sendable {
        case flipped, truncated, zeroed, missing
    }

    /// What a fixture log holds.
    struct Fixture {
        let dir: TemporaryDirectory
        /// The log start position and the position after the last event.
        let start: UInt64
        let end: UInt64
        var count: Int { Int(end - start) }
    }

    static let writerOptions: LogOptions = {
        var options = LogOptions(segmentBytes: 1 << 16, durability: .none)
        options.maintenanceInterval = nil  // no background compaction under the test
        return options
    }()

    static let readerOptions = LogOptions(durability: .none, readOnly: true)

    /// 2,000 events over several segments of 64 KiB, a cursor, settings
    /// that keep everything, closed cleanly: every sealed segment has its
    /// three index files, and the stream table is a run from 0.
    static func plainLog() throws -> Fixture {
        let dir = TemporaryDirectory("damage")
        let log = try Log.open(at: dir.path, options: writerOptions)
        try Fixtures.append(log, 0..<2000, batch: 50)
        try log.commitCursor("relay", position: 700)
        try log.updateSettings(LogSettings(retainCursors: ["relay"], tombstoneRetention: .seconds(3600)))
        try log.close()
        #expect(Fixtures.segments(dir).count >= 2)
        return Fixture(dir: dir, start: 0, end: 2000)
    }

    /// The same log after retention removed its oldest segments (the start
    /// moved past 0, `eventlog.compaction` reports it).
    static func logWhoseStartMoved() throws -> Fixture {
        let dir = TemporaryDirectory("damage")
        let log = try Log.open(at: dir.path, options: writerOptions)
        try Fixtures.append(log, 0..<2000, batch: 50)
        try log.commitCursor("relay", position: 1900)
        try log.updateSettings(LogSettings(retainBytes: 100_000))
        _ = try log.compact()
        let start = log.startPosition
        try log.close()
        #expect(start > 0 && DirectoryOperations.exists(dir.sub(FileNames.lastCompaction)))
        return Fixture(dir: dir, start: start, end: 2000)
    }

    /// Does `harm` to `path`: flips a bit of byte `flipAt`, cuts the file to
    /// `truncateTo` bytes, writes zeros over all of it, or removes it.
    static func harm(_ harm: Harm, _ path: String, flipAt: Int, truncateTo: Int) {
        #expect(DirectoryOperations.exists(path), "\(path) exists before it is damaged")
        switch harm {
        case .flipped: Damage.flipBit(path, at: flipAt)
        case .truncated: Damage.truncate(path, to: truncateTo)
        case .zeroed: Damage.write(path, [UInt8](repeating: 0, count: Damage.read(path).count))
        case .missing: Damage.remove(path)
        }
    }

    /// A copy of the damaged log, for a writer's open (which may rebuild
    /// what it finds) beside the repair of the original.
    static func copy(_ dir: TemporaryDirectory) throws -> TemporaryDirectory {
        let copy = TemporaryDirectory("damage-copy")
        try FileManager.default.removeItem(atPath: copy.path)
        try FileManager.default.copyItem(atPath: dir.path, toPath: copy.path)
        return copy
    }

    /// The library's read-only open, twice (a retried open reports the
    /// same), and `dump`, `tail` and `export` as child processes read every
    /// event from the start. Returns what the open reported damaged.
    ///
    /// `exportRefusal`: `export`, which also writes every stream's state,
    /// fails instead with an error holding this text (a damaged block of a
    /// stream table run: the states it holds cannot be read).
    /// `exportFinding`: `export` writes every event but exits with 1 and
    /// this text (a part of the log's state it could not read).
    @discardableResult
    static func expectReadersReadEverything(
        _ fixture: Fixture, exportRefusal: String? = nil, exportFinding: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> [RecoveryReport.DamagedFile] {
        var reports: [[RecoveryReport.DamagedFile]] = []
        for _ in 0..<2 {
            let reader = try Log.open(at: fixture.dir.path, options: readerOptions)
            let events = try reader.events(from: 0)
            #expect(events.count == fixture.count, sourceLocation: sourceLocation)
            #expect(events.first?.position == fixture.start && events.last?.position == fixture.end - 1, sourceLocation: sourceLocation)
            reports.append(reader.recovery.damagedFiles)
            try reader.close()
        }
        #expect(reports[0] == reports[1], sourceLocation: sourceLocation)
        for command in [["dump", fixture.dir.path, "--json"], ["tail", fixture.dir.path, "--json"]] {
            let output = try CLIProcess.run(command)
            #expect(output.status == 0 && output.lines.count == fixture.count, "\(command[0]): \(output.stderr)", sourceLocation: sourceLocation)
        }
        let export = try CLIProcess.run(["export", fixture.dir.path])
        if let exportRefusal {
            #expect(export.status != 0 && export.stderr.contains(exportRefusal), "export: \(export)", sourceLocation: sourceLocation)
            return reports[0]
        }
        #expect(
            export.status == (exportFinding == nil ? 0 : 1) && export.lines.filter { $0.hasPrefix("{\"position\":") }.count == fixture.count,
            "export: \(export.stderr)", sourceLocation: sourceLocation)
        if let exportFinding { #expect(export.stderr.contains(exportFinding), "export: \(export.stderr)", sourceLocation: sourceLocation) }
        return reports[0]
    }

    /// `verify` exits 1 and names `file` at `offset`.
    static func expectVerifyNames(_ dir: TemporaryDirectory, _ file: String, at offset: Int64, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 1, "\(verify)", sourceLocation: sourceLocation)
        #expect(verify.stdout.contains("\(file) at byte \(offset):"), "\(verify)", sourceLocation: sourceLocation)
    }

    static func expectVerifySound(_ dir: TemporaryDirectory, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 0, "\(verify)", sourceLocation: sourceLocation)
    }

    /// A writer opens `dir`, appends 10 events, reads them all and closes.
    static func expectAppendsWork(_ dir: TemporaryDirectory, _ fixture: Fixture, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let log = try Log.open(at: dir.path, options: writerOptions)
        #expect(log.endPosition == fixture.end, sourceLocation: sourceLocation)
        try Fixtures.append(log, Int(fixture.end)..<Int(fixture.end + 10), batch: 10)
        #expect(try log.events(from: 0).count == fixture.count + 10, sourceLocation: sourceLocation)
        for stream in 0..<7 { _ = try log.events(inStream: "stream-\(stream)") }  // every stream reads through its index
        try log.close()
    }

    /// `repair --yes` exits 0, `verify` is then sound, and appends work.
    static func expectRepairRestores(_ fixture: Fixture, saying text: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let repair = try CLIProcess.run(["repair", fixture.dir.path, "--yes"])
        #expect(repair.status == 0, "\(repair)", sourceLocation: sourceLocation)
        if let text { #expect(repair.stdout.contains(text), "\(repair)", sourceLocation: sourceLocation) }
        try expectVerifySound(fixture.dir, sourceLocation: sourceLocation)
        try expectAppendsWork(fixture.dir, fixture, sourceLocation: sourceLocation)
        try expectVerifySound(fixture.dir, sourceLocation: sourceLocation)
    }

    /// `inspect --json` lists `file` at `offset` among its damaged files.
    static func expectInspectNames(_ dir: TemporaryDirectory, _ file: String, at offset: Int64, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let inspect = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspect.status == 0, "\(inspect)", sourceLocation: sourceLocation)
        #expect(inspect.stdout.contains("{\"file\":\"\(file)\",\"offset\":\(offset),"), "\(inspect)", sourceLocation: sourceLocation)
    }

    static func errorText(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    // MARK: Derived files: rebuilt

    enum IndexKind: String, CaseIterable, Sendable { case offset, time }

    /// A sealed segment's offset or time index (§7): readers rebuild it in
    /// memory, a writer rebuilds and writes it again. `verify` names the
    /// field whose check fails: the checksum field for a flipped byte, the
    /// entry count (12) for a file cut short, the magic (0) for zeros.
    @Test(arguments: Harm.allCases, IndexKind.allCases)
    func anIndexFile(_ harm: Harm, _ kind: IndexKind) throws {
        let fixture = try Self.plainLog()
        let name = kind == .offset ? FileNames.offsetIndex(0) : FileNames.timeIndex(0)
        let file = fixture.dir.sub(name)
        let length = Damage.read(file).count
        Self.harm(harm, file, flipAt: IndexFileHeader.size + 1, truncateTo: length - 4)
        let expected = ([.flipped: Int64(length - 4), .truncated: 12, .zeroed: 0, .missing: 0] as [Harm: Int64])[harm] ?? -1

        try Self.expectReadersReadEverything(fixture)
        try Self.expectVerifyNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let writer = try Log.open(at: copy.path, options: Self.writerOptions)
        #expect(writer.recovery.rebuiltIndexes.contains(name), "\(writer.recovery.rebuiltIndexes)")
        try writer.close()
        try Self.expectVerifySound(copy)
        try Self.expectAppendsWork(copy, fixture)

        try Self.expectRepairRestores(fixture)
    }

    /// A sealed segment's stream index (§13.2): a damaged header or a file
    /// cut short or missing is rebuilt by any open; damage inside a block
    /// (the flipped byte here, in the first entry block) is not seen by an
    /// open: the stream reads that need the block fail naming the file and
    /// the block's offset, reads by position go on, and `repair` moves the
    /// file aside so that the open it ends rebuilds it.
    @Test(arguments: Harm.allCases)
    func aStreamIndexFile(_ harm: Harm) throws {
        let fixture = try Self.plainLog()
        let name = FileNames.streamIndex(0)
        let file = fixture.dir.sub(name)
        let bytes = Damage.read(file)
        let groups = Int(bytes.withUnsafeBytes { $0.loadLE(at: 12, as: UInt32.self) })
        let groupBlocks = (groups + 127) / 128
        let entryBlock = 68 + 8 * groupBlocks + 24 * groups + 4 * groupBlocks
        Self.harm(harm, file, flipAt: entryBlock + 1, truncateTo: bytes.count - 4)
        let expected = ([.flipped: Int64(entryBlock), .truncated: Int64(bytes.count - 4), .zeroed: 0, .missing: 0] as [Harm: Int64])[harm] ?? -1

        try Self.expectReadersReadEverything(fixture)
        try Self.expectVerifyNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let writer = try Log.open(at: copy.path, options: Self.writerOptions)
        if harm == .flipped {
            #expect(!writer.recovery.rebuiltIndexes.contains(name))
            var failures: [String] = []
            for stream in 0..<7 {
                if let text = Self.errorText({ _ = try writer.events(inStream: "stream-\(stream)") }) { failures.append(text) }
            }
            #expect(!failures.isEmpty && failures.allSatisfy { $0.contains(copy.sub(name)) && $0.contains("byte \(entryBlock)") }, "\(failures)")
            try Fixtures.append(writer, 2000..<2010, batch: 10)  // appends go on
            #expect(try writer.events(from: 0).count == fixture.count + 10)
            try writer.close()
            try Self.expectVerifyNames(copy, copy.sub(name), at: expected)  // still there: repair's to settle
        } else {
            #expect(writer.recovery.rebuiltIndexes.contains(name), "\(writer.recovery.rebuiltIndexes)")
            try writer.close()
            try Self.expectVerifySound(copy)
            try Self.expectAppendsWork(copy, fixture)
        }

        try Self.expectRepairRestores(fixture)
    }

    /// The stream table run of a log that starts at 0 (§14.3): derived data.
    /// A run that does not open (cut short, zeroed) or is missing breaks the
    /// chain: every open replays the log from there, and `verify` names the
    /// file (a missing one by its name: the chain stops short of the clean
    /// shutdown's end). A flipped byte in a block is not seen by an open:
    /// the lookups that read the block fail (an append too, writing
    /// nothing), naming the run and the block's offset; `repair` moves the
    /// run aside and the open it ends replays the log.
    @Test(arguments: Harm.allCases)
    func aStreamTableRun(_ harm: Harm) throws {
        let fixture = try Self.plainLog()
        let runs = fixture.dir.files().filter { FileNames.streamTableRunRange($0)?.from == 0 }
        let name = try #require(runs.first)
        let file = fixture.dir.sub(name)
        Self.harm(harm, file, flipAt: StreamTableRun.headerSize + 10, truncateTo: Damage.read(file).count - 4)
        let expected: Int64 = harm == .flipped ? Int64(StreamTableRun.headerSize) : 0

        try Self.expectReadersReadEverything(fixture, exportRefusal: harm == .flipped ? "\(file) at byte \(expected)" : nil)
        try Self.expectVerifyNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let writer = try Log.open(at: copy.path, options: Self.writerOptions)
        if harm == .flipped {
            let text = Self.errorText { try Fixtures.append(writer, 2000..<2010, batch: 10) }
            #expect(text?.contains(copy.sub(name)) == true && text?.contains("byte \(expected)") == true, "\(text ?? "no error")")
            #expect(writer.endPosition == fixture.end)  // the append wrote nothing
            try writer.close()
        } else {
            #expect(writer.recovery.replayedRecords >= fixture.count, "the whole log is replayed: \(writer.recovery)")
            try writer.close()
            try Self.expectVerifySound(copy)
            try Self.expectAppendsWork(copy, fixture)
        }

        try Self.expectRepairRestores(fixture)
    }

    /// Once retention moved the log start, the runs are the only record of
    /// the streams of the removed segments (§14.3): a writer's open refuses
    /// a chain that no longer reaches the start, naming `eventlog.start` at
    /// byte 16; readers read every event and report it; `verify` names the
    /// run; `repair` is refused (exit 3: restore the run from a backup) and
    /// changes nothing.
    @Test(arguments: Harm.allCases)
    func aStreamTableRunOnceTheStartMoved(_ harm: Harm) throws {
        let fixture = try Self.logWhoseStartMoved()
        let runs = fixture.dir.files().filter { FileNames.streamTableRunRange($0)?.from == 0 }
        let name = try #require(runs.first)
        let file = fixture.dir.sub(name)
        Self.harm(harm, file, flipAt: StreamTableRun.headerSize + 10, truncateTo: Damage.read(file).count - 4)
        let start = fixture.dir.sub(FileNames.logStart)

        let blockRefusal = "\(file) at byte \(StreamTableRun.headerSize)"
        let reported = try Self.expectReadersReadEverything(fixture, exportRefusal: harm == .flipped ? blockRefusal : nil)
        try Self.expectVerifyNames(fixture.dir, file, at: harm == .flipped ? Int64(StreamTableRun.headerSize) : 0)
        if harm != .flipped {
            #expect(reported.contains { $0.file == start && $0.offset == 16 }, "\(reported)")
            try Self.expectVerifyNames(fixture.dir, start, at: 16)
        }

        let copy = try Self.copy(fixture.dir)
        let text = Self.errorText {
            let writer = try Log.open(at: copy.path, options: Self.writerOptions)
            defer { try? writer.close() }
            try Fixtures.append(writer, 2000..<2010, batch: 10)
        }
        let named = harm == .flipped ? "\(copy.sub(name)) at byte \(StreamTableRun.headerSize)" : "\(copy.sub(FileNames.logStart)) at byte 16"
        #expect(text?.contains(named) == true, "\(text ?? "no error")")

        let before = fixture.dir.files()
        let repair = try CLIProcess.run(["repair", fixture.dir.path, "--yes"])
        #expect(repair.status == 3 && (repair.stdout + repair.stderr).contains("backup"), "\(repair)")
        #expect(fixture.dir.files() == before)
    }

    // MARK: Small files no open needs: reported, confined

    /// `eventlog.settings` (§3.2): every open goes on and reports it; what
    /// reads the settings fails naming the file; `repair` moves it aside (the
    /// defaults remove nothing). Missing, the settings are the defaults: no
    /// finding.
    @Test(arguments: Harm.allCases)
    func theSettingsFile(_ harm: Harm) throws {
        let fixture = try Self.plainLog()
        let file = fixture.dir.sub(FileNames.settings)
        let length = Damage.read(file).count
        Self.harm(harm, file, flipAt: 20, truncateTo: length - 4)
        let expected = ([.flipped: Int64(length - 4), .truncated: 12, .zeroed: 0] as [Harm: Int64])[harm]

        let reported = try Self.expectReadersReadEverything(fixture, exportFinding: harm == .missing ? nil : file)
        guard let expected else {
            #expect(reported.isEmpty)
            try Self.expectVerifySound(fixture.dir)
            let log = try Log.open(at: fixture.dir.path, options: Self.writerOptions)
            #expect(try log.settings() == LogSettings())
            try log.close()
            return
        }
        #expect(reported.map(\.file) == [file] && reported.map(\.offset) == [expected], "\(reported)")
        try Self.expectVerifyNames(fixture.dir, file, at: expected)
        try Self.expectInspectNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let writer = try Log.open(at: copy.path, options: Self.writerOptions)
        #expect(writer.recovery.damagedFiles.map(\.offset) == [expected])
        let text = Self.errorText { _ = try writer.settings() }
        #expect(text?.contains(copy.sub(FileNames.settings)) == true, "\(text ?? "no error")")
        if harm != .zeroed { #expect(text?.contains("at byte \(expected)") == true, "\(text ?? "no error")") }  // zeros: a foreign file
        try Fixtures.append(writer, 2000..<2010, batch: 10)
        try writer.close()

        try Self.expectRepairRestores(fixture, saying: "return to their defaults")
        let log = try Log.open(at: fixture.dir.path, options: Self.writerOptions)
        #expect(try log.settings() == LogSettings())
        try log.close()
    }

    /// The clean-shutdown marker (§8): a damaged one counts as an unclean
    /// shutdown, reported by every open; a writer's open checks the tail and
    /// removes it; `repair` moves it aside and its close writes a new one.
    /// Missing, it is an unclean shutdown: no finding.
    @Test(arguments: Harm.allCases)
    func theCleanShutdownMarker(_ harm: Harm) throws {
        let fixture = try Self.plainLog()
        let file = fixture.dir.sub(FileNames.cleanShutdown)
        Self.harm(harm, file, flipAt: 20, truncateTo: 30)
        let expected = ([.flipped: 44, .truncated: 0, .zeroed: 0] as [Harm: Int64])[harm]

        let reported = try Self.expectReadersReadEverything(fixture)
        guard let expected else {
            #expect(reported.isEmpty)
            try Self.expectVerifySound(fixture.dir)
            try Self.expectAppendsWork(fixture.dir, fixture)
            return
        }
        #expect(reported.map(\.file) == [file] && reported.map(\.offset) == [expected], "\(reported)")
        try Self.expectVerifyNames(fixture.dir, file, at: expected)
        try Self.expectInspectNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let writer = try Log.open(at: copy.path, options: Self.writerOptions)
        #expect(writer.recovery.damagedFiles.map(\.offset) == [expected])
        #expect(writer.recovery.previousShutdown == .unclean)
        try writer.close()
        try Self.expectVerifySound(copy)

        try Self.expectRepairRestores(fixture)
    }

    /// `eventlog.compaction` (§3.3): only a report. Every open goes on and
    /// reports it; `repair` moves it aside. Missing: no compaction to report.
    @Test(arguments: Harm.allCases)
    func theLastCompactionFile(_ harm: Harm) throws {
        let fixture = try Self.logWhoseStartMoved()
        let file = fixture.dir.sub(FileNames.lastCompaction)
        let length = Damage.read(file).count
        Self.harm(harm, file, flipAt: 30, truncateTo: length - 4)
        // Cut short below the smallest such file, it is named at 0; else its length field (12) disagrees.
        let truncated: Int64 = length - 4 >= LastCompactionFile.minSize ? 12 : 0
        let expected = ([.flipped: Int64(length - 4), .truncated: truncated, .zeroed: 0] as [Harm: Int64])[harm]

        let reported = try Self.expectReadersReadEverything(fixture)
        guard let expected else {
            #expect(reported.isEmpty)
            try Self.expectVerifySound(fixture.dir)
            return
        }
        #expect(reported.map(\.file) == [file] && reported.map(\.offset) == [expected], "\(reported)")
        try Self.expectVerifyNames(fixture.dir, file, at: expected)
        try Self.expectInspectNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let writer = try Log.open(at: copy.path, options: Self.writerOptions)
        #expect(writer.recovery.damagedFiles.map(\.offset) == [expected])
        try Fixtures.append(writer, 2000..<2010, batch: 10)
        try writer.close()

        try Self.expectRepairRestores(fixture)
    }

    // MARK: The log start: refused by a writer, written again by repair

    /// `eventlog.start` of a log whose start moved (§3.1): readers start at
    /// the first segment and report the file; a writer refuses, naming
    /// `eventlog repair`, which writes it again with the first segment's
    /// base. The checksum field (32) names a flipped byte; the file is
    /// named at 0 when cut short, zeroed (its magic) or missing.
    @Test(arguments: Harm.allCases)
    func theStartFile(_ harm: Harm) throws {
        let fixture = try Self.logWhoseStartMoved()
        let file = fixture.dir.sub(FileNames.logStart)
        Self.harm(harm, file, flipAt: 20, truncateTo: 20)
        let expected: Int64 = harm == .flipped ? 32 : 0

        let reported = try Self.expectReadersReadEverything(fixture)
        #expect(reported.map(\.file) == [file] && reported.map(\.offset) == [expected], "\(reported)")
        try Self.expectVerifyNames(fixture.dir, file, at: expected)
        try Self.expectInspectNames(fixture.dir, file, at: expected)

        let copy = try Self.copy(fixture.dir)
        let text = Self.errorText { _ = try Log.open(at: copy.path, options: Self.writerOptions) }
        #expect(text?.contains("eventlog repair") == true && text?.contains(copy.sub(FileNames.logStart)) == true, "\(text ?? "no error")")

        try Self.expectRepairRestores(fixture, saying: "first segment's base position \(fixture.start)")
        #expect(try LogStart.read(in: DirectoryOperations(path: fixture.dir.path, faults: nil))?.startPosition == fixture.start)
    }

    // MARK: verify never says "sound" while an open would fail

    /// A file the group or others can write (every open refuses the log),
    /// and a symbolic link where a writer writes (its open refuses to follow
    /// it): `verify` names each, at byte 0.
    @Test func verifyNamesWhatEveryOpenOrAWriterRefuses() throws {
        let fixture = try Self.plainLog()
        let settings = fixture.dir.sub(FileNames.settings)
        #expect(chmod(settings, 0o666) == 0)
        #expect(throws: EventLogError.self) { _ = try Log.open(at: fixture.dir.path, options: Self.readerOptions) }
        try Self.expectVerifyNames(fixture.dir, settings, at: 0)
        #expect(chmod(settings, 0o600) == 0)
        try Self.expectVerifySound(fixture.dir)

        let lock = fixture.dir.sub(FileNames.lock)
        let elsewhere = TemporaryDirectory("elsewhere")
        Damage.remove(lock)
        try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: elsewhere.sub("lock"))
        let text = Self.errorText { _ = try Log.open(at: fixture.dir.path, options: Self.writerOptions) }
        #expect(text != nil)
        try Self.expectVerifyNames(fixture.dir, lock, at: 0)
        Damage.remove(lock)
        try Self.expectAppendsWork(fixture.dir, fixture)
        try Self.expectVerifySound(fixture.dir)
    }
}
