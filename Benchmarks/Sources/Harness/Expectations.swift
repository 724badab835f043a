import Workload

/// What the generator produces for the first `n` events, computed once
/// (untimed) so that every read phase of every system is checked against
/// it: counts, logical bytes and the read fold, per position and per stream.
/// A fast wrong answer cannot pass.
public final class Expectations: Sendable {
    public let n: Int
    public let logicalBytes: UInt64
    /// Σ over all events of (payload length + first + last payload byte).
    public let readSum: UInt64
    /// Per position: that event's fold term and its logical bytes.
    let fold: [UInt16]
    let bytes: [UInt16]
    /// Per stream k: events, logical bytes and fold of its events.
    public let streamCounts: [UInt32]
    let streamBytes: [UInt64]
    let streamFold: [UInt64]

    public init(n: Int) {
        precondition(n > 0)
        self.n = n
        var fold = [UInt16](repeating: 0, count: n)
        var bytes = [UInt16](repeating: 0, count: n)
        var streamBytes = [UInt64](repeating: 0, count: EventGenerator.streamCount)
        var streamFold = [UInt64](repeating: 0, count: EventGenerator.streamCount)
        var total: UInt64 = 0
        var sum: UInt64 = 0
        var generator = EventGenerator(seed: WorkloadSeed.events)
        for i in 0..<n {
            generator.next()
            let payload = generator.payload
            let term = UInt16(payload.count) + UInt16(payload[0]) + UInt16(payload[payload.count - 1])
            let size = generator.logicalBytes
            fold[i] = term
            bytes[i] = UInt16(size)
            let k = Int(generator.streamNumber)
            streamBytes[k] += UInt64(size)
            streamFold[k] += UInt64(term)
            total += UInt64(size)
            sum &+= UInt64(term)
        }
        self.fold = fold
        self.bytes = bytes
        self.logicalBytes = total
        self.readSum = sum
        self.streamCounts = (0..<EventGenerator.streamCount).map { generator.eventCount(ofStream: $0) }
        self.streamBytes = streamBytes
        self.streamFold = streamFold
    }

    /// All events: what R1 must read.
    public var scan: ReadSum { ReadSum(events: UInt64(n), bytes: logicalBytes, sum: readSum) }

    /// The streams R2 reads (splitmix64 seeded 43, `k = next() % 10000`).
    public static func streamDraws(_ count: Int) -> [UInt32] {
        var rng = SplitMix64(seed: WorkloadSeed.streams)
        return (0..<count).map { _ in UInt32(truncatingIfNeeded: rng.next() % UInt64(EventGenerator.streamCount)) }
    }

    /// What R2 must read for `count` random streams.
    public func streams(_ count: Int) -> ReadSum {
        var expected = ReadSum()
        for k in Self.streamDraws(count).map(Int.init) {
            expected.events += UInt64(streamCounts[k])
            expected.bytes += streamBytes[k]
            expected.sum &+= streamFold[k]
        }
        return expected
    }

    /// What R3 must read for `count` random positions (splitmix64 seeded 44, `pos = next() % n`).
    public func points(_ count: Int) -> ReadSum {
        var rng = SplitMix64(seed: WorkloadSeed.positions)
        var expected = ReadSum()
        for _ in 0..<count {
            let position = Int(rng.next() % UInt64(n))
            expected.events += 1
            expected.bytes += UInt64(bytes[position])
            expected.sum &+= UInt64(fold[position])
        }
        return expected
    }
}
