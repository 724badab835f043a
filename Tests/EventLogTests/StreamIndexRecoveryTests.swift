import Foundation
import Testing
@testable import EventLog

/// The stream index is derived data: lost or damaged, it is rebuilt; after a
/// crash only the tail is replayed.
@Suite struct StreamIndexRecoveryTests {
    static func options() -> LogOptions {
        var options = LogOptions(durability: .none)
        options.segmentBytes = 16 << 10
        options.checkpointBytes = 8 << 10
        return options
    }

    static func fill(_ log: Log, count: Int) throws {
        for i in stride(from: 0, to: count, by: 5) {
            try log.append((i..<(i + 5)).map { NewEvent(stream: "s-\($0 % 11)", type: "T", data: Array("\($0)".utf8)) })
        }
    }

    /// Every stream read equals the events of that stream in a full scan.
    static func expectConsistent(_ log: Log) throws {
        let all = try log.events(from: 0).filter { !$0.type.hasPrefix("$") }
        for k in 0..<11 {
            let expected = all.filter { $0.stream == "s-\(k)" }
            let read = try log.events(inStream: "s-\(k)")
            #expect(read == expected)
            #expect(read.map(\.version) == (0..<UInt64(read.count)).map { $0 })
            #expect(try log.streamInfo("s-\(k)")?.count == UInt64(expected.count))
        }
    }

    @Test(arguments: [".streamtable", ".streamindex", "both", "zeroed"])
    func lostOrDamagedStreamIndexIsRebuilt(what: String) throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            try Self.fill(log, count: 1000)
            try log.close()
        }
        for name in dir.files() {
            let path = dir.sub(name)
            switch what {
            case ".streamtable" where name.hasSuffix(".streamtable"): Damage.remove(path)
            case ".streamindex" where name.hasSuffix(".streamindex"): Damage.remove(path)
            case "both" where name.hasSuffix(".streamtable") || name.hasSuffix(".streamindex"): Damage.remove(path)
            case "zeroed" where name.hasSuffix(".streamtable") || name.hasSuffix(".streamindex"):
                Damage.write(path, [UInt8](repeating: 0, count: Damage.read(path).count))
            default: break
            }
        }
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(!log.recovery.rebuiltIndexes.isEmpty)
        try Self.expectConsistent(log)
        try Self.fill(log, count: 100)
        try Self.expectConsistent(log)
        try log.close()
    }

    @Test func afterACrashOnlyTheTailIsReplayed() throws {
        let dir = TemporaryDirectory()
        var options = Self.options()
        options.segmentBytes = 1 << 20
        do {
            let log = try Log.open(at: dir.path, options: options)
            try Self.fill(log, count: 5000)
            log.batches.segments.waitForIndexWrites()
            // A crash: no close.
        }
        let log = try Log.open(at: dir.path, options: options)
        #expect(log.recovery.previousShutdown == .unclean)
        #expect(log.recovery.replayedRecords > 0)
        #expect(log.recovery.replayedRecords < 2500, "replayed \(log.recovery.replayedRecords) of 5000 records")
        try Self.expectConsistent(log)
        try log.close()
        let clean = try Log.open(at: dir.path, options: options)
        #expect(clean.recovery.replayedRecords == 0)
        try Self.expectConsistent(clean)
        try clean.close()
    }

    /// With LZ4, tiny alike events take fewer than 10 bytes of segment each
    /// (about 9.6 here: only their checksums do not compress), so a segment
    /// holds more events than one per 10 bytes.
    /// Every one of them is still in the stream index: in memory while the
    /// log is open, in the sealed segments' `.streamindex` files, after a
    /// clean reopen (the active segment's entries from its file), and after
    /// a crash (replayed).
    @Test func tinyCompressedEventsAreAllIndexed() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.compression = .lz4
        options.segmentBytes = 655_000  // room for 65,500 events at 10 bytes each
        let names: [[UInt8]] = [Array("a".utf8), Array("b".utf8), Array("c".utf8)]
        let type: [UInt8] = Array("E".utf8)
        let data: [UInt8] = [7, 7, 7, 7]
        var counts = [0, 0, 0]
        var rng = SplitMix64(seed: 41)

        func appendBatch(_ log: Log, events: Int) throws {
            try type.withUnsafeBytes { type in
                try data.withUnsafeBytes { data in
                    _ = try log.appendBatch { batch in
                        for _ in 0..<events {
                            let k = Int(rng.next() % 3)
                            try names[k].withUnsafeBytes { name in
                                _ = try batch.append(stream: name, type: type, data: data)
                            }
                            counts[k] += 1
                        }
                    }
                }
            }
        }
        func bases() -> [UInt64] { dir.files().compactMap(FileNames.segmentBase).sorted() }
        func expectEveryStream(_ log: Log, _ when: String) throws {
            for (k, name) in ["a", "b", "c"].enumerated() {
                var versions: [UInt64] = []
                try log.readStream(name) { versions.append($0.version) }
                #expect(versions.count == counts[k], "stream \(name) \(when)")
                let inOrder = versions.elementsEqual(0..<UInt64(counts[k]))
                #expect(inOrder, "stream \(name) \(when): versions are not 0, 1, 2, …")
                #expect(try log.streamInfo(name)?.count == UInt64(counts[k]), "stream \(name) \(when)")
            }
        }

        do {
            let log = try Log.open(at: dir.path, options: options)
            // Until a segment is sealed and the active one holds more than
            // 65,536 events too.
            while bases().count < 2 || log.endPosition - (bases().last ?? 0) <= 65_536 {
                try appendBatch(log, events: 200)
            }
            let b = bases()
            for i in 0..<(b.count - 1) {
                #expect(b[i + 1] - b[i] > 65_536, "segment \(i) holds only \(b[i + 1] - b[i]) events")
            }
            try expectEveryStream(log, "while open")
            try log.close()
        }
        // Every sealed `.streamindex` file (and the active one's, written at
        // close) equals the one rebuilt from the segment's records; and every
        // stream table run is checked.
        let report = try Log.verify(at: dir.path)
        #expect(report.isSound, "\(report.problems)")
        let runs = dir.files().filter { FileNames.streamTableRunRange($0) != nil }.count
        #expect(runs >= 1)
        #expect(report.indexFiles == 3 * bases().count + runs)

        do {
            let log = try Log.open(at: dir.path, options: options)
            #expect(log.recovery.replayedRecords == 0)
            try expectEveryStream(log, "after a clean reopen")
            try appendBatch(log, events: 1_000)
            // A crash: no close. The next open loads the active segment's
            // entries from the file written at close, then replays these.
        }
        let log = try Log.open(at: dir.path, options: options)
        #expect(log.recovery.previousShutdown == .unclean)
        #expect(log.recovery.replayedRecords == 1_000)
        try expectEveryStream(log, "after a crash")
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func verifyChecksStreamIndexesAgainstTheLog() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            try Self.fill(log, count: 1000)
            try log.close()
        }
        #expect(try Log.verify(at: dir.path).isSound)
        let file = try #require(dir.files().first { $0.hasSuffix(".streamindex") })
        Damage.flipBit(dir.sub(file), at: 70)
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == dir.sub(file) })
        // The next open rebuilds it, and then all is sound again.
        let log = try Log.open(at: dir.path, options: Self.options())
        try Self.expectConsistent(log)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// Damage inside a block of a sealed segment's stream index: the open
    /// (which checks the header and fence only) keeps the file, reads of the
    /// streams with entries in that block fail naming the file and the
    /// block, and verify names it too. Once removed, the file is rebuilt.
    @Test func damageInsideASealedStreamIndexBlockFailsTheReadsThatNeedIt() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            try Self.fill(log, count: 1000)
            try log.close()
        }
        let name = try #require(dir.files().first { $0.hasSuffix(".streamindex") })
        let path = dir.sub(name)
        let block = try #require(StreamIndexView.open(path: path, faults: nil)).layout.entryBlockOffset(0)
        Damage.flipBit(path, at: block + 3)

        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(!log.recovery.rebuiltIndexes.contains(name))
        let all = try log.events(from: 0).filter { !$0.type.hasPrefix("$") }
        var failed = 0
        for k in 0..<11 {
            do {
                #expect(try log.events(inStream: "s-\(k)") == all.filter { $0.stream == "s-\(k)" })
            } catch let error as EventLogError {
                guard case .corruption(let file, let offset, _) = error else {
                    Issue.record("\(error)")
                    continue
                }
                #expect(file == path)
                #expect(offset == Int64(block))
                failed += 1
            }
        }
        #expect(failed > 0)
        try log.close()
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == path && $0.offset == Int64(block) }, "\(report.problems)")

        Damage.remove(path)
        let rebuilt = try Log.open(at: dir.path, options: Self.options())
        #expect(rebuilt.recovery.rebuiltIndexes.contains(name))
        try Self.expectConsistent(rebuilt)
        try rebuilt.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// The active segment's file is read whole at open, so checked whole:
    /// with a damaged block it is not used, and its records are replayed.
    @Test func aDamagedBlockInTheActiveSegmentsFileIsReplayedInstead() throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(at: dir.path, options: Self.options())
            try Self.fill(log, count: 1000)
            try log.close()
        }
        let name = try #require(dir.files().last { $0.hasSuffix(".streamindex") })
        let path = dir.sub(name)
        let block = try #require(StreamIndexView.open(path: path, faults: nil)).layout.entryBlockOffset(0)
        Damage.flipBit(path, at: block + 3)
        let log = try Log.open(at: dir.path, options: Self.options())
        #expect(log.recovery.replayedRecords > 0)
        try Self.expectConsistent(log)
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
