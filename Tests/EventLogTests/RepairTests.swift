import Foundation
import Testing
@testable import EventLog

/// `Log.repair` (Format.md §10.1): for each kind of damage an open refuses
/// or verify reports, the plan changes nothing, the repair cuts or moves
/// aside exactly what follows the damage, keeps every byte in the damaged
/// directory, and leaves a log that opens, verifies and takes appends at the
/// new end.
@Suite struct RepairTests {
    // MARK: Fixtures

    static func options(_ durability: Durability = .none) -> LogOptions {
        var options = LogOptions(segmentBytes: 8 << 10, durability: durability)
        options.maintenanceInterval = nil
        return options
    }

    /// 400 events of the standard content in batches of 10, over segments of 8 KiB.
    static func severalSegments(_ dir: TemporaryDirectory, close: Bool = true) throws {
        var log: Log? = try Log.open(at: dir.path, options: options())
        try Fixtures.append(try #require(log), 0..<400, batch: 10, size: 60)
        if close {
            try log?.close()
        } else {
            #expect(CrashFixtures.abandon(&log))
            try waitForTheWriterLock(dir)
        }
    }

    /// 100 events in one segment, released without close(): a crash.
    static func crashedOneSegment(_ dir: TemporaryDirectory) throws {
        var log: Log? = try Log.open(at: dir.path, options: options())
        try Fixtures.append(try #require(log), 0..<100, batch: 10)
        #expect(CrashFixtures.abandon(&log))
        try waitForTheWriterLock(dir)
    }

    /// Waits until the writer lock is free: an abandoned log's background
    /// writes (index files) hold it until they are done.
    static func waitForTheWriterLock(_ dir: TemporaryDirectory) throws {
        let lock = try EventLog.FileHandle.open(dir.sub(FileNames.lock), faults: nil)
        for _ in 0..<1000 {
            if try lock.tryLockExclusive() {
                lock.unlock()
                return
            }
            usleep(10_000)
        }
        Issue.record("the writer lock stayed taken")
    }

    /// Every file under `path` (subdirectories too): its length and a hash of its bytes.
    static func contents(_ path: String, prefix: String = "") -> [String: String] {
        var result: [String: String] = [:]
        for name in (try? DirectoryOperations(path: path, faults: nil).list()) ?? [] {
            let file = path + "/" + name
            if DirectoryOperations.isDirectory(file) {
                result[prefix + name] = "directory"
                result.merge(contents(file, prefix: prefix + name + "/")) { a, _ in a }
            } else {
                let bytes = Damage.read(file)
                result[prefix + name] = "\(bytes.count) bytes, hash \(bytes.hashValue)"
            }
        }
        return result
    }

    static func name(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }

    /// Plans, checks that planning changed nothing, then applies.
    static func planThenApply(_ dir: TemporaryDirectory, options: LogOptions = RepairTests.options()) throws -> (plan: RepairPlan, applied: RepairPlan) {
        let before = contents(dir.path)
        let plan = try Log.repair(at: dir.path, options: options)
        #expect(!plan.applied)
        #expect(contents(dir.path) == before, "planning a repair changed files")
        let applied = try Log.repair(at: dir.path, options: options, apply: true)
        return (plan, applied)
    }

    /// The log holds events 0..<count of the standard content, verifies, and takes appends at `count`.
    static func expectRepaired(_ dir: TemporaryDirectory, count: Int, size: Int = 40) throws {
        let report = try Log.verify(at: dir.path)
        #expect(report.isSound, "\(report.problems)")
        let log = try Log.open(at: dir.path, options: options())
        #expect(log.endPosition == UInt64(count))
        #expect(try Fixtures.expectContent(log, count: count))
        // Positions and stream versions go on from the cut.
        try Fixtures.append(log, count..<(count + 20), batch: 10, size: size)
        #expect(try Fixtures.expectContent(log, count: count + 20))
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    // MARK: A sound log

    @Test func aSoundLogHasNothingToRepair() throws {
        let dir = TemporaryDirectory()
        try Self.severalSegments(dir)
        let before = Self.contents(dir.path)
        let (plan, applied) = try Self.planThenApply(dir)
        #expect(plan.isSound && plan.actions.isEmpty && plan.refusal == nil && plan.damagedDirectory == nil)
        #expect(plan.endPositionBefore == 400 && plan.endPositionAfter == 400)
        #expect(applied.isSound && !applied.applied)
        #expect(Self.contents(dir.path) == before)
    }

    @Test func aWriterHoldsTheLock() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(throws: EventLogError.locked(path: dir.path)) { try Log.repair(at: dir.path, apply: true) }
        try log.close()
        #expect(try Log.repair(at: dir.path).isSound)
    }

    // MARK: Damage in the middle of the last segment

    @Test func aDamagedBatchInTheLastSegmentIsCutAndKept() throws {
        let dir = TemporaryDirectory()
        try Self.crashedOneSegment(dir)
        let segment = Fixtures.segments(dir)[0]
        let batches = Fixtures.batches(in: segment)
        let damaged = batches[3]
        Damage.flipBit(segment, at: damaged.offset + 70)
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: Self.options()) }
        let original = Damage.read(segment)

        let (plan, applied) = try Self.planThenApply(dir)
        #expect(plan.actions.first == RepairAction(
            kind: .cut, file: Self.name(segment), offset: Int64(damaged.offset), reason: plan.actions.first?.reason ?? ""))
        #expect(plan.endPositionBefore == 100 && plan.endPositionAfter == 30)
        #expect(applied.applied && applied.problemsAfter.isEmpty, "\(applied.problemsAfter)")
        #expect(applied.endPositionAfter == 30)

        // The cut-off bytes, exactly, in the damaged directory; the log keeps the bytes before.
        let directory = try #require(applied.damagedDirectory)
        #expect(Self.name(directory).hasPrefix("damaged-") && Self.name(directory).hasSuffix("Z"))
        let aside = Damage.read(directory + "/" + FileNames.cutOff(0, from: damaged.offset))
        #expect(aside == Array(original[damaged.offset...]))
        let kept = Damage.read(segment)
        #expect(kept.count == original.count, "the segment keeps its length")
        #expect(Array(kept[..<damaged.offset]) == Array(original[..<damaged.offset]))
        #expect(kept[damaged.offset...].allSatisfy { $0 == 0 })
        try Self.expectRepaired(dir, count: 30)
    }

    /// Cursors past the cut point at events that left the log: moved back to the cut.
    @Test func cursorsPastTheCutMoveBackToIt() throws {
        let dir = TemporaryDirectory()
        var log: Log? = try Log.open(at: dir.path, options: Self.options())
        try Fixtures.append(try #require(log), 0..<100, batch: 10)
        try log?.commitCursor("relay", position: 100)
        try log?.commitCursor("slow", position: 20)
        try log?.sync()
        #expect(CrashFixtures.abandon(&log))
        try Self.waitForTheWriterLock(dir)
        let segment = Fixtures.segments(dir)[0]
        Damage.flipBit(segment, at: Fixtures.batches(in: segment)[3].offset + 70)
        let applied = try Log.repair(at: dir.path, options: Self.options(), apply: true)
        #expect(applied.clampedCursors == [.init(name: "relay", was: 100, now: 30)])
        let reopened = try Log.open(at: dir.path, options: Self.options())
        #expect(try reopened.cursorPosition("relay") == 30)
        #expect(try reopened.cursorPosition("slow") == 20)
        try reopened.close()
    }

    /// A torn final batch is the open's to cut, not the repair's.
    @Test func aTornTailIsLeftToTheOpen() throws {
        let dir = TemporaryDirectory()
        try Self.crashedOneSegment(dir)
        let segment = Fixtures.segments(dir)[0]
        let last = try #require(Fixtures.batches(in: segment).last)
        Damage.flipBit(segment, at: last.offset + 70)
        let before = Self.contents(dir.path)
        let (plan, applied) = try Self.planThenApply(dir)
        #expect(plan.isSound && applied.isSound && !applied.applied)
        #expect(plan.notes.count == 1 && plan.notes[0].contains("torn tail"), "\(plan.notes)")
        #expect(plan.endPositionAfter == 90)
        #expect(Self.contents(dir.path) == before)
    }

    // MARK: Damage in a sealed segment

    @Test func aDamagedSealedSegmentAndEverythingAfterItMoveAside() throws {
        let dir = TemporaryDirectory()
        try Self.severalSegments(dir)
        let segments = Fixtures.segments(dir)
        #expect(segments.count >= 4)
        let target = segments[1]
        let batches = Fixtures.batches(in: target)
        Damage.flipBit(target, at: batches[1].offset + BatchHeader.size + 20)
        // A clean shutdown: the open does not look, but verify (and so repair) does.
        let originals = Dictionary(uniqueKeysWithValues: dir.files().map { ($0, Damage.read(dir.sub($0))) })

        let (plan, applied) = try Self.planThenApply(dir)
        let cut = batches[0].base
        #expect(plan.endPositionAfter == cut && plan.endPositionBefore == 400)
        #expect(plan.actions.first == RepairAction(
            kind: .moveAside, file: Self.name(target), offset: Int64(batches[1].offset), reason: plan.actions.first?.reason ?? ""))
        let moved = plan.actions.filter { $0.kind == .moveAside }.map(\.file)
        for later in segments[1...] { #expect(moved.contains(Self.name(later))) }
        #expect(!moved.contains(Self.name(segments[0])))
        #expect(applied.applied && applied.problemsAfter.isEmpty, "\(applied.problemsAfter)")

        // Each file moved aside is byte for byte the original.
        let directory = try #require(applied.damagedDirectory)
        for name in moved where originals[name] != nil {
            #expect(Damage.read(directory + "/" + name) == originals[name], "\(name)")
            #expect(!FileManager.default.fileExists(atPath: dir.sub(name)) || FileNames.segmentBase(name) == nil)
        }
        // A segment moved aside is read on its own: the damaged one up to its damage, a later one whole.
        var read: [UInt64] = []
        do {
            try Log.readSegmentFile(at: directory + "/" + Self.name(target), { _ in }, events: { read.append($0.position) })
            Issue.record("the damaged segment read without an error")
        } catch let EventLogError.corruption(file, offset, _) {
            #expect(file == directory + "/" + Self.name(target) && offset == Int64(batches[1].offset))
        }
        #expect(read == Array(cut..<batches[1].base))
        var later: [Event] = []
        try Log.readSegmentFile(at: directory + "/" + Self.name(segments[2]), { _ in }, events: { later.append(try $0.event()) })
        let third = Fixtures.batches(in: directory + "/" + Self.name(segments[2]))
        #expect(later.map(\.position) == Array(third[0].base..<(third.last!.base + UInt64(third.last!.count))))
        #expect(later.allSatisfy { $0.data == Fixtures.event(Int($0.position), size: 60).data })
        try Self.expectRepaired(dir, count: Int(cut), size: 60)
    }

    @Test func aMissingMiddleSegmentEndsTheLogBeforeIt() throws {
        let dir = TemporaryDirectory()
        try Self.severalSegments(dir)
        let segments = Fixtures.segments(dir)
        let missingBase = Fixtures.batches(in: segments[2])[0].base
        Damage.remove(segments[2])
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: Self.options()) }
        let (plan, applied) = try Self.planThenApply(dir)
        #expect(plan.endPositionAfter == missingBase)
        #expect(plan.actions.first?.kind == .moveAside && plan.actions.first?.file == Self.name(segments[3]))
        #expect(applied.applied && applied.problemsAfter.isEmpty, "\(applied.problemsAfter)")
        try Self.expectRepaired(dir, count: Int(missingBase), size: 60)
    }

    @Test func aDamagedHeaderOfTheLastSegmentMovesItAside() throws {
        let dir = TemporaryDirectory()
        try Self.severalSegments(dir, close: false)
        let segments = Fixtures.segments(dir)
        let last = try #require(segments.last)
        let base = Fixtures.batches(in: last)[0].base
        Damage.flipBit(last, at: 20)
        let (plan, applied) = try Self.planThenApply(dir)
        #expect(plan.actions.first?.kind == .moveAside && plan.actions.first?.file == Self.name(last))
        #expect(applied.endPositionAfter == base && applied.problemsAfter.isEmpty, "\(applied.problemsAfter)")
        try Self.expectRepaired(dir, count: Int(base), size: 60)
    }

    // MARK: Derived files only

    @Test func missingAndDamagedIndexFilesAreRebuiltAndNothingElseChanges() throws {
        let dir = TemporaryDirectory()
        try Self.severalSegments(dir)
        let segments = Fixtures.segments(dir)
        let bases = segments.map { FileNames.segmentBase(Self.name($0)) ?? 0 }
        Damage.remove(dir.sub(FileNames.offsetIndex(bases[1])))
        let streamIndex = dir.sub(FileNames.streamIndex(bases[2]))
        let original = Damage.read(streamIndex)
        Damage.flipBit(streamIndex, at: original.count - 40)
        let damaged = Damage.read(streamIndex)
        let segmentBytes = segments.map(Damage.read)

        let (plan, applied) = try Self.planThenApply(dir)
        #expect(!plan.isSound && plan.endPositionAfter == 400 && plan.endPositionBefore == 400)
        #expect(plan.actions.filter { $0.kind == .cut }.isEmpty)
        #expect(plan.actions.filter { $0.kind == .moveAside }.map(\.file) == [FileNames.streamIndex(bases[2])], "\(plan.actions)")
        #expect(Set(plan.actions.filter { $0.kind == .rebuild }.map(\.file)) == [FileNames.offsetIndex(bases[1]), FileNames.streamIndex(bases[2])])
        #expect(applied.applied && applied.problemsAfter.isEmpty, "\(applied.problemsAfter)")
        let directory = try #require(applied.damagedDirectory)
        #expect(Damage.read(directory + "/" + FileNames.streamIndex(bases[2])) == damaged)
        #expect(Damage.read(streamIndex) == original, "rebuilt as it was")
        #expect(segments.map(Damage.read) == segmentBytes, "no segment changed")
        try Self.expectRepaired(dir, count: 400, size: 60)
    }

    // MARK: The stream table (Format.md §14.3)

    /// The stream table runs of a log, by name.
    static func runs(_ dir: TemporaryDirectory) -> [(from: UInt64, to: UInt64)] {
        dir.files().compactMap(FileNames.streamTableRunRange)
    }

    /// The sealed segment whose base lies strictly inside a run of the chain
    /// that `condition` accepts; nil when there is none.
    static func segmentInsideARun(
        _ dir: TemporaryDirectory, where condition: (_ run: (from: UInt64, to: UInt64), _ base: UInt64) -> Bool
    ) -> String? {
        let runs = Self.runs(dir)
        for segment in Fixtures.segments(dir).dropLast() {
            guard let base = FileNames.segmentBase(Self.name(segment)) else { continue }
            if runs.contains(where: { $0.from < base && base < $0.to && condition($0, base) }) { return segment }
        }
        return nil
    }

    @Test func afterRetentionTheRunsThatHoldTheRemovedStreamsAreNotReplayed() throws {
        let dir = TemporaryDirectory()
        let log = try RetentionTests.filledLog(dir)
        try log.updateSettings(LogSettings(retainBytes: 4 * 4096))
        let start = try log.compact().startPosition
        try log.close()
        #expect(start > 0)
        // A segment inside a run from below the start: without that run, no replay knows the removed streams.
        let target = try #require(Self.segmentInsideARun(dir) { run, _ in run.from < start }, "\(Self.runs(dir))")
        Damage.flipBit(target, at: Fixtures.batches(in: target)[0].offset + 60)
        let before = Self.contents(dir.path)
        let plan = try Log.repair(at: dir.path, options: RetentionTests.options(), apply: true)
        let refusal = try #require(plan.refusal)
        #expect(refusal.contains("retention") && refusal.contains("§14.3"), "\(refusal)")
        #expect(plan.actions.isEmpty && !plan.applied)
        #expect(Self.contents(dir.path) == before, "a refused repair changed files")
    }

    @Test func afterScavengingARunIsNotReplayedOverRemovedEvents() throws {
        let dir = TemporaryDirectory()
        let log = try ScavengingTests.prepared(dir)
        #expect(try log.compact().segmentsRewritten > 0)
        try log.close()
        let checks = try Log.verify(at: dir.path).segmentChecks
        let removed = checks.flatMap(\.removedPositions)
        #expect(!removed.isEmpty)
        // A segment inside a run that also covers positions scavenging removed before it.
        let target = try #require(Self.segmentInsideARun(dir) { run, base in
            removed.contains { $0.lowerBound < base && $0.upperBound > run.from }
        }, "\(Self.runs(dir))")
        Damage.flipBit(target, at: Fixtures.batches(in: target)[0].offset + 60)
        let before = Self.contents(dir.path)
        let plan = try Log.repair(at: dir.path, options: ScavengingTests.options(), apply: true)
        let refusal = try #require(plan.refusal)
        #expect(refusal.contains("scavenging") && refusal.contains("§14.4"), "\(refusal)")
        #expect(Self.contents(dir.path) == before)
    }

    /// Without retention or scavenging the runs past the cut go and the
    /// open replays their part: streams' versions and last appends are right.
    @Test func runsPastTheCutAreReplayed() throws {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.checkpointBytes = 4096
        let log = try Log.open(at: dir.path, options: options)
        let id = UUID()
        try log.append(NewEvent(stream: "s", type: "T", data: [1], metadata: EventMetadata(eventID: id)))
        try Fixtures.append(log, 1..<400, batch: 10, size: 60)
        try log.close()
        let runs = Self.runs(dir)
        #expect(!runs.isEmpty)
        let target = Fixtures.segments(dir)[2]
        let cut = Fixtures.batches(in: target)[0].base
        Damage.flipBit(target, at: Fixtures.batches(in: target)[0].offset + 60)
        let applied = try Log.repair(at: dir.path, options: options, apply: true)
        #expect(applied.applied && applied.problemsAfter.isEmpty, "\(applied.refusal ?? "") \(applied.problemsAfter)")
        let movedRuns = applied.actions.filter { $0.kind == .moveAside && FileNames.streamTableRunRange($0.file) != nil }
        #expect(movedRuns.map(\.file).sorted() == runs.filter { $0.to > cut }.map { FileNames.streamTableRun(from: $0.from, to: $0.to) }.sorted())
        let reopened = try Log.open(at: dir.path, options: options)
        #expect(reopened.endPosition == cut)
        for s in 0..<7 {
            let expected = (1..<Int(cut)).filter { $0 % 7 == s }.count
            #expect(try reopened.streamInfo("stream-\(s)")?.currentVersion.map { $0 + 1 } ?? 0 == UInt64(expected), "stream-\(s)")
        }
        // The first append's retry is still recognised: its stream's last append came through the replay or a kept run.
        let retry = try reopened.append([NewEvent(stream: "s", type: "T", data: [1], metadata: EventMetadata(eventID: id))], expecting: [:])
        #expect(retry.wasRetry && retry.positions == 0..<1)
        #expect(reopened.endPosition == cut)
        try reopened.close()
    }

    // MARK: Faults during the repair

    /// A damaged log to repair again and again: the files, the position the
    /// repair ends the log at, and what must then be in a damaged directory.
    struct Template {
        let directory = TemporaryDirectory()
        var expected = 0
        /// Name → bytes of each file that must be found, whole, in a damaged directory.
        var keptAside: [String: [UInt8]] = [:]

        /// "cut": a damaged batch in the middle of the only segment;
        /// "sealed": a damaged first batch of the second of several segments.
        init(_ kind: String) throws {
            if kind == "cut" {
                try RepairTests.crashedOneSegment(directory)
                let segment = Fixtures.segments(directory)[0]
                let batch = Fixtures.batches(in: segment)[3]
                Damage.flipBit(segment, at: batch.offset + 70)
                expected = 30
                keptAside[FileNames.cutOff(0, from: batch.offset)] = Array(Damage.read(segment)[batch.offset...])
            } else {
                try RepairTests.severalSegments(directory, close: false)
                let segments = Fixtures.segments(directory)
                let batch = Fixtures.batches(in: segments[1])[0]
                Damage.flipBit(segments[1], at: batch.offset + 70)
                expected = Int(batch.base)
                for segment in segments[1...] { keptAside[RepairTests.name(segment)] = Damage.read(segment) }
            }
        }

        /// The file operations of a repair of a copy that fails nowhere.
        func operations() throws -> Int {
            let counting = FailingStep(failAt: .max)
            let probe = TemporaryDirectory()
            try RepairTests.copy(directory, to: probe)
            var options = RepairTests.options()
            options.storageFaults = counting.faults
            counting.arm()
            #expect(try Log.repair(at: probe.path, options: options, apply: true).applied)
            return counting.disarm()
        }

        /// Repairs `dir` (a copy, after a failed or interrupted repair) again
        /// without faults, then checks the log and that nothing was lost.
        func expectRepairedAgain(_ dir: TemporaryDirectory, _ context: String) throws {
            var again: RepairPlan?
            for _ in 0..<100 {
                do {
                    again = try Log.repair(at: dir.path, options: RepairTests.options(), apply: true)
                    break
                } catch let error as EventLogError {
                    // A failed close may keep the lock for a moment.
                    guard case .locked = error else { throw error }
                    usleep(20_000)
                }
            }
            let plan = try #require(again, "\(context): the log stayed locked")
            #expect(plan.refusal == nil && plan.problemsAfter.isEmpty, "\(context): \(plan)")
            let log = try Log.open(at: dir.path, options: RepairTests.options())
            #expect(log.endPosition == UInt64(expected), "\(context)")
            #expect(try Fixtures.expectContent(log, count: expected), "\(context)")
            try log.close()
            let aside = dir.files().filter { $0.hasPrefix(FileNames.damagedDirectoryPrefix) }
                .flatMap { d in ((try? FileManager.default.contentsOfDirectory(atPath: dir.sub(d))) ?? []).map { dir.sub(d) + "/" + $0 } }
            for (name, bytes) in keptAside {
                #expect(aside.contains { RepairTests.name($0) == name && Damage.read($0) == bytes }, "\(context): \(name) is not in \(aside)")
            }
        }
    }

    /// A failed write, sync, rename or mkdir at any step leaves a log that a
    /// repair run again fixes, with every byte of the damaged part kept.
    @Test(arguments: ["cut", "sealed"])
    func aFailureAtAnyStepLosesNothing(kind: String) throws {
        let template = try Template(kind)
        let steps = try template.operations()
        #expect(steps > 10)
        for failAt in 0..<steps {
            let dir = TemporaryDirectory()
            try Self.copy(template.directory, to: dir)
            let failing = FailingStep(failAt: failAt)
            var options = Self.options()
            options.storageFaults = failing.faults
            failing.arm()
            _ = try? Log.repair(at: dir.path, options: options, apply: true)
            _ = failing.disarm()
            try template.expectRepairedAgain(dir, "fault at operation \(failAt)")
        }
    }

    /// A crash at any step of a repair followed by a power loss (unsynced
    /// writes and directory entries of the log directory lost, kept or torn,
    /// as `PowerLossSimulator` draws them) leaves a log that a repair run
    /// again fixes, with nothing lost. (The simulator models the log
    /// directory only: what was moved into the damaged directory stays.)
    @Test(arguments: ["cut", "sealed"])
    func aPowerLossAtAnyStepLosesNothing(kind: String) throws {
        let template = try Template(kind)
        let steps = try template.operations()
        for crashAt in 0..<steps {
            let dir = TemporaryDirectory()
            try Self.copy(template.directory, to: dir)
            let counter = FailingStep(failAt: .max)
            let simulator = try PowerLossSimulator(directory: dir.path, seed: UInt64(crashAt)) { _, _ in
                // The process dies at operation `crashAt`: nothing from there on happens.
                counter.count() >= crashAt ? .fail(errno: EIO) : nil
            }
            var options = Self.options()
            options.storageFaults = simulator.faults
            _ = try? Log.repair(at: dir.path, options: options, apply: true)
            let report = try simulator.powerLoss()
            try template.expectRepairedAgain(dir, "crash at operation \(crashAt), then \(report)")
        }
    }

    static func copy(_ from: TemporaryDirectory, to: TemporaryDirectory) throws {
        for name in from.files() {
            try? FileManager.default.removeItem(atPath: to.sub(name))
            try FileManager.default.copyItem(atPath: from.sub(name), toPath: to.sub(name))
        }
    }
}
