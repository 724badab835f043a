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

    @Test(arguments: ["streams.table", ".streamindex", "both", "zeroed"])
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
            case "streams.table" where name == "streams.table": Damage.remove(path)
            case ".streamindex" where name.hasSuffix(".streamindex"): Damage.remove(path)
            case "both" where name == "streams.table" || name.hasSuffix(".streamindex"): Damage.remove(path)
            case "zeroed" where name == "streams.table" || name.hasSuffix(".streamindex"):
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
            log.indexWriter.sync {}
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
}
