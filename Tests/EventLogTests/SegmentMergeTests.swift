import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Merging small neighbouring sealed segments after scavenging (Format.md
/// §4.2): every read as before, the compaction manifest `eventlog.swap`
/// committing the swap, a crash or a power loss at any step leaving the old
/// or the new set, the span limit, read-only processes.
@Suite struct SegmentMergeTests {
    /// ScavengingTests' options (4 KiB segments), merging on or off (a span limit of 0 merges nothing).
    static func options(merging: Bool = true, readOnly: Bool = false) -> LogOptions {
        var options = ScavengingTests.options(readOnly: readOnly)
        if !merging { options.maxMergedSpan = 0 }
        return options
    }

    /// ScavengingTests' log, compacted without merging and closed: many small rewritten segments.
    static func scavenged(_ dir: TemporaryDirectory) throws {
        let log = try ScavengingTests.prepared(dir)
        try log.close()
        let scavenging = try Log.open(at: dir.path, options: options(merging: false))
        let result = try scavenging.compact()
        #expect(result.segmentsRewritten > 5 && result.segmentsMerged == 0)
        try scavenging.close()
    }

    /// Everything a reader can see of a log.
    struct Reads: Equatable {
        var events: [Event]
        var streams: [[UInt64]]
        var infos: [StreamInfo?]
        var removedReads: [String]
        var scansFromRemoved: [UInt64?]
        var lags: [UInt64]
    }

    static func reads(_ log: Log, removed: [UInt64]) throws -> Reads {
        let events = try log.events(from: 0)
        var removedReads: [String] = []
        var scans: [UInt64?] = []
        var lags: [UInt64] = []
        for p in removed {
            do {
                _ = try log.event(at: p)
                removedReads.append("read")
            } catch {
                removedReads.append("\(error)")
            }
            scans.append(try log.events(from: p, maxCount: 1).first?.position)
            lags.append(try log.lag(from: p).events)
        }
        return Reads(
            events: events, streams: try ScavengingTests.streamContents(log),
            infos: try (0..<ScavengingTests.streams).map { try log.streamInfo("order-\($0)") }, removedReads: removedReads,
            scansFromRemoved: scans, lags: lags)
    }

    static func segmentCount(_ dir: TemporaryDirectory) -> Int { dir.files().filter { $0.hasSuffix(".segment") }.count }

    // MARK: Reads

    @Test func mergingLeavesFewerSegmentsAndEveryReadAsBefore() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        let log = try Log.open(at: dir.path, options: Self.options())
        let all = Set(0..<log.endPosition)
        let removed = all.subtracting(try log.events(from: 0).map(\.position)).sorted()
        try #require(removed.count > 100)
        let sample = stride(from: 0, to: removed.count, by: 7).map { removed[$0] }
        let before = try Self.reads(log, removed: sample)
        #expect(before.removedReads.allSatisfy { $0.contains("removed by scavenging") })
        try log.commitCursor("relay", position: sample[3])
        let cursorLag = try log.lag(ofCursor: "relay")?.events
        let segmentsBefore = log.batches.segments.snapshot().count

        let result = try log.compact()
        #expect(result.segmentsRewritten == 0 && result.eventsRemoved == 0)
        #expect(result.segmentsMerged >= 2)
        let segmentsAfter = log.batches.segments.snapshot().count
        #expect(segmentsAfter < segmentsBefore)
        #expect(result.segmentsBefore == segmentsBefore && result.segmentsAfter == segmentsAfter)
        #expect(result.bytesAfter < result.bytesBefore)
        #expect(try Self.reads(log, removed: sample) == before)
        #expect(try log.lag(ofCursor: "relay")?.events == cursorLag)
        #expect(!FileManager.default.fileExists(atPath: dir.sub(FileNames.compactionManifest)))
        // Merged segments are within the size and span limits, and a second pass finds nothing to merge.
        for segment in log.batches.segments.snapshot().sealed {
            #expect(segment.dataEnd <= 4096 || segment.declaredEnd == nil)
        }
        #expect(try log.compact().segmentsMerged == 0)
        // Versions go on after the merge; the log reopens, verifies, and reads the same.
        _ = try log.append(to: "order-20", expectedVersion: .any, [RetentionTests.event(20)])
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
        #expect(Self.segmentCount(dir) == segmentsAfter)
        let reopened = try Log.open(at: dir.path, options: Self.options())
        var expected = try Self.reads(reopened, removed: sample)
        expected.events.removeLast()
        #expect(expected.events == before.events && expected.removedReads == before.removedReads)
        #expect(expected.scansFromRemoved == before.scansFromRemoved)
        try reopened.close()
    }

    /// The scavenging test's own log with merging on: the dry run says
    /// what merging will do (from sizes counted uncompressed: with LZ4 it
    /// may see fewer merges than the run makes), and the run does it.
    @Test(arguments: [Compression.none, .lz4])
    func aDryRunEstimatesTheMerges(compression: Compression) throws {
        let dir = TemporaryDirectory()
        let log = try ScavengingTests.prepared(dir, compression: compression)
        let dry = try log.compact(dryRun: true)
        if compression == .none { #expect(dry.segmentsMerged > 0) }
        let result = try log.compact()
        #expect(result.segmentsMerged > 0)
        #expect(result.segmentsAfter == log.batches.segments.snapshot().count)
        #expect(result.segmentsAfter < result.segmentsBefore)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
        let status = Maintenance.readLastCompaction(in: DirectoryOperations(path: dir.path, faults: nil))
        #expect(status.lastResult?.segmentsMerged == result.segmentsMerged)
    }

    // MARK: The span limit

    @Test func thePlanRespectsSizeAndSpan() {
        func candidates(_ spans: [UInt64], bytes: Int = 500) -> [MergePlan.Candidate] {
            var base: UInt64 = 1_000
            return spans.map { span in
                defer { base += span }
                return MergePlan.Candidate(base: base, end: base + span, dataBytes: bytes)
            }
        }
        // Sizes: 500 bytes each, 64 of them a header: 8 fit in 4096 (64 + 8 × 436 = 3552), 9 do not.
        #expect(MergePlan.make(candidates(Array(repeating: 10, count: 20)), segmentBytes: 4096) == [0..<9, 9..<18, 18..<20])
        // Large segments never merge, small ones around them do.
        var mixed = candidates(Array(repeating: 10, count: 5))
        mixed[2].dataBytes = 2049
        #expect(MergePlan.make(mixed, segmentBytes: 4096) == [0..<2, 3..<5])
        // The span: positions from the first base to the last end, gaps included.
        #expect(MergePlan.make(candidates([100, 100, 100, 100]), segmentBytes: 4096, maxSpan: 250) == [0..<2, 2..<4])
        #expect(MergePlan.make(candidates([300, 10, 10]), segmentBytes: 4096, maxSpan: 250) == [1..<3])
        let huge = candidates([1 << 31, 1 << 31, 1])
        #expect(MergePlan.make(huge, segmentBytes: 4096) == [1..<3])
        #expect(MergePlan.make(candidates([1 << 31, (1 << 31) - 1]), segmentBytes: 4096) == [0..<2])
        // The count limit.
        #expect(MergePlan.make(candidates(Array(repeating: 1, count: 7), bytes: 70), segmentBytes: 4096, maxCount: 3) == [0..<3, 3..<6])
    }

    @Test func aMergedSegmentNeverSpansMoreThanTheLimit() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        var options = Self.options()
        options.maxMergedSpan = 100
        let log = try Log.open(at: dir.path, options: options)
        let before = try log.events(from: 0)
        let result = try log.compact()
        #expect(result.segmentsMerged > 0)
        for segment in log.batches.segments.snapshot().sealed {
            #expect(segment.endPosition - segment.basePosition <= 100 || segment.declaredEnd == nil || !isMerged(segment))
        }
        #expect(try log.events(from: 0) == before)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)

        /// A segment longer than the limit can only be one scavenging rewrote alone: 4 KiB of these events holds fewer than 100.
        func isMerged(_ segment: Segment) -> Bool { segment.endPosition - segment.basePosition > 60 }
    }

    // MARK: The manifest

    /// Writes the merge of the first group a merge would make, and its
    /// manifest, as a crash right after the commit leaves them; returns the
    /// manifest. The log is abandoned, not closed.
    static func committedMerge(_ dir: TemporaryDirectory) throws -> CompactionManifest {
        var log: Log? = try Log.open(at: dir.path, options: options(merging: false))
        let manifest = try Self.writeMerge(of: try #require(log?.batches), in: dir)
        #expect(CrashFixtures.abandon(&log))
        return manifest
    }

    private static func writeMerge(of batches: BatchLog, in dir: TemporaryDirectory) throws -> CompactionManifest {
        let sealed = batches.segments.snapshot().sealed
        let candidates = sealed.map { MergePlan.Candidate(base: $0.basePosition, end: $0.endPosition, dataBytes: $0.dataEnd) }
        let group = try #require(MergePlan.make(candidates, segmentBytes: 4096).first)
        let segments = Array(sealed[group])
        let written = try SegmentMerger.merge(
            segments, logID: batches.segments.logID, to: dir.sub(MergeSwap.temporary(segments[0].basePosition)), modes: .ownerOnly, faults: nil,
            paces: { true })
        let manifest = CompactionManifest(
            oldBases: segments.map(\.basePosition), newBase: segments[0].basePosition,
            newDeclaredEnd: try #require(written.header.declaredEnd), newHeaderChecksum: written.header.checksum)
        try DirectoryOperations(path: dir.path, faults: nil).writeAtomically(FileNames.compactionManifest, bytes: manifest.encode())
        batches.segments.waitForIndexWrites()
        return manifest
    }

    @Test func aCommittedManifestIsRolledForwardAtOpen() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        let expected = try Log.open(at: dir.path, options: Self.options(readOnly: true)).events(from: 0)
        let manifest = try Self.committedMerge(dir)
        let segments = Self.segmentCount(dir)
        // A read-only open before the rename reads the old set, and changes nothing.
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        #expect(try reader.events(from: 0) == expected)
        #expect(reader.batches.segments.snapshot().count == segments)
        try reader.close()
        #expect(FileManager.default.fileExists(atPath: dir.sub(FileNames.compactionManifest)))

        let log = try Log.open(at: dir.path, options: Self.options(merging: false))
        #expect(log.recovery.pendingMerge == .rolledForward(base: manifest.newBase, end: manifest.newDeclaredEnd))
        #expect(log.recovery.removedFiles.contains(FileNames.compactionManifest))
        #expect(Self.segmentCount(dir) == segments - manifest.oldBases.count + 1)
        #expect(!FileManager.default.fileExists(atPath: dir.sub(FileNames.compactionManifest)))
        #expect(!dir.files().contains { $0.hasSuffix(".tmp") })
        #expect(try log.events(from: 0) == expected)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A damaged manifest (Format.md §4.2): every open refuses it, changing
    /// nothing; `inspect` (its damaged files) and `verify` name it at the
    /// offset of the failed check: the checksum field, for a flipped byte.
    @Test func aDamagedManifestIsNamedByInspectAndVerify() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        _ = try Self.committedMerge(dir)
        let file = dir.sub(FileNames.compactionManifest)
        let length = Damage.read(file).count
        Damage.flipBit(file, at: 20)
        let before = dir.files()
        for options in [Self.options(readOnly: true), Self.options(merging: false)] {
            #expect(throws: EventLogError.self) { _ = try Log.open(at: dir.path, options: options) }
        }
        #expect(dir.files() == before)
        let inspect = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("{\"file\":\"\(file)\",\"offset\":\(length - 4),"), "\(inspect)")
        let verify = try CLIProcess.run(["verify", dir.path])
        #expect(verify.status == 1 && verify.stdout.contains("\(file) at byte \(length - 4):"), "\(verify)")
    }

    /// The swap stopped after its rename, with some old files unlinked: a
    /// read-only open, `verify` and `inspect` leave the rest out; a writer finishes it.
    @Test func aSwapStoppedAfterItsRenameIsFinished() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        let expected = try Log.open(at: dir.path, options: Self.options(readOnly: true)).events(from: 0)
        let manifest = try Self.committedMerge(dir)
        let segments = Self.segmentCount(dir)
        // Steps 3 and 4 of the swap, and part of step 5.
        for base in manifest.oldBases {
            for name in [FileNames.offsetIndex(base), FileNames.timeIndex(base), FileNames.streamIndex(base)] { Damage.remove(dir.sub(name)) }
        }
        #expect(rename(dir.sub(MergeSwap.temporary(manifest.newBase)), dir.sub(FileNames.segment(manifest.newBase))) == 0)
        try FileManager.default.removeItem(atPath: dir.sub(FileNames.segment(manifest.oldBases[1])))

        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        #expect(try reader.events(from: 0) == expected)
        #expect(reader.batches.segments.snapshot().count == segments - manifest.oldBases.count + 1)
        try reader.close()
        // Only the merged segment's index files are missing (a swap unlinks them first); nothing overlaps.
        let verified = try Log.verify(at: dir.path)
        #expect(verified.problems.allSatisfy { $0.reason.contains("is missing") && $0.file.contains(FileNames.stem(manifest.newBase)) }, "\(verified.problems)")
        #expect(try Log.inspect(at: dir.path).segments.count == segments - manifest.oldBases.count + 1)

        let log = try Log.open(at: dir.path, options: Self.options(merging: false))
        #expect(log.recovery.pendingMerge == .rolledForward(base: manifest.newBase, end: manifest.newDeclaredEnd))
        #expect(Self.segmentCount(dir) == segments - manifest.oldBases.count + 1)
        #expect(try log.events(from: 0) == expected)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A manifest whose merged file is neither at its temporary name nor in
    /// place: the swap never reached its rename, and only the manifest goes.
    @Test func aManifestWithoutItsFileIsRolledBack() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        let expected = try Log.open(at: dir.path, options: Self.options(readOnly: true)).events(from: 0)
        let manifest = try Self.committedMerge(dir)
        let segments = Self.segmentCount(dir)
        try FileManager.default.removeItem(atPath: dir.sub(MergeSwap.temporary(manifest.newBase)))
        let log = try Log.open(at: dir.path, options: Self.options(merging: false))
        #expect(log.recovery.pendingMerge == .rolledBack(base: manifest.newBase, end: manifest.newDeclaredEnd))
        #expect(Self.segmentCount(dir) == segments)
        #expect(!FileManager.default.fileExists(atPath: dir.sub(FileNames.compactionManifest)))
        #expect(try log.events(from: 0) == expected)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func anUnknownVersionOrADamagedManifestIsRefusedAndNothingChanges() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        let manifest = try Self.committedMerge(dir)
        let path = dir.sub(FileNames.compactionManifest)
        let good = Damage.read(path)
        #expect(good == manifest.encode())
        #expect(try CompactionManifest.decode(good, file: "m") == manifest)
        func resealed(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = good
            edit(&b)
            let crc = CRC32C.checksum(Array(b[0..<(b.count - 4)]))
            withUnsafeBytes(of: crc.littleEndian) { for (k, x) in $0.enumerated() { b[b.count - 4 + k] = x } }
            return b
        }
        let files = Set(dir.files())
        Damage.write(path, resealed { $0[8] = UInt8(FormatVersion.current + 1) })
        for options in [Self.options(), Self.options(readOnly: true)] {
            #expect {
                _ = try Log.open(at: dir.path, options: options)
            } throws: { error in
                guard case .unsupportedFormatVersion(let file, let found, let supported)? = error as? EventLogError else { return false }
                return file == path && found == Int(FormatVersion.current) + 1 && supported == Int(FormatVersion.current)
            }
        }
        #expect(Set(dir.files()) == files, "a refused open changed files")
        // A damaged byte: the checksum, at the end of the file.
        var flipped = good
        flipped[30] ^= 1
        Damage.write(path, flipped)
        #expect {
            _ = try Log.open(at: dir.path, options: Self.options())
        } throws: { error in
            guard case .corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == path && offset == Int64(good.count - 4)
        }
        #expect(try Log.verify(at: dir.path).problems.contains { $0.file == path && $0.offset == Int64(good.count - 4) })
        // Fields that cannot be: an unsorted base, one before the new base.
        Damage.write(path, resealed { $0[48] = 0; $0[49] = 0; $0[50] = 0; $0[51] = 0 })
        #expect {
            _ = try Log.open(at: dir.path, options: Self.options())
        } throws: { error in
            guard case .corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == path && offset == 48
        }
        #expect(Set(dir.files()) == files)
        // Every flipped byte and every cut is refused.
        for i in good.indices {
            var damaged = good
            damaged[i] ^= 0x10
            #expect(throws: EventLogError.self) { try CompactionManifest.decode(damaged, file: "m") }
        }
        for length in [0, 9, 20, good.count - 8, good.count - 1] {
            #expect(throws: EventLogError.self) { try CompactionManifest.decode(Array(good.prefix(length)), file: "m") }
        }
        // Restored, the open finishes the swap.
        Damage.write(path, good)
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.recovery.pendingMerge == .rolledForward(base: manifest.newBase, end: manifest.newDeclaredEnd))
        try log.close()
    }

    // MARK: Crashes

    /// A failure at every file operation of a merging compaction, then the
    /// process gone: the next open shows the old set or the new one, every
    /// event and stream as before, no manifest left, and verifies.
    @Test func aFailureAtEveryStepLeavesTheOldOrTheNewSet() throws {
        let template = TemporaryDirectory("eventlog-merge-template", preferMemory: true)
        try Self.scavenged(template)
        let expected = try Self.reads(try Log.open(at: template.path, options: Self.options(readOnly: true)), removed: [])
        let old = Self.segmentCount(template)
        var step = 0
        var counts: Set<Int> = []
        while true {
            let dir = TemporaryDirectory("eventlog-merge", preferMemory: true)
            try RepairTests.copy(template, to: dir)
            let failing = FailingStep(failAt: step)
            var options = Self.options()
            options.storageFaults = failing.faults
            var log: Log? = try Log.open(at: dir.path, options: options)
            failing.arm()
            let completed = (try? log?.compact()) != nil
            let operations = failing.disarm()
            log?.batches.segments.waitForIndexWrites()
            #expect(CrashFixtures.abandon(&log, timeout: .seconds(5)), "step \(step): the released log stayed alive")

            let reopened = try Log.open(at: dir.path, options: Self.options(merging: false))
            #expect(try Self.reads(reopened, removed: []) == expected, "step \(step)")
            let count = reopened.batches.segments.snapshot().count
            counts.insert(count)
            #expect(!completed || count < old, "step \(step): completed without merging")
            try reopened.close()
            #expect(!FileManager.default.fileExists(atPath: dir.sub(FileNames.compactionManifest)), "step \(step)")
            #expect(try Log.verify(at: dir.path).isSound, "step \(step)")
            if step >= operations { break }
            step += 1
        }
        #expect(step >= 10, "only \(step) file operations in a merging run")
        #expect(counts.contains(old) && counts.contains { $0 < old }, "\(counts)")
    }

    /// A crash at any operation of a merging compaction followed by a power
    /// loss (unsynced writes and directory entries lost, kept or torn, as
    /// `PowerLossSimulator` draws them): the log opens with every event,
    /// and verifies.
    @Test func aPowerLossAtAnyStepOfAMergeLosesNothing() throws {
        let template = TemporaryDirectory("eventlog-merge-template", preferMemory: true)
        try Self.scavenged(template)
        let expected = try Self.reads(try Log.open(at: template.path, options: Self.options(readOnly: true)), removed: [])
        // How many operations a whole run takes.
        let counting = TemporaryDirectory("eventlog-merge-count", preferMemory: true)
        try RepairTests.copy(template, to: counting)
        let counter = FailingStep(failAt: .max)
        var countingOptions = Self.options()
        countingOptions.storageFaults = counter.faults
        let counted = try Log.open(at: counting.path, options: countingOptions)
        counter.arm()
        #expect(try counted.compact().segmentsMerged > 0)
        let steps = counter.disarm()
        try counted.close()

        var merged = 0
        for crashAt in stride(from: 0, through: steps, by: max(1, steps / 60)) {
            let dir = TemporaryDirectory("eventlog-merge-power", preferMemory: true)
            try RepairTests.copy(template, to: dir)
            let crash = CrashAt(crashAt)
            let simulator = try PowerLossSimulator(directory: dir.path, seed: UInt64(crashAt)) { _, _ in crash.decide() }
            var options = Self.options()
            options.storageFaults = simulator.faults
            var log: Log? = try Log.open(at: dir.path, options: options)
            crash.arm()
            _ = try? log?.compact()
            log?.batches.segments.waitForIndexWrites()
            #expect(CrashFixtures.abandon(&log, timeout: .seconds(5)))
            let report = try simulator.powerLoss()
            let reopened: Log
            do { reopened = try Log.open(at: dir.path, options: Self.options(merging: false)) } catch {
                Issue.record("crash at \(crashAt), then a power loss: open failed: \(error)\n\(report)")
                continue
            }
            #expect(try Self.reads(reopened, removed: []) == expected, "crash at \(crashAt)\n\(report)")
            if reopened.batches.segments.snapshot().count < Self.segmentCount(template) { merged += 1 }
            try reopened.close()
            #expect(try Log.verify(at: dir.path).isSound, "crash at \(crashAt)\n\(report)")
        }
        #expect(merged > 0)
    }

    // MARK: Read-only processes

    @Test func aReadOnlyProcessSeesTheMergeAndLetsGoOfTheOldFiles() throws {
        let dir = TemporaryDirectory()
        try Self.scavenged(dir)
        let writer = try Log.open(at: dir.path, options: Self.options())
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        let before = try Self.reads(reader, removed: [])
        let oldSegments = reader.batches.segments.snapshot().sealed
        #expect(try writer.compact().segmentsMerged > 0)
        // Before its refresh the reader reads the old files, unlinked or not.
        #expect(try Self.reads(reader, removed: []) == before)
        _ = try reader.refresh()
        #expect(try Self.reads(reader, removed: []) == before)
        let snapshot = reader.batches.segments.snapshot()
        #expect(snapshot.sealed.map(\.basePosition) == writer.batches.segments.snapshot().sealed.map(\.basePosition))
        #expect(snapshot.sealed.count < oldSegments.count)
        #expect(snapshot.sealed.map(\.fileIdentity) == snapshot.sealed.map { FileIdentity.of($0.path) })
        // New events reach the reader after the merge too.
        _ = try writer.append(to: "order-21", expectedVersion: .any, [RetentionTests.event(21)])
        try writer.sync()
        _ = try reader.refresh()
        #expect(try reader.events(from: 0).count == before.events.count + 1)
        try reader.close()
        try writer.close()
    }

    /// A reader that last looked before the writer rolled to new segments
    /// and merged its last known one with them: it drops what the merge
    /// took in and finds the segments after it.
    @Test func aReadOnlyProcessWhoseLastSegmentWasMergedCatchesUp() throws {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.segmentMaxAge = nil
        let writer = try Log.open(at: dir.path, options: options)
        for first in stride(from: 0, to: 100, by: 10) { try writer.append((first..<(first + 10)).map(RetentionTests.event)) }
        try writer.sync()
        let reader = try Log.open(at: dir.path, options: Self.options(readOnly: true))
        #expect(try reader.events(from: 0).count == 100)
        for first in stride(from: 100, to: 400, by: 10) { try writer.append((first..<(first + 10)).map(RetentionTests.event)) }
        for s in 0..<20 { _ = try writer.deleteStream("order-\(s)", hard: true) }
        let result = try writer.compact()
        #expect(result.segmentsMerged > 0)
        try writer.sync()
        _ = try reader.refresh()
        #expect(try reader.events(from: 0) == writer.events(from: 0))
        #expect(try ScavengingTests.streamContents(reader) == ScavengingTests.streamContents(writer))
        try reader.close()
        try writer.close()
    }
}

/// The process dies at operation `crashAt` (from 0) once armed: that one and every later one fail.
final class CrashAt: Sendable {
    let crashAt: Int
    private let state = Mutex<(on: Bool, count: Int)>((false, 0))
    init(_ crashAt: Int) { self.crashAt = crashAt }
    func arm() { state.withLock { $0.on = true } }
    func decide() -> StorageFault? {
        state.withLock { state in
            guard state.on else { return nil }
            state.count += 1
            return state.count - 1 >= crashAt ? .fail(errno: EIO) : nil
        }
    }
}
