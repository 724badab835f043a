import Foundation
import Synchronization
import Testing

@testable import EventLog

/// Damage to the cursor journal stays in the journal (Format.md §15): the
/// events read, the sound cursors keep their positions, the cursors that
/// damaged records name are reported and refused (never guessed), and a
/// torn write after a power loss is still cut, not taken for damage.
@Suite struct CursorJournalDamageTests {
    /// Record offsets of the journal `journalWithFiveCommits` writes: each
    /// layout 2 record for a one-letter cursor is 38 + 1 bytes.
    static let recordBytes = CursorJournalLayout.v2.fixedBytes + 1
    static func recordOffset(_ i: Int) -> Int { CursorJournalHeader.size + i * recordBytes }

    /// 10 events; commits a=1, b=1, b=2, c=3, a=4 (records 0 to 4), each
    /// synced before the next under `durability`.
    static func journalWithFiveCommits(_ dir: TemporaryDirectory, durability: Durability) throws {
        let log = try Log.open(at: dir.path, options: LogOptions(durability: durability))
        try Fixtures.append(log, 0..<10, batch: 5)
        for (name, position) in [("a", 1), ("b", 1), ("b", 2), ("c", 3), ("a", 4)] {
            try log.commitCursor(name, position: UInt64(position))
        }
        try log.close()
        #expect(Damage.read(dir.sub(FileNames.cursorJournal)).count == recordOffset(5))
    }

    static func expectDamaged(_ log: Log, _ name: String, offset: Int64) {
        #expect(throws: EventLogError.self) { _ = try log.cursorPosition(name) }
        do {
            _ = try log.cursorPosition(name)
        } catch let error as EventLogError {
            guard case .cursorDamaged(let damagedName, let file, let at) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(damagedName == name && at == offset && file.hasSuffix(FileNames.cursorJournal))
        } catch {
            Issue.record("an error that is not an EventLogError: \(error)")
        }
    }

    @Test func aDamagedRecordIsConfinedToTheCursorItNames() throws {
        let dir = TemporaryDirectory()
        try Self.journalWithFiveCommits(dir, durability: .always)
        let journal = dir.sub(FileNames.cursorJournal)
        let damaged = Self.recordOffset(2)  // b=2: its position field is flipped, its name still reads
        Damage.flipBit(journal, at: damaged + 16 + 2 + 1 + 1)
        let damagedBytes = Damage.read(journal)

        for (i, readOnly) in [true, false, true].enumerated() {  // a retried open reports the same
            let log = try Log.open(at: dir.path, options: LogOptions(durability: .always, readOnly: readOnly))
            #expect(log.recovery.damagedFiles.map(\.offset) == [Int64(damaged)], "readOnly \(readOnly)")
            #expect(log.recovery.damagedFiles.first?.file == journal)
            #expect(log.recovery.damagedCursors == ["b"])
            #expect(try log.cursorPosition("a") == (i < 2 ? 4 : 5))  // set again after the damage
            #expect(try log.cursorPosition("c") == 3)
            Self.expectDamaged(log, "b", offset: Int64(damaged))
            #expect(log.damagedCursors() == [DamagedCursor(name: "b", file: journal, offset: Int64(damaged), positionBeforeDamage: 1)])
            #expect(try log.cursors().map(\.name) == ["a", "c"])
            #expect(try log.events(from: 0, maxCount: 100).count == 10)
            if !readOnly {
                #expect(throws: EventLogError.self) { _ = try log.subscribe(cursor: "b") }
                #expect(throws: EventLogError.self) { try log.commitCursor("b", position: 5) }
                try log.commitCursor("a", position: 5)  // the others go on
            }
            try log.close()
        }
        // The writer appended after the damage; the damaged bytes are still there.
        #expect(Array(Damage.read(journal).prefix(Self.recordOffset(5))) == damagedBytes)

        // verify names the journal and the damaged record's offset; cursors lists b as damaged.
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("\(journal) at byte \(damaged)") || verify.stderr.contains("\(journal) at byte \(damaged)"), "\(verify)")
        let cursors = try CLIProcess.run(["cursors", dir.path, "--json"])
        #expect(cursors.status == 1, "\(cursors)")
        #expect(cursors.lines.contains { $0.contains("\"cursor\":\"b\",\"damaged\":true") && $0.contains("\"offset\":\(damaged)") }, "\(cursors)")
        let dump = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dump.status == 0 && dump.lines.count == 10, "\(dump)")
        let inspect = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("{\"file\":\"\(journal)\",\"offset\":\(damaged),"), "\(inspect)")
        let text = try CLIProcess.run(["inspect", dir.path])
        #expect(text.stdout.contains("\(journal) at byte \(damaged)"), "\(text)")

        // repair keeps b where the records before the damage had it, and copies the damaged journal aside.
        let plan = try CLIProcess.run(["repair", dir.path])
        #expect(plan.stdout.contains("cursor b (damaged at byte \(damaged)) kept at position 1"), "\(plan)")
        let repair = try CLIProcess.run(["repair", dir.path, "--yes"])
        #expect(repair.status == 0, "\(repair)")
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        #expect(log.recovery.damagedFiles.isEmpty && log.recovery.damagedCursors.isEmpty)
        #expect(try log.cursorPosition("a") == 5 && log.cursorPosition("b") == 1 && log.cursorPosition("c") == 3)
        try log.commitCursor("b", position: 6)
        try log.close()
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("damaged-") }
        #expect(aside.count == 1)
        if let name = aside.first {
            #expect(Array(Damage.read(dir.sub(name + "/" + FileNames.cursorJournal)).prefix(Self.recordOffset(5))) == damagedBytes)
        }
    }

    /// A read-only view catches up with the journal without its lock while
    /// the writer appends: the read can see a record and not yet the one
    /// before it, which the later record says was synced. Here the journal
    /// read (a fault hook before each `pread`) sees the earlier record as
    /// zeros the first time and whole the next: the view reads again and
    /// reports no damage. Without the second read, cursor b reads as damaged.
    @Test func aReadOnlyViewRacingTheWriterReportsNoDamage() throws {
        let dir = TemporaryDirectory()
        let journal = dir.sub(FileNames.cursorJournal)
        let writer = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        defer { try? writer.close() }
        try Fixtures.append(writer, 0..<10, batch: 5)
        try writer.commitCursor("a", position: 1)
        let racing = Mutex<(armed: Bool, reads: Int, record: Range<Int>, bytes: [UInt8])>((false, 0, 0..<0, []))
        var options = LogOptions(createIfMissing: false, readOnly: true)
        options.storageFaults = StorageFaults { operation, path in
            guard operation == .read, path == journal else { return nil }
            racing.withLock { race in
                guard race.armed else { return }
                race.reads += 1
                let shown = race.reads == 1 ? [UInt8](repeating: 0, count: race.bytes.count) : race.bytes
                Damage.overwrite(journal, at: race.record.lowerBound, with: shown)
            }
            return nil
        }
        let reader = try Log.open(at: dir.path, options: options)
        defer { try? reader.close() }
        #expect(try reader.cursorPosition("a") == 1)

        let start = Damage.read(journal).count
        try writer.commitCursor("b", position: 2)
        let end = Damage.read(journal).count
        try writer.commitCursor("c", position: 3)  // its synced field covers b's record
        racing.withLock { $0 = (true, 0, start..<end, Array(Damage.read(journal)[start..<end])) }
        _ = try reader.refresh()
        #expect(racing.withLock { $0.reads } == 2, "the view read the journal again")
        #expect(reader.damagedCursors().isEmpty)
        #expect(try reader.cursorPosition("b") == 2)
        #expect(try reader.cursorPosition("c") == 3)

        // Damage that stays is still damage: the same zeros, read twice
        // (zeros carry no name, so no cursor is named as damaged).
        racing.withLock { $0.armed = false }
        Damage.overwrite(journal, at: start, with: [UInt8](repeating: 0, count: end - start))
        let later = try Log.open(at: dir.path, options: LogOptions(createIfMissing: false, readOnly: true))
        defer { try? later.close() }
        #expect(later.recovery.damagedFiles.map(\.offset) == [Int64(start)])
        #expect(later.recovery.damagedFiles.first?.file == journal)
        #expect(try later.cursorPosition("b") == nil)
        #expect(try later.cursorPosition("c") == 3)
    }

    /// Under `.none` nothing was synced, so no record vouches for the bytes
    /// before it: an invalid record followed by valid ones is what a power
    /// loss leaves when it keeps a later sector and tears an earlier one.
    /// It is cut with everything after it (a prefix of the commits
    /// survives), never reported as damage.
    @Test func anInvalidRecordThatNoLaterRecordVouchesForIsATornWrite() throws {
        let dir = TemporaryDirectory()
        try Self.journalWithFiveCommits(dir, durability: .none)
        let journal = dir.sub(FileNames.cursorJournal)
        Damage.flipBit(journal, at: Self.recordOffset(2) + 20)
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(log.recovery.damagedFiles.isEmpty && log.recovery.damagedCursors.isEmpty)
        #expect(try log.cursorPosition("a") == 1 && log.cursorPosition("b") == 1 && log.cursorPosition("c") == nil)
        try log.close()
        #expect(Damage.read(journal).count == Self.recordOffset(2))
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
    }

    /// A journal written before format version 7 (layout 1, no synced
    /// field) reads as it is, and a writer rewrites it in layout 2.
    @Test func anOlderJournalIsReadAndAWriterRewritesIt() throws {
        let dir = TemporaryDirectory()
        try Self.journalWithFiveCommits(dir, durability: .none)
        let journal = dir.sub(FileNames.cursorJournal)
        var header = Array(Damage.read(journal).prefix(CursorJournalHeader.size))
        header[8] = 6
        let crc = CRC32C.checksum(Array(header[0..<44]))
        withUnsafeBytes(of: crc.littleEndian) { header.replaceSubrange(44..<48, with: $0) }
        var w = ByteWriter()
        w.raw(header)
        for (name, position) in [("a", 2), ("b", 7)] {
            CursorRecord(kind: .set, name: name, position: UInt64(position), timestamp: 1).encode(into: &w, layout: .v1)
        }
        Damage.write(journal, w.bytes)
        do {
            let reader = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
            #expect(try reader.cursorPosition("a") == 2 && reader.cursorPosition("b") == 7)
            try reader.close()
            #expect(Damage.read(journal) == w.bytes)
        }
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(try log.cursorPosition("a") == 2 && log.cursorPosition("b") == 7)
        try log.commitCursor("a", position: 3)
        try log.close()
        let bytes = Damage.read(journal)
        #expect(bytes[8] == UInt8(FormatVersion.current))
        #expect(bytes.count == Self.recordOffset(3))
        let reopened = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(try reopened.cursorPosition("a") == 3 && reopened.cursorPosition("b") == 7)
        try reopened.close()
    }

    /// A zeroed, damaged or truncated header: readers read every event
    /// without cursors and report it; a writer refuses, naming `eventlog
    /// repair`, which rewrites the journal (no cursor could be read).
    /// (A journal cut short after its header loses its last records with no
    /// trace, as a power loss does: no record vouches for what is gone.)
    @Test(arguments: ["zeroed", "flipped", "truncated"])
    func aDamagedHeaderLeavesTheEventsReadable(_ kind: String) throws {
        let dir = TemporaryDirectory()
        try Self.journalWithFiveCommits(dir, durability: .always)
        let journal = dir.sub(FileNames.cursorJournal)
        switch kind {
        case "zeroed": Damage.write(journal, [UInt8](repeating: 0, count: Damage.read(journal).count))
        case "flipped": Damage.flipBit(journal, at: 20)
        default: Damage.truncate(journal, to: 30)
        }
        let reader = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
        #expect(reader.recovery.damagedFiles.map(\.offset) == [0])
        #expect(try reader.events(from: 0, maxCount: 100).count == 10)
        try reader.close()
        do {
            _ = try Log.open(at: dir.path, options: LogOptions(durability: .always))
            Issue.record("a writer opened a log whose cursor journal header is damaged")
        } catch {
            #expect("\(error)".contains("eventlog repair"), "\(error)")
        }
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 1 && verify.stdout.contains("\(journal) at byte 0"), "\(verify)")
        let inspect = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("{\"file\":\"\(journal)\",\"offset\":0,"), "\(inspect)")
        let repair = try CLIProcess.run(["repair", dir.path, "--yes"])
        #expect(repair.status == 0 && repair.stdout.contains("every cursor is dropped"), "\(repair)")
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        #expect(try log.cursors().isEmpty)
        try log.commitCursor("a", position: 3)
        try log.close()
    }

    /// A missing journal in a log with segments was lost with every cursor
    /// it held (Format.md §15, "A missing journal"): it is never recreated
    /// silently. Readers read every event without cursors and report it at
    /// byte 0; a writer, and a reader with cursor commits, refuse, naming
    /// `eventlog repair`, which creates it empty and says so; `verify` and
    /// `inspect` name it.
    @Test func aMissingJournalIsReportedNotSilentlyRecreated() throws {
        let dir = TemporaryDirectory()
        try Self.journalWithFiveCommits(dir, durability: .always)
        let journal = dir.sub(FileNames.cursorJournal)
        Damage.remove(journal)

        for _ in 0..<2 {  // a retried open reports the same
            let reader = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
            #expect(reader.recovery.damagedFiles.map(\.file) == [journal] && reader.recovery.damagedFiles.map(\.offset) == [0])
            #expect(try reader.events(from: 0, maxCount: 100).count == 10)
            #expect(try reader.cursors().isEmpty)
            try reader.close()
        }
        var committing = LogOptions(durability: .none, readOnly: true)
        committing.allowsCursorCommits = true
        for options in [LogOptions(durability: .always), committing] {
            do {
                _ = try Log.open(at: dir.path, options: options)
                Issue.record("an open that may commit cursors went on without the journal")
            } catch {
                #expect("\(error)".contains("eventlog repair") && "\(error)".contains("\(journal) at byte 0"), "\(error)")
            }
        }
        #expect(!DirectoryOperations.exists(journal))

        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 1 && verify.stdout.contains("\(journal) at byte 0"), "\(verify)")
        let inspect = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("{\"file\":\"\(journal)\",\"offset\":0,"), "\(inspect)")
        let dump = try CLIProcess.run(["dump", dir.path, "--json"])
        #expect(dump.status == 0 && dump.lines.count == 10, "\(dump)")
        let append = try CLIProcess.run(["append", dir.path], stdin: "{\"stream\":\"s\",\"type\":\"T\",\"data\":\"x\"}\n")
        #expect(append.status != 0 && append.stderr.contains("eventlog repair"), "\(append)")

        let repair = try CLIProcess.run(["repair", dir.path, "--yes"])
        #expect(repair.status == 0 && repair.stdout.contains("the journal is missing: created empty"), "\(repair)")
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        #expect(log.recovery.damagedFiles.isEmpty)
        #expect(try log.cursors().isEmpty)
        try log.commitCursor("a", position: 3)
        try Fixtures.append(log, 10..<12, batch: 2)
        try log.close()
    }

    /// A log of format version 1, whose first builds wrote no journal, is
    /// not taken for a damaged one: a reader reports nothing, a writer
    /// creates the journal as before (and upgrades the log).
    @Test func aVersion1LogWithoutAJournalGetsOne() throws {
        let dir = TemporaryDirectory()
        try Self.journalWithFiveCommits(dir, durability: .none)
        try Fixtures.setReadVersion(1, in: dir)
        Damage.remove(dir.sub(FileNames.cursorJournal))

        let reader = try Log.open(at: dir.path, options: LogOptions(durability: .none, readOnly: true))
        #expect(reader.recovery.damagedFiles.isEmpty, "\(reader.recovery.damagedFiles)")
        try reader.close()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        #expect(log.recovery.upgradedFromVersion == 1)
        #expect(try log.cursors().isEmpty)
        try log.commitCursor("a", position: 3)
        try log.close()
        #expect(DirectoryOperations.exists(dir.sub(FileNames.cursorJournal)))
        #expect(try CLIProcess.run(["verify", dir.path]).status == 0)
    }
}
