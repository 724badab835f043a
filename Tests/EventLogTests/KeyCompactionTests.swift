import Foundation
import Testing
@testable import EventLog

/// Key compaction (Format.md §4.1, §6): events carry an explicit key or
/// their stream's name; with `LogSettings.keyCompaction` on, a compaction
/// keeps only each key's latest event in the sealed segments, a tombstone
/// removes its key's earlier events and goes itself after the tombstone
/// retention; a stream's last event and markers always stay.
@Suite struct KeyCompactionTests {
    static let now = Timestamp(Date().timeIntervalSince1970 * 1_000_000)

    static func options() -> LogOptions { RetentionTests.options() }

    /// `count` events of `stream`, keys `key-0` ... `key-(keys - 1)` in turn, one per batch.
    static func appendKeyed(_ log: Log, stream: String, count: Int, keys: Int, timestamp: Timestamp? = nil) throws {
        for i in 0..<count {
            try log.append([NewEvent(
                stream: stream, type: "Set", data: Array("value \(i) ".utf8) + Array(repeating: 7, count: 120), timestamp: timestamp,
                key: "key-\(i % keys)")])
        }
    }

    static func seal(_ log: Log) throws {
        for i in 0..<40 { try log.append([NewEvent(stream: "filler-\(i)", type: "Fill", data: Array(repeating: 1, count: 150))]) }
    }

    @Test func keysAndTombstonesRoundTripThroughEveryRead() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        try log.append([
            NewEvent(stream: "users", type: "Set", data: [1], key: "user-1"),
            NewEvent(stream: "users", type: "Unset", data: [], key: "user-1", isTombstone: true),
            NewEvent(stream: "users", type: "Plain", data: [2]),
        ])
        let events = try log.events(from: 0)
        #expect(events.map(\.key) == ["user-1", "user-1", nil])
        #expect(events.map(\.isTombstone) == [false, true, false])
        #expect(try log.event(at: 1).isTombstone && log.event(at: 1).key == "user-1")
        #expect(try log.events(inStream: "users").map(\.key) == ["user-1", "user-1", nil])
        for bad in [NewEvent(stream: "users", type: "Set", data: [], key: ""), NewEvent(stream: "users", type: "Set", data: [], key: String(repeating: "k", count: 256))] {
            #expect(throws: EventLogError.self) { try log.append([bad]) }
        }
        #expect(log.endPosition == 3, "nothing written")
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func onlyTheLatestEventOfEachKeySurvivesInSealedSegments() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        try Self.appendKeyed(log, stream: "users", count: 60, keys: 6)
        // Keys are the log's, not a stream's: another stream's event of key-5 supersedes users' last key-5.
        try log.append([NewEvent(stream: "other", type: "Set", data: [5], key: "key-5")])
        // Without a key, the stream name is the key: only the latest stays.
        for i in 0..<20 { try log.append([NewEvent(stream: "plain", type: "Set", data: [UInt8(i)])]) }
        try Self.seal(log)
        // Off: nothing goes.
        #expect(try log.compact().eventsScavenged == 0)
        try log.updateSettings(LogSettings(keyCompaction: true))
        let result = try log.compact()
        let left = try log.events(from: 0).filter { $0.stream == "users" }
        // key-5's latest is other's; users' last event (59, key-5) stays: it keeps the stream's version.
        #expect(left.map(\.version) == Array(54...59), "the latest of each of keys 0-4, and the stream's last")
        #expect(Set(left.compactMap(\.key)) == Set((0..<6).map { "key-\($0)" }))
        #expect(try log.events(inStream: "plain").map(\.version) == [19])
        #expect(try log.events(inStream: "other").count == 1)
        #expect(result.eventsScavenged == 54 + 19)
        // Versions go on.
        _ = try log.append([NewEvent(stream: "users", type: "Set", data: [], key: "key-0")], expecting: ["users": .exact(59)])
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// A key map smaller than the log's keys (`LogOptions.keyMapMemoryBytes`,
    /// here the test's limit of 4 keys): a pass compacts the keys that fit,
    /// the next one goes on where its window ended, and together they leave
    /// what one pass with room for every key leaves.
    @Test func aKeyMapTooSmallForEveryKeyCompactsWindowByWindow() throws {
        func build(_ dir: TemporaryDirectory, keyLimit: Int?) throws -> Log {
            var options = Self.options()
            options.keyMapKeyLimit = keyLimit
            let log = try Log.open(at: dir.path, options: options)
            try Self.appendKeyed(log, stream: "users", count: 96, keys: 8)
            try Self.seal(log)
            try log.updateSettings(LogSettings(keyCompaction: true))
            return log
        }
        let roomy = TemporaryDirectory()
        let all = try build(roomy, keyLimit: nil)
        let once = try all.compact().eventsScavenged
        let expected = try all.events(from: 0).map(\.position)
        try all.close()
        #expect(once == 96 - 8, "every key's latest stays")

        let tight = TemporaryDirectory()
        let log = try build(tight, keyLimit: 4)
        var passes: [UInt64] = []
        for _ in 0..<6 {
            passes.append(try log.compact().eventsScavenged)
            if try log.events(from: 0).map(\.position) == expected { break }
        }
        #expect(try log.events(from: 0).map(\.position) == expected, "passes removed \(passes)")
        #expect(passes.count >= 2 && passes[0] > 0 && passes[0] < once, "the first pass maps only 4 of the 8 keys: \(passes)")
        try log.close()
        #expect(try Log.verify(at: tight.path).isSound)
    }

    @Test func aTombstoneRemovesItsKeyThenGoesAfterItsRetention() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: Self.options())
        let twoHoursAgo = Self.now - 7_200_000_000
        try Self.appendKeyed(log, stream: "users", count: 12, keys: 3, timestamp: twoHoursAgo)
        // key-1's tombstone (old), then one more event of key-0 so the tombstone is not the stream's last.
        try log.append([NewEvent(stream: "users", type: "Unset", data: [], timestamp: twoHoursAgo, key: "key-1", isTombstone: true)])
        try log.append([NewEvent(stream: "users", type: "Set", data: [9], timestamp: twoHoursAgo, key: "key-0")])
        try Self.seal(log)
        // A retention of 3 hours: key-1's events go, its tombstone stays.
        try log.updateSettings(LogSettings(keyCompaction: true, tombstoneRetention: .seconds(3 * 3600)))
        _ = try log.compact()
        var left = try log.events(from: 0).filter { $0.stream == "users" }
        #expect(left.map(\.version) == [11, 12, 13], "key-2's latest (11), key-1's tombstone (12), key-0's latest (13)")
        #expect(left.map(\.isTombstone) == [false, true, false])
        // A retention of 1 hour: the tombstone is older, so it goes too.
        try log.updateSettings(LogSettings(keyCompaction: true, tombstoneRetention: .seconds(3600)))
        _ = try log.compact()
        left = try log.events(from: 0).filter { $0.stream == "users" }
        #expect(left.map(\.version) == [11, 13])
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func theSettingsFileKeepsKeyCompactionAndReadsOlderVersions() throws {
        let settings = LogSettings(retainCursors: ["relay"], keyCompaction: true, tombstoneRetention: .seconds(7 * 86_400))
        var bytes = LogSettingsFile.encode(settings)
        #expect(bytes[34] == 1 && bytes[35] == 0)
        #expect(bytes.withUnsafeBytes { $0.loadLE(at: 36, as: UInt32.self) } == 604_800)
        #expect(try LogSettingsFile.decode(bytes, file: "eventlog.settings") == settings)
        // Version 4: bytes 34-39 reserved; read as no key compaction, a day's retention.
        bytes[8] = 4
        bytes[34] = 0
        for i in 36..<40 { bytes[i] = 0 }
        let crc = CRC32C.checksum(Array(bytes[0..<(bytes.count - 4)]))
        bytes.replaceSubrange((bytes.count - 4)..., with: withUnsafeBytes(of: crc.littleEndian) { Array($0) })
        #expect(try LogSettingsFile.decode(bytes, file: "eventlog.settings") == LogSettings(retainCursors: ["relay"]))
        // A version 4 file with a byte set there is damaged.
        bytes[36] = 1
        let crc2 = CRC32C.checksum(Array(bytes[0..<(bytes.count - 4)]))
        bytes.replaceSubrange((bytes.count - 4)..., with: withUnsafeBytes(of: crc2.littleEndian) { Array($0) })
        #expect(throws: EventLogError.self) { try LogSettingsFile.decode(bytes, file: "eventlog.settings") }
        #expect(throws: EventLogError.self) { try LogSettings(tombstoneRetention: .milliseconds(1500)).validate() }
    }
}
