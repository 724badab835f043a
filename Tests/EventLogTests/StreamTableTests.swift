import Foundation
import Testing
@testable import EventLog

/// The stream table as a log-structured merge (Format.md §14): states in
/// memory only for the streams changed since about the checkpoint before the last, the rest
/// in stream table runs, merged in the background, found again by an open
/// from their names, and replayed from the log where they stop.
@Suite struct StreamTableTests {
    static func options(memory: Int = 1 << 20) -> LogOptions {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 256 << 10
        options.checkpointBytes = 32 << 10
        options.streamMemoryBytes = memory
        return options
    }

    /// What the log must say of each stream: its events' payloads, in version order.
    struct Model {
        var events: [String: [String]] = [:]

        func expect(_ log: Log, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let expected = events[name] ?? []
            let read = try log.events(inStream: name).map { String(decoding: $0.data, as: UTF8.self) }
            #expect(read == expected, "stream \(name)", sourceLocation: sourceLocation)
            let info = try log.streamInfo(name)
            #expect(info?.currentVersion == (expected.isEmpty ? nil : UInt64(expected.count - 1)), "stream \(name)", sourceLocation: sourceLocation)
        }
    }

    /// Appends `batches` batches of 20 events to random streams of `streams`,
    /// each with an exact expectation on its first stream.
    static func appendRandom(_ log: Log, _ model: inout Model, rng: inout SplitMix64, streams: Int, batches: Int) throws {
        for _ in 0..<batches {
            var events: [NewEvent] = []
            var counts: [String: Int] = [:]
            for _ in 0..<20 {
                let name = "aggregate-\(rng.below(streams))"
                let version = (model.events[name]?.count ?? 0) + counts[name, default: 0]
                counts[name, default: 0] += 1
                events.append(NewEvent(stream: name, type: "Changed", data: Array("\(name)@\(version)".utf8)))
            }
            let first = events[0].stream
            let before = model.events[first]?.count ?? 0
            let result = try log.append(events, expecting: [first: before == 0 ? .noStream : .exact(UInt64(before - 1))])
            #expect(!result.wasRetry)
            for event in events { model.events[event.stream, default: []].append(String(decoding: event.data, as: UTF8.self)) }
        }
    }

    /// Thousands of streams through many checkpoints, runs and merges; reopened
    /// after clean closes and after crashes, every stream reads as the model says,
    /// and memory holds only the streams changed since the last checkpoint.
    /// The merge policy: adjacent runs within a factor of two merge, the
    /// newest such pair first, even when the newest two are not such a pair
    /// (a run published while a merge was under way); past the limit, the
    /// smallest adjacent pair; and merging repeatedly leaves few runs.
    @Test func theMergePolicyPicksTheNewestPairWithinAFactorOfTwo() {
        #expect(RunMergePolicy.next(rowCounts: []) == nil)
        #expect(RunMergePolicy.next(rowCounts: [5]) == nil)
        #expect(RunMergePolicy.next(rowCounts: [10, 5]) == 0..<2)
        #expect(RunMergePolicy.next(rowCounts: [11, 5]) == nil)
        // The newest two differ too much; the two before them do not.
        #expect(RunMergePolicy.next(rowCounts: [100, 60, 50, 1]) == 1..<3)
        #expect(RunMergePolicy.next(rowCounts: [100, 40, 10, 1]) == nil)
        // Past maxRuns: the adjacent pair with the fewest rows.
        let many = (0..<(RunMergePolicy.maxRuns + 1)).map { 1 << (2 * (RunMergePolicy.maxRuns + 1 - $0)) }
        #expect(RunMergePolicy.next(rowCounts: many) == (many.count - 2)..<many.count)
        // A load: a run of 1,000 rows every checkpoint, and each merge the
        // policy asks for finishes only after the next run was published:
        // the runs stay few (looking only at the newest two, they grew to
        // the limit, every one of the same size).
        var runs: [Int] = [1_000]
        var most = 0
        for _ in 0..<1_000 {
            let pair = RunMergePolicy.next(rowCounts: runs)
            runs.append(1_000)
            if let pair { runs.replaceSubrange(pair, with: [runs[pair].reduce(0, +)]) }
            most = max(most, runs.count)
        }
        #expect(most <= 8, "\(most) runs")
        #expect(runs.reduce(0, +) == 1_001_000)
    }

    @Test func manyStreamsAcrossRunsMergesAndReopens() throws {
        let dir = TemporaryDirectory()
        var model = Model()
        var rng = SplitMix64(seed: 20)
        let streams = 4000
        for round in 0..<6 {
            let crash = round % 2 == 1
            do {
                let log = try Log.open(at: dir.path, options: Self.options())
                if round > 0 && (round - 1) % 2 == 0 {
                    // After a clean close: nothing replayed, no stream state in memory.
                    #expect(log.recovery.replayedRecords == 0)
                    #expect(log.streams.table.count == 0)
                }
                try Self.appendRandom(log, &model, rng: &rng, streams: streams, batches: 150)
                // The current generation never outgrows its share of memory by more than one batch.
                #expect(log.streams.table.current.memoryBytes <= (1 << 20) / 2 + 20 * 256)
                // The active segment's entries in memory start at its last checkpoint file,
                // once the writer's next batch sees it: a file at most
                // `activeFileLagCheckpoints` (4) checkpoints of 32 KiB behind the data, plus
                // the one taken since (a few hundred events each).
                log.batches.segments.waitForIndexWrites()
                try Self.appendRandom(log, &model, rng: &rng, streams: streams, batches: 1)
                let active = try #require(log.batches.snapshot().active)
                guard case .entries(let entries, _)? = log.streams.index.index(of: active) else {
                    Issue.record("the active segment has no entries in memory")
                    return
                }
                #expect(entries.writtenCount < 5 * 1500, "\(entries.writtenCount) entries in memory")
                let fileEnd = entries.base.map { Int($0.view.header.dataEnd) } ?? SegmentHeader.size
                #expect(active.dataEnd - fileEnd <= (StreamIndex.activeFileLagCheckpoints + 1) * (32 << 10) + 20 * 256,
                        "the file covers up to \(fileEnd) of \(active.dataEnd)")
                for _ in 0..<50 { try model.expect(log, "aggregate-\(rng.below(streams))") }
                if crash {
                    log.batches.segments.waitForIndexWrites()
                    continue  // no close: the next open recovers
                }
                try log.close()
            }
        }
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.recovery.replayedRecords > 0 && log.recovery.replayedRecords < 5 * 3000, "only the tail since the last checkpoints")
        for k in 0..<streams { try model.expect(log, "aggregate-\(k)") }
        // Merged: far fewer runs than checkpoints.
        let runs = Fixtures.streamTableRunNames(dir)
        #expect(runs.count >= 1 && runs.count <= RunMergePolicy.maxRuns, "\(runs)")
        #expect(try Log.verify(at: dir.path).isSound)
        try log.close()
    }

    /// Deletions, truncations and the last append's event ids live in the
    /// runs: after a reopen, when the state is read back from disk, each
    /// still acts.
    @Test func deletionsTruncationsAndRetriesSurviveInRuns() throws {
        let dir = TemporaryDirectory()
        let ids = (0..<3).map { _ in UUID() }
        let retried = ids.map { NewEvent(stream: "order-7", type: "Placed", data: [1], metadata: EventMetadata(eventID: $0)) }
        var original: AppendResult
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            original = try log.append(retried, expecting: ["order-7": .noStream])
            for i in 0..<5 { try log.append(NewEvent(stream: "soft", type: "T", data: [UInt8(i)])) }
            for i in 0..<5 { try log.append(NewEvent(stream: "hard", type: "T", data: [UInt8(i)])) }
            for i in 0..<5 { try log.append(NewEvent(stream: "cut", type: "T", data: [UInt8(i)])) }
            _ = try log.deleteStream("soft")
            _ = try log.deleteStream("hard", hard: true)
            _ = try log.truncateStream("cut", before: 3)
            try log.close()
        }
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.streams.table.count == 0, "every state is on disk, none in memory")
        let retry = try log.append(retried, expecting: ["order-7": .noStream])
        #expect(retry.wasRetry && retry.positions == original.positions)
        #expect(try log.events(inStream: "soft").isEmpty)
        #expect(throws: EventLogError.self) { _ = try log.events(inStream: "hard") }
        #expect(throws: EventLogError.self) { try log.append(NewEvent(stream: "hard", type: "T", data: [9])) }
        #expect(try log.events(inStream: "cut").map(\.version) == [3, 4])
        #expect(try log.streamInfo("cut")?.firstPosition != nil)
        try log.append(NewEvent(stream: "soft", type: "T", data: [5]))
        #expect(try log.events(inStream: "soft").map(\.version) == [5])
        try log.close()
    }

    /// The open finds the chain from the names: a merge's output and its
    /// inputs both present (a crash before the inputs were removed): the
    /// output wins and the inputs go; a missing run breaks the chain, and
    /// the records after the break are replayed.
    /// Appends that write nothing (a failed expectation, a retry) load the
    /// states of their streams from the runs into memory; a checkpoint with
    /// no record since the last one writes no run of them (a run of no
    /// positions would be unusable, and `verify` would report it).
    @Test func aCheckpointWithoutNewRecordsWritesNoRun() throws {
        let dir = TemporaryDirectory()
        let id = UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF")!
        let event = NewEvent(stream: "order-1", type: "Placed", data: [1], metadata: EventMetadata(eventID: id))
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            try log.append([event], expecting: ["order-1": .noStream])
            try log.close()
        }
        let runs = Fixtures.streamTableRunNames(dir)
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(throws: EventLogError.self) { try log.append([NewEvent(stream: "order-1", type: "T", data: [])], expecting: ["order-1": .noStream]) }
        #expect(try log.append([event], expecting: ["order-1": .noStream]).wasRetry)
        #expect(log.streams.table.count == 1, "loaded, unchanged")
        try log.close()
        #expect(Fixtures.streamTableRunNames(dir) == runs)
        let report = try Log.verify(at: dir.path)
        #expect(report.isSound, "\(report.problems)")
    }

    /// At a checkpoint the new generation inherits the states the frozen
    /// one changed, unchanged (the writer then finds them in memory); a run
    /// holds only the states its generation changed; a state no record
    /// changed for a whole generation is not inherited again.
    @Test func aNewGenerationInheritsTheStatesTheLastOneChanged() throws {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.checkpointBytes = 4096
        options.maintenanceInterval = nil
        let large = [UInt8](repeating: 7, count: 5000)  // more than a checkpoint: one after each such append
        do {
            let log = try Log.open(at: dir.path, options: options)
            try log.append(NewEvent(stream: "a", type: "T", data: [1]))
            try log.append(NewEvent(stream: "c", type: "T", data: [1]))
            try log.append(NewEvent(stream: "b", type: "T", data: large))
            // Checkpoint 1 froze {a, b, c}: all inherited, none changed yet.
            #expect(Fixtures.inCurrentGeneration(log, "a") && Fixtures.inCurrentGeneration(log, "b") && Fixtures.inCurrentGeneration(log, "c"))
            #expect(log.streams.table.current.count == 3 && log.streams.table.current.changedCount == 0)
            try log.append(NewEvent(stream: "b", type: "T", data: large))
            // Checkpoint 2 froze {b changed, a and c inherited}: only b is inherited again.
            #expect(!Fixtures.inCurrentGeneration(log, "a") && Fixtures.inCurrentGeneration(log, "b") && !Fixtures.inCurrentGeneration(log, "c"))
            log.batches.segments.waitForIndexWrites()
            // (3 rows and 1: more than a factor of two apart, so not merged, RunMergePolicy.)
            let directory = DirectoryOperations(path: dir.path, faults: nil)
            let rows = StreamTableRunChain.select(in: directory, end: .max).map(\.rowCount)
            #expect(rows == [3, 1], "each run holds the states its generation changed: \(rows)")
            try log.append(NewEvent(stream: "a", type: "T", data: [2]))  // from a run, into memory again
            #expect(try log.events(inStream: "a").map(\.data) == [[1], [2]])
            #expect(try log.streamInfo("b")?.currentVersion == 1)
            try log.close()
        }
        let log = try Log.open(at: dir.path, options: options)
        #expect(log.recovery.replayedRecords == 0)
        #expect(try log.streamInfo("a")?.currentVersion == 1 && log.streamInfo("b")?.currentVersion == 1)
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A periodic checkpoint rewrites the active segment's stream index
    /// file only once the data since the last one is as much as it covers,
    /// or 4 checkpoints' worth; a crash then replays at most that much.
    @Test func theActiveStreamIndexFileIsRewrittenWhenItWouldAboutDouble() throws {
        let h = SegmentHeader.size
        let mib = 1 << 20
        #expect(StreamIndex.rewritesActiveFile(fileEnd: h, dataEnd: h + 16 * mib, checkpointBytes: 16 * mib), "no file yet")
        #expect(StreamIndex.rewritesActiveFile(fileEnd: h + 16 * mib, dataEnd: h + 32 * mib, checkpointBytes: 16 * mib))
        #expect(!StreamIndex.rewritesActiveFile(fileEnd: h + 32 * mib, dataEnd: h + 48 * mib, checkpointBytes: 16 * mib))
        #expect(StreamIndex.rewritesActiveFile(fileEnd: h + 32 * mib, dataEnd: h + 64 * mib, checkpointBytes: 16 * mib))
        #expect(!StreamIndex.rewritesActiveFile(fileEnd: h + 64 * mib, dataEnd: h + 112 * mib, checkpointBytes: 16 * mib))
        // Past 4 checkpoints' worth, whatever the file covers.
        #expect(!StreamIndex.rewritesActiveFile(fileEnd: h + 100 * mib, dataEnd: h + 163 * mib, checkpointBytes: 16 * mib))
        #expect(StreamIndex.rewritesActiveFile(fileEnd: h + 100 * mib, dataEnd: h + 164 * mib, checkpointBytes: 16 * mib))

        // In a log: every file written at a checkpoint covers about twice the one before.
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.segmentBytes = 4 << 20
        options.checkpointBytes = 16 << 10
        options.maintenanceInterval = nil
        var model = Model()
        var rng = SplitMix64(seed: 31)
        var covered: [Int] = []
        do {
            let log = try Log.open(at: dir.path, options: options)
            let file = dir.path + "/" + FileNames.streamIndex(0)
            for _ in 0..<120 {
                try Self.appendRandom(log, &model, rng: &rng, streams: 300, batches: 4)
                log.batches.segments.waitForIndexWrites()
                guard let view = StreamIndexView.open(path: file, faults: nil) else { continue }
                let end = Int(view.header.dataEnd) - h
                if covered.last != end { covered.append(end) }
            }
            let checkpoints = (try #require(log.batches.snapshot().active).dataEnd - h) / options.checkpointBytes
            #expect(covered.count >= 4 && covered.count < checkpoints / 2, "\(covered) in \(checkpoints) checkpoints")
            for (before, after) in zip(covered, covered.dropFirst()) {
                #expect(after - before >= min(before, 4 * options.checkpointBytes), "\(covered)")
            }
            log.batches.segments.waitForIndexWrites()
            // No close: a crash, as far as the files are concerned.
        }
        // The open replays the entries since the last file, and every stream reads right.
        let reopened = try Log.open(at: dir.path, options: options)
        #expect(reopened.recovery.replayedRecords > 0)
        for k in 0..<300 { try model.expect(reopened, "aggregate-\(k)") }
        try reopened.close()
    }

    @Test func theChainIsFoundFromTheNames() throws {
        let dir = TemporaryDirectory()
        var model = Model()
        var rng = SplitMix64(seed: 7)
        var options = Self.options()
        do {
            let log = try Log.open(at: dir.path, options: options)
            try Self.appendRandom(log, &model, rng: &rng, streams: 500, batches: 60)
            try log.close()
        }
        var runs = Fixtures.streamTableRunNames(dir)
        try #require(runs.count >= 1)
        // Split the first run into two "inputs" that a merge left behind:
        // a copy of it under a name ending before its own end.
        let first = try #require(FileNames.streamTableRunRange(runs[0]))
        let stale = FileNames.streamTableRun(from: first.from, to: first.from + 1)
        try FileManager.default.copyItem(atPath: dir.sub(runs[0]), toPath: dir.sub(stale))
        options.streamMemoryBytes = 1 << 20
        do {
            let log = try Log.open(at: dir.path, options: options)
            #expect(log.recovery.replayedRecords == 0)
            #expect(!dir.files().contains(stale), "a run the chain does not use is removed by a writer")
            for k in 0..<500 { try model.expect(log, "aggregate-\(k)") }
            try log.close()
        }
        // A run lost from the middle of the chain: the records after it are replayed.
        runs = Fixtures.streamTableRunNames(dir)
        try #require(!runs.isEmpty)
        Damage.remove(dir.sub(runs[runs.count - 1]))
        let log = try Log.open(at: dir.path, options: options)
        #expect(log.recovery.replayedRecords > 0)
        #expect(!log.recovery.rebuiltIndexes.isEmpty)
        for k in 0..<500 { try model.expect(log, "aggregate-\(k)") }
        try log.close()
    }

    /// A run is written after the records it covers were synced: one that
    /// reaches past the recovered end of the log is evidence of lost synced
    /// data, and the open fails (the same way each time).
    @Test func aRunPastTheEndIsEvidenceOfLostSyncedData() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            for i in 0..<200 { try log.append(NewEvent(stream: "s-\(i % 7)", type: "T", data: Array(repeating: UInt8(i & 0xFF), count: 100))) }
            try log.close()
        }
        let segments = Fixtures.segments(dir)
        let last = try #require(segments.last)
        let batches = Fixtures.batches(in: last)
        try #require(batches.count > 2)
        // A crash's torn tail: the last batches read as zeros, and no
        // clean-shutdown marker or index checkpoint says otherwise: only the run does.
        Damage.overwrite(last, at: batches[batches.count - 2].offset, with: [UInt8](repeating: 0, count: 256))
        Damage.remove(dir.sub(FileNames.cleanShutdown))
        for name in dir.files() where name.hasSuffix(".index") || name.hasSuffix(".timeindex") || name.hasSuffix(".streamindex") {
            Damage.remove(dir.sub(name))
        }
        for _ in 0..<2 {
            #expect {
                _ = try Log.open(at: dir.path, options: Self.options())
            } throws: { error in
                guard case EventLogError.corruption(let file, _, let reason)? = error as? EventLogError else { return false }
                return file == last && reason.contains("stream table run")
            }
        }
    }

    /// A reader in another process (a read-only log) that follows a writer
    /// for long keeps no more in memory than the writer: past its share, it
    /// takes the writer's newer runs instead of growing.
    @Test func aLongLivedReaderAdoptsTheWritersRuns() throws {
        let dir = TemporaryDirectory()
        var model = Model()
        var rng = SplitMix64(seed: 11)
        let writer = try Log.open(at: dir.path, options: Self.options())
        try Self.appendRandom(writer, &model, rng: &rng, streams: 3000, batches: 10)
        try writer.sync()
        var readOptions = Self.options()
        readOptions.readOnly = true
        let reader = try Log.open(at: dir.path, options: readOptions)
        for _ in 0..<8 {
            try Self.appendRandom(writer, &model, rng: &rng, streams: 3000, batches: 100)
            try writer.sync()
            writer.batches.segments.waitForIndexWrites()
            _ = try reader.refresh()
            #expect(reader.streams.table.current.memoryBytes <= (1 << 20) / 2 + 2100 * 256)
            for _ in 0..<30 { try model.expect(reader, "aggregate-\(rng.below(3000))") }
        }
        try reader.close()
        try writer.close()
    }

    /// A damaged block inside a run: `verify` names the file and the block,
    /// a read of a stream whose state is in that block fails naming them too
    /// (the others read), and removing the run has the next open replay
    /// what it held.
    @Test func aDamagedRunBlockIsReportedAndRemovingTheRunRebuildsIt() throws {
        let dir = TemporaryDirectory()
        var model = Model()
        var rng = SplitMix64(seed: 5)
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            try Self.appendRandom(log, &model, rng: &rng, streams: 400, batches: 40)
            try log.close()
        }
        let runs = Fixtures.streamTableRunNames(dir)
        try #require(runs.count >= 1)
        let run = dir.sub(runs[0])
        Damage.overwrite(run, at: 64 + 40, with: [0xFF, 0xFE])
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == run && $0.offset == 64 }, "\(report.problems)")

        var failed = 0
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            for k in 0..<400 {
                do {
                    try model.expect(log, "aggregate-\(k)")
                } catch {
                    guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else {
                        Issue.record("unexpected \(error)")
                        continue
                    }
                    #expect(file == run && offset == 64)
                    failed += 1
                }
            }
            try log.close()
        }
        #expect(failed > 0 && failed < 400, "\(failed) streams failed")

        Damage.remove(run)
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.recovery.replayedRecords > 0)
        for k in 0..<400 { try model.expect(log, "aggregate-\(k)") }
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
