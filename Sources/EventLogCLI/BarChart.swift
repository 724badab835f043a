/// Text bar charts for `eventlog stats`: one row per label, a bar of `#`
/// scaled so the largest count gets `width` of them (any count above 0
/// gets at least one), then the count.
///
///        16..31  ########################################  10
///        32..63  ####                                       1
enum BarChart {
    static let width = 40

    /// The bar for `count` when the largest is `largest`.
    static func bar(_ count: UInt64, largest: UInt64) -> String {
        guard count > 0, largest > 0 else { return "" }
        let (product, overflow) = count.multipliedReportingOverflow(by: UInt64(width))
        let length = overflow ? UInt64(width) * (count / largest) : (product + largest - 1) / largest
        return String(repeating: "#", count: Int(min(length, UInt64(width))))
    }

    /// Appends one row per (label, count), labels right-aligned (histogram
    /// ranges) or left-aligned (names), bars padded to `width`.
    static func append(_ rows: [(label: String, count: UInt64)], labelsRightAligned: Bool, into output: inout OutputWriter) {
        let largest = rows.map(\.count).max() ?? 0
        let table = rows.map { row in
            [row.label, bar(row.count, largest: largest).padding(to: width), String(row.count)]
        }
        output.appendTable(table.map { ["  " + $0[0]] + $0.dropFirst() }, rightAligned: labelsRightAligned ? [0, 2] : [2])
    }

    /// `min..max`, or the value alone when they are equal.
    static func label(_ bucket: Histogram.Bucket) -> String {
        bucket.min == bucket.max ? "\(bucket.min)" : "\(bucket.min)..\(bucket.max)"
    }
}

extension String {
    /// Padded with spaces on the right to `width` characters.
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
