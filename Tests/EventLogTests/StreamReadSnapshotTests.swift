import Foundation
import Testing
@testable import EventLog

/// A stream read works on the snapshot it took: entries of batches the
/// snapshot does not show are left out, also when the writer sealed the
/// segment since and its stream index is now the segment's index file
/// (found by the concurrent-load test: `corruption … no batch holds
/// position` from a reader whose snapshot held the segment while it was active).
@Suite struct StreamReadSnapshotTests {
    @Test func aSnapshotOfTheActiveSegmentReadsOnlyWhatItShowsAfterTheSegmentIsSealed() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(segmentBytes: 64 << 10, durability: .none))
        defer { try? log.close() }
        func event(_ i: Int) -> NewEvent { NewEvent(stream: "ledger", type: "Entry", data: Array("entry \(i)".utf8)) }
        for i in 0..<3 { try log.append([event(i)]) }
        let early = log.batches.snapshot()
        #expect(early.sealed.isEmpty)
        // More of the stream, then enough of others to roll: the segment the snapshot
        // holds as active is sealed, and its stream index file written.
        for i in 3..<6 { try log.append([event(i)]) }
        let filler = NewEvent(stream: "filler", type: "Pad", data: Array(repeating: 7, count: 4096))
        while log.batches.snapshot().sealed.isEmpty { try log.append([filler]) }
        log.batches.segments.waitForIndexWrites()
        let first = try #require(log.batches.snapshot().sealed.first)
        guard case .file? = log.streams.index.index(of: first) else {
            Issue.record("the sealed segment's stream index is not its file yet")
            return
        }
        let state = try #require(try log.streams.table.state(named: "ledger"))
        var reader = LogReader(snapshot: early)
        var versions: [UInt64] = []
        let count = try reader.readStream(state, index: log.streams.index, from: 0, maxCount: .max, direction: .forward) { view in
            versions.append(view.version)
        }
        #expect(count == 3)
        #expect(versions == [0, 1, 2])
    }
}
