/// Which neighbouring sealed segments merging combines (Format.md §4.2):
/// the rule alone, on sizes and positions, so that a dry run and a test can
/// ask it without touching a file.
///
/// Walking the sealed segments oldest first (never the active one), a
/// **group** starts at a segment whose data (header and batches, its
/// `dataEnd`) is at most half the segment size, and takes in the next
/// segment while that one is small too, the merged file (one header and
/// every batch of the group) stays within the segment size, the positions
/// it covers (from the first base to the last end, gaps included) stay
/// within `maxSpan`, and the group holds fewer than `maxCount` segments.
/// A group of two or more is merged; a small segment alone stays as it is.
/// The rule is greedy: a group ends at the first neighbour that does not
/// fit, and the next group may start there.
enum MergePlan {
    struct Candidate: Sendable, Equatable {
        var base: UInt64
        var end: UInt64
        /// The segment's data end: its header and batches, in bytes.
        var dataBytes: Int
    }

    /// The groups to merge, as index ranges into `segments` (consecutive
    /// sealed segments, oldest first), each of at least two segments.
    static func make(
        _ segments: [Candidate], segmentBytes: Int, maxSpan: UInt64 = Limits.maxMergedSegmentSpan,
        maxCount: Int = Limits.maxMergedSegments
    ) -> [Range<Int>] {
        let small = segmentBytes / 2
        var groups: [Range<Int>] = []
        var i = 0
        while i < segments.count {
            guard segments[i].dataBytes <= small else {
                i += 1
                continue
            }
            var bytes = segments[i].dataBytes
            var j = i + 1
            while j < segments.count, j - i < maxCount {
                let next = segments[j]
                let merged = bytes + max(0, next.dataBytes - SegmentHeader.size)
                guard next.dataBytes <= small, next.base == segments[j - 1].end, merged <= segmentBytes,
                      next.end > segments[i].base, next.end - segments[i].base <= maxSpan
                else { break }
                bytes = merged
                j += 1
            }
            if j - i >= 2 { groups.append(i..<j) }
            i = max(j, i + 1)
        }
        return groups
    }
}
