import Foundation
import Testing
@testable import EventLog

@Suite struct RoundTripTests {
    static func sampleEvents(count: Int, seed: UInt64) -> [NewEvent] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let stream = "order-\(rng.next() % 50)"
            let size = Int(rng.next() % 300)
            var data = [UInt8](repeating: 0, count: size)
            for j in 0..<size { data[j] = UInt8(truncatingIfNeeded: rng.next() % 7 + UInt64(j % 5)) }
            var metadata = EventMetadata()
            if i % 3 == 0 {
                metadata = EventMetadata(
                    eventID: UUID(), schemaVersion: UInt32(i % 4), contentType: "application/json",
                    correlationID: "corr-\(i)", causationID: "cause-\(i)",
                    headers: [.init("tenant", "acme"), .init("trace", "t\(i)")])
            }
            return NewEvent(
                stream: stream, type: i % 2 == 0 ? "OrderPlaced" : "ItemAdded", data: data, metadata: metadata,
                timestamp: 1_700_000_000_000_000 + Int64(i) * 1000 + Int64(rng.next() % 500))
        }
    }

    /// The version each event gets: the number of earlier events of its stream (in `all`, from the start).
    static func expectedVersions(_ all: [NewEvent]) -> [UInt64] {
        var counts: [String: UInt64] = [:]
        return all.map { e in
            defer { counts[e.stream, default: 0] += 1 }
            return counts[e.stream, default: 0]
        }
    }

    static func check(_ read: [Event], equal written: [NewEvent], from start: UInt64 = 0, versions: [UInt64]? = nil) {
        #expect(read.count == written.count)
        let versions = versions ?? expectedVersions(written)
        for (i, (r, w)) in zip(read, written).enumerated() {
            #expect(r.position == start + UInt64(i))
            #expect(r.stream == w.stream)
            #expect(r.type == w.type)
            #expect(r.data == w.data)
            #expect(r.metadata == w.metadata)
            #expect(r.version == versions[i])
            #expect(r.timestamp == w.timestamp)
        }
    }

    @Test(arguments: Compression.allCases)
    func roundTripEveryField(compression: Compression) throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none, compression: compression)
        options.segmentBytes = 64 << 10
        let events = Self.sampleEvents(count: 2000, seed: 7)
        do {
            let log = try Log.open(at: dir.path, options: options)
            var i = 0
            while i < events.count {
                let n = min(1 + i % 37, events.count - i)
                let range = try log.append(Array(events[i..<(i + n)]))
                #expect(range == UInt64(i)..<UInt64(i + n))
                i += n
            }
            Self.check(try log.events(from: 0), equal: events)
            for p in stride(from: 0, to: 2000, by: 13) {
                let e = try log.event(at: UInt64(p))
                #expect(e.data == events[p].data)
                #expect(e.stream == events[p].stream)
            }
            try log.close()
        }
        let reopened = try Log.open(at: dir.path, options: options)
        #expect(reopened.recovery.previousShutdown != .unclean)
        #expect(reopened.endPosition == 2000)
        Self.check(try reopened.events(from: 0), equal: events)
        Self.check(
            try reopened.events(from: 1234, maxCount: 10), equal: Array(events[1234..<1244]), from: 1234,
            versions: Array(Self.expectedVersions(events)[1234..<1244]))
        let segments = dir.files().filter { $0.hasSuffix(".segment") }
        #expect(segments.count > 3)
        try reopened.close()
    }

    @Test func timestampLookup() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        let events = (0..<5000).map { i in
            NewEvent(stream: "s", type: "t", data: [UInt8(i & 0xFF)], timestamp: 1_000_000 + Int64(i) * 10)
        }
        for chunk in stride(from: 0, to: 5000, by: 100) { try log.append(Array(events[chunk..<(chunk + 100)])) }
        #expect(try log.position(atOrAfter: 0) == 0)
        #expect(try log.position(atOrAfter: 1_000_000) == 0)
        #expect(try log.position(atOrAfter: 1_000_001) == 1)
        #expect(try log.position(atOrAfter: 1_000_000 + 12_345) == 1235)
        #expect(try log.position(atOrAfter: 1_000_000 + 49_990) == 4999)
        #expect(try log.position(atOrAfter: 1_000_000 + 49_991) == 5000)
        try log.close()
    }

    /// Regression: a read cut short by `maxCount` near the end of a segment
    /// returned the next segment's base, so reading on in chunks skipped the
    /// rest of the segment.
    @Test(arguments: [1, 7, 100, 4096])
    func readingInChunksAcrossSegmentsSkipsNothing(chunk: Int) throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.segmentBytes = 8 << 10
        let log = try Log.open(at: dir.path, options: options)
        try Fixtures.append(log, 0..<3000, batch: 9, size: 50)
        #expect(Fixtures.segments(dir).count > 5)
        var seen: [UInt64] = []
        var next: UInt64 = 0
        while next < log.endPosition {
            next = try log.read(from: next, maxCount: chunk) { seen.append($0.position) }
        }
        let complete = seen == (0..<UInt64(3000)).map { $0 }
        #expect(seen.count == 3000)
        #expect(complete)
        try log.close()
    }
}
