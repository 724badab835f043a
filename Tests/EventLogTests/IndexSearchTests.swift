import Testing

@testable import EventLog

/// The offset index's searches: the hinted one (`IndexBuffer.lastIndex(count:near:where:)`,
/// which point reads use) answers as the plain binary search does, for every hint, on indexes
/// with even and with wildly uneven spacing; and point reads find every event of a log whose
/// event sizes vary by three orders of magnitude (where the segment's guess is far off).
@Suite struct IndexSearchTests {
    @Test func aHintedSearchAnswersAsTheBinarySearchForEveryHint() {
        var random = SplitMix64(seed: 91)
        for round in 0..<200 {
            let count = Int(random.next() % 70)
            // Even spacing in some rounds, runs of large gaps in others.
            var values: [UInt32] = []
            var value: UInt32 = 0
            for _ in 0..<count {
                value += round % 2 == 0 ? 17 : UInt32(1 + random.next() % (random.next() % 4 == 0 ? 5000 : 3))
                values.append(value)
            }
            let buffer = IndexBuffer(values)
            let targets = [0, 1, value, value + 1] + (0..<20).map { _ in UInt32(random.next() % UInt64(value + 2)) }
            for target in targets {
                let expected = buffer.lastIndex(count: count, where: { $0 <= target })
                for hint in [-5, 0, 1, count / 2, count - 1, count, count + 9] + [Int(random.next() % UInt64(count + 1))] {
                    let found = buffer.lastIndex(count: count, near: hint, where: { $0 <= target })
                    #expect(found == expected, "count \(count), target \(target), hint \(hint)")
                }
            }
        }
    }

    @Test func pointReadsFindEveryEventWhenEventSizesVaryWidely() throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(segmentBytes: 256 << 10, durability: .none)
        options.indexInterval = 512
        let log = try Log.open(at: dir.path, options: options)
        var random = SplitMix64(seed: 5)
        var sizes: [Int] = []
        for _ in 0..<40 {
            // Runs of tiny events, then a few large ones: a guess from the
            // segment's mean event size lands far from the right entry.
            let batch = (0..<Int(1 + random.next() % 30)).map { i -> NewEvent in
                let size = random.next() % 5 == 0 ? Int(2_000 + random.next() % 20_000) : Int(random.next() % 8)
                return NewEvent(stream: "s\(i % 3)", type: "t", data: [UInt8](repeating: UInt8(truncatingIfNeeded: sizes.count + i), count: size))
            }
            sizes += batch.map(\.data.count)
            try log.append(batch)
        }
        for reopen in [false, true] {
            let reader = reopen ? try Log.open(at: dir.path, options: LogOptions(readOnly: true)) : log
            for position in 0..<UInt64(sizes.count) {
                let event = try reader.event(at: position)
                #expect(event.position == position)
                #expect(event.data.count == sizes[Int(position)])
            }
            if reopen { try reader.close() }
        }
        try log.close()
    }
}
