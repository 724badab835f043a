/// Counts of values by powers of two: bucket 0 holds 0, bucket k (1...64)
/// holds 2^(k-1) ..< 2^k (1, 2..3, 4..7, 8..15, ...). Adding allocates nothing.
struct Histogram: Equatable {
    /// One bucket: the values `min...max` and how many were added.
    struct Bucket: Equatable {
        var min: UInt64
        var max: UInt64
        var count: UInt64
    }

    private var counts = [UInt64](repeating: 0, count: 65)
    /// How many values were added.
    private(set) var total: UInt64 = 0

    mutating func add(_ value: UInt64) {
        counts[Self.bucketIndex(of: value)] += 1
        total += 1
    }

    /// 0 for 0, else the number of significant bits.
    static func bucketIndex(of value: UInt64) -> Int {
        UInt64.bitWidth - value.leadingZeroBitCount
    }

    /// The buckets from the lowest to the highest that holds a value, the
    /// empty ones between included (so the shape shows); none when empty.
    var buckets: [Bucket] {
        guard let first = counts.firstIndex(where: { $0 > 0 }), let last = counts.lastIndex(where: { $0 > 0 }) else { return [] }
        return (first...last).map { i in
            let min: UInt64 = i == 0 ? 0 : 1 << UInt64(i - 1)
            let max: UInt64 = i == 0 ? 0 : (i == 64 ? .max : (1 << UInt64(i)) - 1)
            return Bucket(min: min, max: max, count: counts[i])
        }
    }
}
