/// The state readers see: the sealed segments, oldest first, then the active one.
struct LogSnapshot: Sendable {
    var sealed: [Segment]
    /// The segment being appended to (nil only for an empty read-only log).
    var active: Segment?
    /// The writer's sequence (bytes written) this snapshot shows: a snapshot
    /// replaces the published one only when it shows more (under `.always`
    /// sync leaders publish out of the writer lock, in any order).
    var sequence: UInt64 = 0
    /// An encrypted log's keys, which readers open sealed batches with
    /// (Format.md §5.1); nil for a plain log.
    var keys: (any SealKeys)? = nil

    var count: Int { sealed.count + (active == nil ? 0 : 1) }

    @inline(__always) subscript(i: Int) -> Segment {
        i < sealed.count ? sealed[i] : active!
    }

    /// The ids of its segments, oldest first.
    var segmentIDs: [SegmentID] { sealed.map(\.id) + (active.map { [$0.id] } ?? []) }

    var first: Segment? { sealed.first ?? active }
    var last: Segment? { active ?? sealed.last }

    // The positions are read in place: a point read asks for them, and a
    // copy of a segment costs a reference count update each way.
    var startPosition: UInt64 { sealed.isEmpty ? active?.basePosition ?? 0 : sealed[0].basePosition }
    var endPosition: UInt64 { active?.endPosition ?? (sealed.isEmpty ? 0 : sealed[sealed.count - 1].endPosition) }

    /// The index of the segment holding `position` (the last whose base ≤ position).
    @inline(__always) func segmentIndex(for position: UInt64) -> Int? {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            let base = mid < sealed.count ? sealed[mid].basePosition : active?.basePosition ?? 0
            if base <= position { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }

    /// The segment holding `position`, for a point read; `positionRemoved`
    /// before the start, `positionOutOfRange` at or past the end.
    func segment(holding position: UInt64) -> Result<Segment, EventLogError> {
        let start = startPosition
        let end = endPosition
        if position < start { return .failure(.positionRemoved(position: position, start: start)) }
        guard position < end, let index = segmentIndex(for: position) else {
            return .failure(.positionOutOfRange(position: position, start: start, end: end))
        }
        return .success(self[index])
    }
}
