import Foundation
import Testing
@_spi(EventLogTool) @testable import EventLog

/// Stream limits (`StreamLimits`, Format.md §13.1 `$limits`, §4.1): a max
/// count and a max age hide events from stream reads at once; scavenging
/// removes them from disk, except each stream's last event; the limits
/// live in the stream table (runs, reopens) and versions go on.
@Suite struct StreamLimitsTests {
    static let now = Timestamp(Date().timeIntervalSince1970 * 1_000_000)
    static let twoHoursAgo = now - 7_200_000_000

    static func event(_ stream: String, _ i: Int, timestamp: Timestamp? = nil) -> NewEvent {
        var event = NewEvent(stream: stream, type: "Placed", data: Array("\(stream) event \(i) ".utf8) + Array(repeating: UInt8(i % 251), count: 150))
        event.timestamp = timestamp
        return event
    }

    /// Events of `stream` (one per batch, so that they spread over many
    /// small segments), then 40 events of a filler stream to seal the
    /// segments they are in.
    static func append(_ log: Log, _ stream: String, count: Int, timestamp: (Int) -> Timestamp? = { _ in nil }) throws {
        for i in 0..<count { try log.append([event(stream, i, timestamp: timestamp(i))]) }
    }

    static func seal(_ log: Log) throws {
        for i in 0..<40 { try log.append([event("filler", i)]) }
    }

    static func positions(of stream: String, in log: Log) throws -> [UInt64] {
        try log.events(from: 0).filter { $0.stream == stream && !$0.type.hasPrefix("$") }.map(\.version)
    }

    @Test func aMaxCountHidesTheOlderVersionsAndCompactionRemovesThem() throws {
        let dir = TemporaryDirectory()
        var log = try Log.open(at: dir.path, options: RetentionTests.options())
        try Self.append(log, "order-1", count: 10)
        let marker = try log.setStreamLimits("order-1", StreamLimits(maxCount: 3))
        #expect(marker == 10)
        try Self.seal(log)
        #expect(try log.events(inStream: "order-1").map(\.version) == [7, 8, 9])
        #expect(try log.events(inStream: "order-1", direction: .backward).map(\.version) == [9, 8, 7])
        var info = try #require(try log.streamInfo("order-1"))
        #expect(info.count == 3 && info.currentVersion == 9 && info.firstPosition == 7 && info.limits == StreamLimits(maxCount: 3))
        // The whole log still holds them until compaction.
        #expect(try Self.positions(of: "order-1", in: log) == Array(0...9))

        // From the stream table runs, after a clean reopen.
        try log.close()
        log = try Log.open(at: dir.path, options: RetentionTests.options())
        #expect(try log.streamInfo("order-1")?.limits == StreamLimits(maxCount: 3))
        let result = try log.compact()
        #expect(result.eventsScavenged == 7)
        #expect(try Self.positions(of: "order-1", in: log) == [7, 8, 9])
        #expect(try log.events(inStream: "order-1").map(\.version) == [7, 8, 9])

        // Versions go on; the window moves with them.
        _ = try log.append([Self.event("order-1", 10)], expecting: ["order-1": .exact(9)])
        #expect(try log.events(inStream: "order-1").map(\.version) == [8, 9, 10])
        info = try #require(try log.streamInfo("order-1"))
        #expect(info.count == 3 && info.currentVersion == 10)
        // Raising the limit shows what is still on disk, no more.
        try log.setStreamLimits("order-1", StreamLimits(maxCount: 100))
        #expect(try log.events(inStream: "order-1").map(\.version) == [7, 8, 9, 10])
        try log.setStreamLimits("order-1", StreamLimits())
        #expect(try log.streamInfo("order-1")?.limits == StreamLimits())
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func aMaxAgeHidesOldEventsAndCompactionKeepsTheLastOne() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: RetentionTests.options())
        // order-1: five events two hours old, then two of now; order-2: four old ones.
        try Self.append(log, "order-1", count: 7) { $0 < 5 ? Self.twoHoursAgo : nil }
        try Self.append(log, "order-2", count: 4) { _ in Self.twoHoursAgo }
        for stream in ["order-1", "order-2"] { try log.setStreamLimits(stream, StreamLimits(maxAge: .seconds(3600))) }
        try Self.seal(log)
        #expect(try log.events(inStream: "order-1").map(\.version) == [5, 6])
        #expect(try log.events(inStream: "order-2").isEmpty, "every event is older than the max age")
        #expect(try log.streamInfo("order-1")?.count == 2)
        #expect(try log.streamInfo("order-2")?.count == 0 && log.streamInfo("order-2")?.currentVersion == 3)

        let result = try log.compact()
        #expect(result.eventsScavenged == 5 + 3)
        #expect(try Self.positions(of: "order-1", in: log) == [5, 6])
        #expect(try Self.positions(of: "order-2", in: log) == [3], "the last event keeps the stream's version")
        _ = try log.append([Self.event("order-2", 4)], expecting: ["order-2": .exact(3)])
        #expect(try log.events(inStream: "order-2").map(\.version) == [4])
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    @Test func limitsAreCheckedAndAHardDeletedStreamRefusesThem() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: RetentionTests.options())
        try Self.append(log, "order-1", count: 2)
        for bad in [StreamLimits(maxCount: 0), StreamLimits(maxAge: .zero), StreamLimits(maxAge: .seconds(-5))] {
            #expect(throws: EventLogError.self) { try log.setStreamLimits("order-1", bad) }
        }
        #expect(log.endPosition == 2, "nothing written")
        try log.deleteStream("order-1", hard: true)
        do {
            try log.setStreamLimits("order-1", StreamLimits(maxCount: 1))
            Issue.record("limits were set on a hard-deleted stream")
        } catch let error as EventLogError {
            guard case .streamDeleted = error else { Issue.record("\(error)"); return }
        }
        // A stream that does not exist yet gets them for its events to come.
        try log.setStreamLimits("order-2", StreamLimits(maxCount: 1))
        try Self.append(log, "order-2", count: 3)
        #expect(try log.events(inStream: "order-2").map(\.version) == [2])
        try log.close()
    }

    @Test func theMarkerIsTwoVarintsAndADamagedOneIsCorruption() throws {
        let marker = StreamMarker.limits(maxAgeMicroseconds: 3_600_000_000, maxCount: 300)
        #expect(marker.type == "$limits")
        #expect(marker.data == [0x80, 0xC8, 0xCE, 0xB4, 0x0D, 0xAC, 0x02])  // LEB128 of 3,600,000,000 and of 300
        let decoded = marker.data.withUnsafeBytes { data in
            Array("$limits".utf8).withUnsafeBytes { StreamMarker(type: $0, data: data) }
        }
        #expect(decoded == marker)
        for damaged: [UInt8] in [[], [0x01], [0x01, 0x02, 0x03], [0x80, 0x80]] {
            let refused = damaged.withUnsafeBytes { data in
                Array("$limits".utf8).withUnsafeBytes { StreamMarker(type: $0, data: data) }
            }
            #expect(refused == nil, "\(damaged)")
        }
    }
}
