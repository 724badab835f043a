import Foundation
import Testing
@testable import EventLog

/// Idempotent retries (Format.md §14.4): recognised from each stream's state
/// (the last append's id digest and record count) through checkpoints, runs,
/// merges, reopens and retention, without reading the log; partial repeats
/// refused; states read from version 2 runs fall back to the log, and never
/// append silently once the original is gone.
@Suite struct RetryTests {
    static func options(segmentBytes: Int = 256 << 10, checkpointBytes: Int = 32 << 10) -> LogOptions {
        var options = LogOptions(segmentBytes: segmentBytes, durability: .none)
        options.maintenanceInterval = nil
        options.checkpointBytes = checkpointBytes
        return options
    }

    /// A UUID from the seeded generator.
    static func id(_ random: inout SplitMix64) -> UUID {
        let a = random.next()
        let b = random.next()
        var uuid = UUID().uuid  // every byte overwritten
        withUnsafeMutableBytes(of: &uuid) { bytes in
            bytes.storeBytes(of: a, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: b, toByteOffset: 8, as: UInt64.self)
        }
        return UUID(uuid: uuid)
    }

    static func event(_ stream: String, _ id: UUID?, _ n: Int = 0) -> NewEvent {
        NewEvent(stream: stream, type: "Happened", data: Array("\(stream)#\(n)".utf8), metadata: EventMetadata(eventID: id))
    }

    /// `count` batches of 10 events without ids to streams `filler-0` … `filler-99`.
    static func fill(_ log: Log, batches: Int, random: inout SplitMix64) throws {
        for _ in 0..<batches {
            try log.append((0..<10).map { _ in
                NewEvent(stream: "filler-\(random.below(100))", type: "F", data: Array(repeating: 7, count: 90))
            })
        }
    }

    /// The error a throwing call threw, as an `EventLogError` (nil when none).
    static func thrown(_ body: () throws -> Void) -> EventLogError? {
        do { try body() } catch { return error as? EventLogError ?? .invalidArgument("other error: \(error)") }
        return nil
    }

    static func isConflict(_ error: EventLogError?, stream: String? = nil, saying words: String? = nil) -> Bool {
        guard case .idempotencyConflict(let named, let reason)? = error else { return false }
        return (stream == nil || named == stream) && (words == nil || reason.contains(words ?? ""))
    }


    // MARK: The digest

    /// Format.md §14.4's algorithm, transcribed from the text (not the code),
    /// and its check values.
    @Test func theDigestIsTheDocumentedOne() {
        func documented(_ ids: [UUID]) -> UInt64 {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for id in ids {
                let bytes = withUnsafeBytes(of: id.uuid) { Array($0) }
                for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
            }
            var x = h
            x ^= x >> 33
            x &*= 0xFF51_AFD7_ED55_8CCD
            x ^= x >> 33
            x &*= 0xC4CE_B9FE_1A85_EC53
            x ^= x >> 33
            return x == 0 ? 1 : x
        }
        let a = UUID(uuidString: "00112233-4455-6677-8899-AABBCCDDEEFF")!
        let b = UUID(uuidString: "FFEEDDCC-BBAA-9988-7766-554433221100")!
        #expect(EventIDDigest.of([a]) == 0xD77C_5732_3B0F_7A00)
        #expect(EventIDDigest.of([a, b]) == 0x8AC4_3726_A05A_FE18)
        #expect(EventIDDigest.of([b, a]) == 0x0ADB_3663_EBE3_1D9C, "the order counts")
        var random = SplitMix64(seed: 9)
        for count in 1...40 {
            let ids = (0..<count).map { _ in Self.id(&random) }
            #expect(EventIDDigest.of(ids) == documented(ids))
            // Added as stored bytes (replay) or as UUIDs (append): the same digest.
            var fromBytes = EventIDDigest()
            for id in ids { withUnsafeBytes(of: id.uuid) { fromBytes.add(bytes: $0) } }
            #expect(fromBytes.value == documented(ids))
        }
    }

    // MARK: Through the stream table's levels

    /// A multi-stream append retried while its streams' states are in the
    /// current generation, in a run, after a reopen (the state read from a
    /// run) and after the runs were merged: recognised each time from the
    /// states, nothing written.
    @Test func aMultiStreamRetryIsRecognisedThroughCheckpointsRunsMergesAndReopens() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 101)
        let orderIDs = (0..<3).map { _ in Self.id(&random) }
        let outboxID = Self.id(&random)
        // The streams interleaved, as an application might write them.
        let batch = [
            Self.event("order-7", orderIDs[0], 0), Self.event("outbox", outboxID, 0),
            Self.event("order-7", orderIDs[1], 1), Self.event("order-7", orderIDs[2], 2),
        ]
        let expecting: [String: ExpectedVersion] = ["order-7": .noStream]
        var log = try Log.open(at: dir.path, options: Self.options())
        try log.append(Self.event("outbox", Self.id(&random)))  // outbox already exists
        let original = try log.append(batch, expecting: expecting)
        #expect(!original.wasRetry && original.positions == 1..<5)
        #expect(original.versions(of: "order-7") == 0...2 && original.versions(of: "outbox") == 1...1)

        func expectRetry(_ log: Log, _ when: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let end = log.endPosition
            let retry = try log.append(batch, expecting: expecting)
            #expect(retry == AppendResult(positions: original.positions, streams: original.streams, wasRetry: true), "\(when)", sourceLocation: sourceLocation)
            #expect(log.endPosition == end, "\(when): written again", sourceLocation: sourceLocation)
            let state = try #require(try log.streams.table.state(named: "order-7"), sourceLocation: sourceLocation)
            #expect(state.lastAppendIDDigest == EventIDDigest.of(orderIDs), "\(when)", sourceLocation: sourceLocation)
            #expect(state.lastAppendRecordCount == 4, "\(when)", sourceLocation: sourceLocation)
        }
        try expectRetry(log, "in the current generation")

        // Past two checkpoints: the states are written in a run and, unchanged
        // for a whole generation, no longer inherited: they leave memory.
        try Self.fill(log, batches: 80, random: &random)
        log.batches.segments.waitForIndexWrites()
        try Self.fill(log, batches: 1, random: &random)
        #expect(!Fixtures.inCurrentGeneration(log, "order-7") && !Fixtures.inCurrentGeneration(log, "outbox"))
        let firstRun = try #require(Fixtures.streamTableRunNames(dir).first)
        try expectRetry(log, "in a run")
        // Past many more: runs merge in the background.
        try Self.fill(log, batches: 200, random: &random)
        try log.close()

        log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.streams.table.count == 0, "every state on disk")
        try expectRetry(log, "after a reopen")
        try log.close()

        // Every run merged into one (as the background merge does, if it
        // did not already), then reopened: the first run is gone, its rows merged.
        let directory = DirectoryOperations(path: dir.path, faults: nil)
        let chain = StreamTableRunChain.select(in: directory, end: .max)
        let last = try #require(chain.last)
        let mergedName = FileNames.streamTableRun(from: 0, to: last.to)
        let merged = chain.count == 1 ? last : try StreamTableRunMerge.merge(chain, into: mergedName, in: directory)
        for run in chain where run.path != merged.path { try directory.remove(FileNames.streamTableRun(from: run.from, to: run.to)) }
        #expect(Fixtures.streamTableRunNames(dir) == [mergedName] && mergedName != firstRun, "\(Fixtures.streamTableRunNames(dir)) \(chain.map(\.path)) \(firstRun)")
        let row = try #require(try merged.lookup(hash: StreamHash.hash("outbox"), name: "outbox"))
        #expect(row.lastAppendIDDigest == EventIDDigest.of([outboxID]) && row.lastAppendRecordCount == 4 && row.lastAppendBatch == 1)

        log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.recovery.replayedRecords == 0 && log.streams.table.count == 0)
        try expectRetry(log, "after a merge and a reopen")

        // Repeating one stream's part alone, or the batch with another id: refused, nothing written.
        let end = log.endPosition
        let orderAlone = batch.filter { $0.stream == "order-7" }
        #expect(Self.isConflict(Self.thrown { try log.append(orderAlone, expecting: expecting) }, saying: "multi-stream"))
        var changed = batch
        changed[1] = Self.event("outbox", Self.id(&random), 0)
        #expect(Self.isConflict(Self.thrown { try log.append(changed, expecting: expecting) }, saying: "multi-stream"))
        var partial = batch
        partial[3] = Self.event("order-7", Self.id(&random), 2)
        #expect(Self.isConflict(Self.thrown { try log.append(partial, expecting: expecting) }, saying: "multi-stream"))
        #expect(log.endPosition == end)
        // Another expectation is not a retry of it: the stream exists.
        guard case .wrongExpectedVersion? = Self.thrown({ try log.append(batch, expecting: ["order-7": .exact(0)]) }) else {
            Issue.record("a retry with another expectation was not a version conflict")
            return
        }
        try log.close()
        let report = try Log.verify(at: dir.path)
        #expect(report.isSound, "\(report.problems)")
    }

    /// After a crash the states are rebuilt by replaying the log (§14.3):
    /// the replay sets the id digest and record count as the append did, so
    /// a retry is recognised; a stream whose last append had an event
    /// without an id keeps digest 0 with its record count known. In an
    /// encrypted log too, where the ids are sealed in the metadata: the
    /// writer's replay opens the sealed batches.
    @Test(arguments: [false, true]) func theReplayAfterACrashKeepsWhatARetryNeeds(encrypted: Bool) throws {
        let dir = TemporaryDirectory()
        func options() -> LogOptions {
            var options = Self.options()
            if encrypted { options.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: [UInt8](repeating: 9, count: 32)), scope: .stream) }
            return options
        }
        var random = SplitMix64(seed: 505)
        let ids = (0..<3).map { _ in Self.id(&random) }
        let batch = [Self.event("cart-1", ids[0], 0), Self.event("cart-2", ids[1], 0), Self.event("cart-1", ids[2], 1)]
        let mixed = [Self.event("mixed", Self.id(&random), 0), Self.event("mixed", nil, 1)]
        var digests: [String: UInt64] = [:]
        let original: AppendResult
        do {
            let log = try Log.open(at: dir.path, options: options())
            try Self.fill(log, batches: 3, random: &random)
            original = try log.append(batch, expecting: ["cart-1": .noStream, "cart-2": .noStream])
            try log.append(mixed, expecting: ["mixed": .noStream])
            for name in ["cart-1", "cart-2", "mixed"] { digests[name] = try log.streams.table.state(named: name)?.lastAppendIDDigest }
            #expect(digests == ["cart-1": EventIDDigest.of([ids[0], ids[2]]), "cart-2": EventIDDigest.of([ids[1]]), "mixed": 0])
            try log.sync()  // released without close: a crash
        }
        let log = try Log.open(at: dir.path, options: options())
        #expect(log.recovery.replayedRecords >= 35, "the states come from the replay")
        for name in ["cart-1", "cart-2", "mixed"] {
            let state = try #require(try log.streams.table.state(named: name))
            #expect(state.lastAppendIDDigest == digests[name], "\(name)")
            #expect(state.lastAppendRecordCount == UInt32(name == "mixed" ? 2 : 3), "\(name)")
        }
        let end = log.endPosition
        let retry = try log.append(batch, expecting: ["cart-1": .noStream, "cart-2": .noStream])
        #expect(retry == AppendResult(positions: original.positions, streams: original.streams, wasRetry: true))
        // The mixed stream's last append had no id for its second event: repeating its first id is a partial repeat.
        let error = Self.thrown { try log.append([mixed[0], Self.event("mixed", Self.id(&random), 1)], expecting: ["mixed": .noStream]) }
        #expect(Self.isConflict(error, stream: "mixed", saying: "some, but not all"), "\(String(describing: error))")
        #expect(log.endPosition == end)
        try log.close()
    }

    /// A partial repeat of a single-stream append is refused while the
    /// original batch is in the log, whether the state is in memory or read
    /// from a run; a new append of as many events is written.
    @Test func aPartialRepeatIsRefusedWhileTheOriginalIsReadable() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 202)
        let ids = (0..<4).map { _ in Self.id(&random) }
        let events = ids.enumerated().map { Self.event("s", $0.element, $0.offset) }
        var log = try Log.open(at: dir.path, options: Self.options())
        let original = try log.append(events, expecting: ["s": .any])
        for round in 0..<2 {
            let new = (0..<4).map { Self.event("s", Self.id(&random), $0) }
            let partials = [
                Array(events.prefix(3)) + [new[3]],  // the last one changed
                [new[0], new[1], new[2], events[3]],  // only the last one kept
                [new[0], new[1], new[2], events[0]],  // one kept, in another place
                [events[1], events[0], events[2], events[3]],  // all of them, in another order
            ]
            for (i, partial) in partials.enumerated() {
                let error = Self.thrown { try log.append(partial, expecting: ["s": .any]) }
                #expect(Self.isConflict(error, stream: "s", saying: "some, but not all"), "round \(round), \(i): \(String(describing: error))")
            }
            #expect(log.endPosition == 4)
            #expect(try log.append(events, expecting: ["s": .any]) == AppendResult(positions: original.positions, streams: original.streams, wasRetry: true))
            try log.close()
            log = try Log.open(at: dir.path, options: Self.options())
            #expect(log.streams.table.count == 0)
        }
        let next = try log.append((0..<4).map { Self.event("s", Self.id(&random), 4 + $0) }, expecting: ["s": .any])
        #expect(!next.wasRetry && next.positions == 4..<8 && next.versions(of: "s") == 4...7)
        try log.close()
    }

    // MARK: Retention

    /// Retention removed the original batch's segment: a retry is still
    /// recognised (from the state, with `.any`), and the log does not grow;
    /// also after a reopen, when the state comes from a run. An append of
    /// other ids is a new append.
    @Test func aRetryIsRecognisedAfterRetentionRemovedTheOriginal() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 303)
        let options = Self.options(segmentBytes: 4096, checkpointBytes: 4096)
        let ids = (0..<3).map { _ in Self.id(&random) }
        let events = ids.enumerated().map { Self.event("payment-1", $0.element, $0.offset) }
        var log = try Log.open(at: dir.path, options: options)
        try Self.fill(log, batches: 2, random: &random)
        let original = try log.append(events, expecting: ["payment-1": .any])
        try Self.fill(log, batches: 60, random: &random)
        try log.updateSettings(LogSettings(retainBytes: 4 * 4096))
        let compacted = try log.compact()
        #expect(compacted.startPosition > original.positions.upperBound, "the original batch must be gone")
        #expect(throws: EventLogError.positionRemoved(position: original.positions.lowerBound, start: log.startPosition)) {
            try log.event(at: original.positions.lowerBound)
        }

        for round in 0..<2 {
            let end = log.endPosition
            let files = Fixtures.segments(dir)
            let dataEnd = log.batches.snapshot().active?.dataEnd
            let retry = try log.append(events, expecting: ["payment-1": .any])
            #expect(retry == AppendResult(positions: original.positions, streams: original.streams, wasRetry: true), "round \(round)")
            #expect(log.endPosition == end, "round \(round): the retry was written again")
            #expect(Fixtures.segments(dir) == files && log.batches.snapshot().active?.dataEnd == dataEnd)
            #expect(try log.streamInfo("payment-1")?.currentVersion == 2)
            try log.close()
            log = try Log.open(at: dir.path, options: options)
            #expect(log.streams.table.count == 0, "the state comes from a run")
        }
        // Other ids, as many events: not a retry (the original cannot be read to look for a partial repeat).
        let next = try log.append((0..<3).map { Self.event("payment-1", Self.id(&random), 3 + $0) }, expecting: ["payment-1": .any])
        #expect(!next.wasRetry && next.versions(of: "payment-1") == 3...5)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    // MARK: Version 2 runs

    /// Replaces every run of the (closed) log in `dir` by its version 2
    /// form, as a build before format version 4 wrote it.
    static func downgradeRuns(_ dir: TemporaryDirectory) throws {
        let names = Fixtures.streamTableRunNames(dir)
        try #require(!names.isEmpty)
        for name in names {
            Damage.write(dir.sub(name), StreamTableRunTests.version2(of: Damage.read(dir.sub(name))))
            #expect(StreamTableRunView.open(path: dir.sub(name), faults: nil)?.version == 2)
        }
    }

    /// States read from version 2 runs do not know their last append's ids:
    /// a retry is recognised by reading the original batch while it is in
    /// the log; once retention removed it, an append that may be a retry is
    /// refused (not written twice), and one with an exact expectation is
    /// written. The next checkpoint writes version 3, and a merge re-encodes
    /// the version 2 rows.
    @Test func statesFromVersion2RunsFallBackToTheLog() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 404)
        let options = Self.options(segmentBytes: 4096, checkpointBytes: 4096)
        let ids = (0..<2).map { _ in Self.id(&random) }
        let events = ids.enumerated().map { Self.event("invoice-9", $0.element, $0.offset) }
        let others = [Self.event("invoice-9-lines", Self.id(&random))]
        var log = try Log.open(at: dir.path, options: options)
        let original = try log.append(events + others, expecting: ["invoice-9": .noStream])
        try log.close()
        try Self.downgradeRuns(dir)

        log = try Log.open(at: dir.path, options: options)
        #expect(log.recovery.replayedRecords == 0, "the version 2 runs are the chain")
        let state = try #require(try log.streams.table.state(named: "invoice-9"))
        #expect(state.lastAppendIDDigest == 0 && state.lastAppendRecordCount == 0 && state.lastAppendBatch == 0)
        let retried = events + others
        #expect(try log.append(retried, expecting: ["invoice-9": .noStream]) == AppendResult(
            positions: original.positions, streams: original.streams, wasRetry: true))
        var partial = retried
        partial[1] = Self.event("invoice-9", Self.id(&random), 1)
        #expect(Self.isConflict(Self.thrown { try log.append(partial, expecting: ["invoice-9": .noStream]) }, saying: "some, but not all"))
        #expect(log.endPosition == 3)

        // Retention removes the original batch; the states stay as the version 2 runs have them.
        try Self.fill(log, batches: 60, random: &random)
        try log.updateSettings(LogSettings(retainBytes: 4 * 4096))
        #expect(try log.compact().startPosition > 3)
        try log.close()
        log = try Log.open(at: dir.path, options: options)
        #expect(try log.streams.table.state(named: "invoice-9")?.lastAppendRecordCount == 0)
        let end = log.endPosition
        for attempt in [retried, (0..<2).map { Self.event("invoice-9", Self.id(&random), $0) } + others] {
            let error = Self.thrown { try log.append(attempt, expecting: ["invoice-9": .any]) }
            #expect(Self.isConflict(error, stream: "invoice-9", saying: "removed"), "\(String(describing: error))")
        }
        #expect(log.endPosition == end, "nothing written")
        // An exact expectation tells a new append apart.
        let nextIDs = (0..<2).map { _ in Self.id(&random) }
        let next = try log.append(nextIDs.enumerated().map { Self.event("invoice-9", $0.element, 2 + $0.offset) }, expecting: ["invoice-9": .exact(1)])
        #expect(!next.wasRetry && next.versions(of: "invoice-9") == 2...3)
        try log.close()

        // Runs written since are of the current version (background merges
        // may have taken the version 2 ones in already); merged into one, all
        // are, the rows of version 2 runs re-encoded with their digests still unknown.
        let directory = DirectoryOperations(path: dir.path, faults: nil)
        let chain = StreamTableRunChain.select(in: directory, end: .max)
        #expect(chain.last?.version == StreamTableRun.version && chain.allSatisfy { $0.version == 2 || $0.version == StreamTableRun.version })
        let last = try #require(chain.last)
        let merged = chain.count == 1 ? last : try StreamTableRunMerge.merge(chain, into: FileNames.streamTableRun(from: 0, to: last.to), in: directory)
        #expect(merged.version == StreamTableRun.version && merged.verify() == nil)
        let lines = try #require(try merged.lookup(hash: StreamHash.hash("invoice-9-lines"), name: "invoice-9-lines"))
        #expect(lines.lastAppendBatch == 0 && lines.lastAppendRecordCount == 0 && lines.lastAppendIDDigest == 0, "re-encoded, still unknown")
        let invoice = try #require(try merged.lookup(hash: StreamHash.hash("invoice-9"), name: "invoice-9"))
        #expect(invoice.lastAppendRecordCount == 2 && invoice.lastAppendIDDigest == EventIDDigest.of(nextIDs))
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
