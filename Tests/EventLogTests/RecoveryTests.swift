import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Recovery never loses or reuses an acknowledged position (issue 8): each
/// test is one way it used to, reproduced on real files.
@Suite struct RecoveryTests {
    static let small = 64 * 1024

    func options(_ durability: Durability = .always) -> LogOptions {
        LogOptions(segmentBytes: Self.small, durability: durability)
    }

    /// A log of `events` events in batches of 10, released without close() (a crash).
    func crashedLog(_ dir: TemporaryDirectory, events: Int, durability: Durability = .always) throws {
        let log = try Log.open(at: dir.path, options: options(durability))
        try Fixtures.append(log, 0..<events, batch: 10)
        _ = consume log
    }

    /// The corruption error an open throws, or nil when it opens.
    func openError(_ dir: TemporaryDirectory, durability: Durability = .always) -> (file: String, offset: Int64)? {
        do {
            let log = try Log.open(at: dir.path, options: options(durability))
            try? log.close()
            return nil
        } catch let EventLogError.corruption(file, offset, _) {
            return (file, offset)
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    // MARK: 1. A retried open after a corruption error cuts nothing

    @Test func retriedOpenOfACleanlyClosedLogFailsTheSameWay() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: options())
        try Fixtures.append(log, 0..<100, batch: 10)
        try log.close()
        let segment = Fixtures.segments(dir)[0]
        let last = try #require(Fixtures.batches(in: segment).last)
        Damage.flipBit(segment, at: last.offset + 60)

        for attempt in 0..<3 {
            let error = try #require(openError(dir), "attempt \(attempt) opened a damaged log")
            #expect(error.file == segment)
            #expect(error.offset == Int64(last.offset))
        }
        #expect(FileManager.default.fileExists(atPath: dir.sub(FileNames.cleanShutdown)))
        #expect(Fixtures.batches(in: segment).count == 10)
        #expect(try !Log.verify(at: dir.path).isSound)
    }

    // MARK: 2. A zeroed segment header is damage, unless nothing follows it

    @Test func zeroedHeaderOverBatchesIsCorruptionNotAnInterruptedCreation() throws {
        let dir = TemporaryDirectory()
        try crashedLog(dir, events: 3000)
        let segments = Fixtures.segments(dir)
        #expect(segments.count >= 2)
        let last = try #require(segments.last)
        #expect(!Fixtures.batches(in: last).isEmpty)
        Damage.overwrite(last, at: 0, with: [UInt8](repeating: 0, count: SegmentHeader.size))
        for _ in 0..<2 {
            let error = try #require(openError(dir))
            #expect(error.file == last)
        }
        // The message names the first data byte by its offset in the file: the first batch, after the header.
        do {
            _ = try Log.open(at: dir.path, options: options(.always))
            Issue.record("the open succeeded")
        } catch let error as EventLogError {
            guard case .corruption(_, _, let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("first at byte \(SegmentHeader.size)"), "\(reason)")
        }
        #expect(FileManager.default.fileExists(atPath: last))
    }

    @Test func anInterruptedCreationIsStillRemoved() throws {
        let dir = TemporaryDirectory()
        try crashedLog(dir, events: 30)
        // A crash after creating the next segment file, before its header was synced.
        let next = dir.sub(FileNames.segment(30))
        Damage.write(next, [UInt8](repeating: 0, count: SegmentHeader.size))
        Damage.truncate(next, to: Self.small)  // sparse: all zeros
        let log = try Log.open(at: dir.path, options: options())
        #expect(log.recovery.removedFiles.contains(FileNames.segment(30)))
        #expect(try Fixtures.expectContent(log, count: 30))
        try Fixtures.append(log, 30..<40, batch: 10)
        #expect(try Fixtures.expectContent(log, count: 40))
        try log.close()
    }

    // MARK: 3. Zeros over a batch in the middle of the active segment

    @Test func zerosOverASyncedBatchInTheActiveSegmentAreCorruption() throws {
        let dir = TemporaryDirectory()
        try crashedLog(dir, events: 100)
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        let target = batches[4]
        Damage.overwrite(segment, at: target.offset, with: [UInt8](repeating: 0, count: target.length))
        for _ in 0..<2 {
            let error = try #require(openError(dir), "zeros over an acknowledged batch read as the end of the log")
            #expect(error.file == segment)
            #expect(error.offset == Int64(target.offset))
        }
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == segment && $0.offset == Int64(target.offset) })
        #expect(Fixtures.batches(in: segment).count == 4)  // the walk stops at the zeros; nothing after was cut
        #expect(Damage.read(segment)[batches[5].offset] != 0)
    }

    /// Without any sync (`.none`), the same zeros are what a power loss may
    /// leave: a torn tail, cut, with what it dropped reported.
    @Test func zerosOverAnUnsyncedBatchAreATornTail() throws {
        let dir = TemporaryDirectory()
        try crashedLog(dir, events: 100, durability: .none)
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        Damage.overwrite(segment, at: batches[4].offset, with: [UInt8](repeating: 0, count: batches[4].length))
        let log = try Log.open(at: dir.path, options: options(.none))
        #expect(log.endPosition == 40)
        let cut = try #require(log.recovery.tailCut)
        #expect(cut.offset == Int64(batches[4].offset))
        #expect(cut.reason.contains("positions 50..<100"))
        try log.close()
    }

    // MARK: 4. A missing first segment

    @Test func aMissingFirstSegmentIsAnError() throws {
        let dir = TemporaryDirectory()
        try crashedLog(dir, events: 3000)
        #expect(Fixtures.segments(dir).count >= 3)
        for name in dir.files() where name.hasPrefix(FileNames.stem(0)) { Damage.remove(dir.sub(name)) }
        do {
            _ = try Log.open(at: dir.path, options: options())
            Issue.record("a log without its first segment opened")
        } catch let error as EventLogError {
            guard case .missingSegment(let expected, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(expected == 0)
        }
        var readOnly = options()
        readOnly.readOnly = true
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: readOnly) }
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.reason.contains("positions 0..<") })
    }

    /// From outside, as a user finds it: `inspect` names the missing
    /// positions, `verify` reports them and fails, `dump` refuses.
    @Test func aMissingFirstSegmentSeenByTheTool() throws {
        let dir = TemporaryDirectory()
        try crashedLog(dir, events: 3000)
        for name in dir.files() where name.hasPrefix(FileNames.stem(0)) { Damage.remove(dir.sub(name)) }
        let inspection = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspection.status == 0, "\(inspection)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(inspection.stdout.utf8)) as? [String: Any])
        #expect(object["start_position"] as? Int == 0)
        let missing = try #require(object["missing_positions"] as? [[Int]])
        #expect(missing.count == 1 && missing[0].first == 0 && (missing[0].last ?? 0) > 0)
        let text = try CLIProcess.run(["inspect", dir.path])
        #expect(text.stdout.contains("missing"))
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status != 0)
        #expect(verify.stdout.contains("positions 0..<"))
        let dump = try CLIProcess.run(["dump", dir.path])
        #expect(dump.status != 0)
    }

    @Test func theStartFileIsWrittenAndChecked() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: options())
        try log.close()
        let bytes = Damage.read(dir.sub(FileNames.logStart))
        #expect(try LogStart.decode(bytes, file: "").startPosition == 0)
        Damage.flipBit(dir.sub(FileNames.logStart), at: 17)
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: options()) }
    }

    // MARK: 5. Readers see only durable batches under .always

    @Test func readersDoNotSeeABatchBeforeItsSyncCompletes() throws {
        let dir = TemporaryDirectory()
        let gate = SyncGate()
        var opts = options()
        opts.storageFaults = gate.faults
        opts.preallocates = false  // the only segment syncs are then the appender's
        let log = try Log.open(at: dir.path, options: opts)
        try Fixtures.append(log, 0..<10, batch: 10)
        gate.hold()
        let done = Atomic<Bool>(false)
        let appender = Thread {
            try? Fixtures.append(log, 10..<20, batch: 10)
            done.store(true, ordering: .releasing)
        }
        appender.start()
        gate.waitUntilHeld()
        // The batch is written and its sync is under way: readers must not see it yet.
        #expect(log.endPosition == 10)
        #expect(try log.events(from: 0).count == 10)
        #expect(throws: EventLogError.self) { try log.commitCursor("c", position: 20) }
        gate.release()
        while !done.load(ordering: .acquiring) { usleep(1000) }
        #expect(log.endPosition == 20)
        #expect(try Fixtures.expectContent(log, count: 20))
        try log.close()
    }

    @Test func cursorsAheadOfTheRecoveredEndAreClampedAndReported() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: options(.none))
            try Fixtures.append(log, 0..<100, batch: 10)
            try log.commitCursor("relay", position: 100)
            try log.commitCursor("slow", position: 30)
            try log.sync()  // the cursor journal and the data on disk...
            _ = consume log
        }
        // ...then a power loss takes the last batches back (they read as zeros).
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        Damage.overwrite(segment, at: batches[7].offset, with: [UInt8](repeating: 0, count: Self.small - batches[7].offset))
        for name in dir.files() where name.hasSuffix(".index") || name.hasSuffix(".timeindex") || name.hasSuffix(FileNames.streamTableRunSuffix) {
            Damage.remove(dir.sub(name))
        }
        let log = try Log.open(at: dir.path, options: options(.none))
        #expect(log.endPosition == 70)
        #expect(log.recovery.clampedCursors == [.init(name: "relay", was: 100, now: 70)])
        #expect(try log.cursorPosition("relay") == 70)
        #expect(try log.cursorPosition("slow") == 30)
        try log.close()
    }

    // MARK: 6. A power loss during a shared sync

    /// Two batches written under one pending sync; the power loss keeps the
    /// second and tears the first. Neither was acknowledged: a torn tail.
    @Test func aLaterUnsyncedBatchAfterATornOneIsTail() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: options())
            try Fixtures.append(log, 0..<50, batch: 10)  // acknowledged, synced
            try log.close()
        }
        do {
            let log = try Log.open(at: dir.path, options: options(.none))
            try Fixtures.append(log, 50..<70, batch: 10, size: 200)  // written, never synced
            _ = consume log
        }
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        #expect(batches.count == 7)
        // The first unsynced batch loses one 512-byte sector (it reads as the
        // zeros it held before); the second survives whole.
        let torn = batches[5]
        let sector = (torn.offset / 512 + 1) * 512
        try #require(sector + 512 <= torn.offset + torn.length)
        Damage.overwrite(segment, at: sector, with: [UInt8](repeating: 0, count: 512))
        let log = try Log.open(at: dir.path, options: options())
        #expect(log.endPosition == 50)
        #expect(log.recovery.tailCut?.offset == Int64(torn.offset))
        #expect(log.recovery.tailCut?.reason.contains("positions 60..<70") == true)
        #expect(try Fixtures.expectContent(log, count: 50))
        // The positions were never acknowledged durable; new events take them.
        try Fixtures.append(log, 50..<60, batch: 10)
        #expect(try Fixtures.expectContent(log, count: 60))
        try log.close()
    }

    // MARK: 7. A failed roll does not block later rolls

    @Test func aFailedRollLeavesNoFileBehind() throws {
        let dir = TemporaryDirectory()
        let failNext = Atomic<Bool>(false)
        var opts = options()
        opts.storageFaults = StorageFaults { op, path in
            if op == .truncate, path.hasSuffix(".segment"), failNext.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
                return .fail(errno: ENOSPC)
            }
            return nil
        }
        let log = try Log.open(at: dir.path, options: opts)
        var appended = 0
        var failures = 0
        while Fixtures.segments(dir).count < 3 && appended < 5000 {
            if appended == 300 { failNext.store(true, ordering: .relaxed) }
            do {
                try Fixtures.append(log, appended..<(appended + 10), batch: 10)
                appended += 10
            } catch {
                failures += 1
                #expect(failures == 1, "a roll failed again after the fault was gone: \(error)")
                if failures > 1 { break }
            }
        }
        #expect(failures == 1)
        #expect(Fixtures.segments(dir).count >= 3)
        #expect(try Fixtures.expectContent(log, count: appended))
        try log.close()
    }

    // MARK: 8. refresh() beside a writer: segments being created, and grown ones

    @Test func refreshWaitsForASegmentBeingCreatedAndRemapsAGrownOne() throws {
        let dir = TemporaryDirectory()
        let writer = try Log.open(at: dir.path, options: options())
        try Fixtures.append(writer, 0..<100, batch: 10)
        var readOnly = options()
        readOnly.readOnly = true
        let reader = try Log.open(at: dir.path, options: readOnly)
        #expect(reader.endPosition == 100)

        // The writer has just created the next segment file and not yet written its header.
        let next = dir.sub(FileNames.segment(100))
        Damage.write(next, [])
        #expect(try reader.refresh() == false)
        Damage.write(next, [UInt8](repeating: 0, count: SegmentHeader.size))
        #expect(try reader.refresh() == false)
        Damage.remove(next)

        try Fixtures.append(writer, 100..<110, batch: 10)
        #expect(try reader.refresh())
        #expect(reader.endPosition == 110)
        try writer.close()
    }

    @Test func refreshSeesABatchThatGrewAnEmptySegment() throws {
        let dir = TemporaryDirectory()
        let writer = try Log.open(at: dir.path, options: options())
        var readOnly = options()
        readOnly.readOnly = true
        let reader = try Log.open(at: dir.path, options: readOnly)  // maps the empty segment at its length
        // A batch larger than a segment: the writer grows the empty active segment to fit it.
        let big = NewEvent(stream: "big", type: "Big", data: [UInt8](repeating: 7, count: Self.small * 2))
        try writer.append(big)
        #expect(try reader.refresh())
        #expect(reader.endPosition == 1)
        #expect(try reader.events(inStream: "big").first?.data == big.data)
        try writer.close()
    }
}

/// Holds every segment `fdatasync` while closed, so a test can look at the
/// log while a sync is under way.
final class SyncGate: Sendable {
    private let state = Mutex<(holding: Bool, held: Int)>((false, 0))

    var faults: StorageFaults {
        StorageFaults { [self] op, path in
            guard op == .datasync, path.hasSuffix(".segment") else { return nil }
            var counted = false
            while state.withLock({ s in
                if s.holding && !counted { s.held += 1; counted = true }
                return s.holding
            }) { usleep(500) }
            return nil
        }
    }

    func hold() { state.withLock { $0 = (true, 0) } }
    func release() { state.withLock { $0.holding = false } }
    func waitUntilHeld() { while state.withLock({ $0.held }) == 0 { usleep(500) } }
}
