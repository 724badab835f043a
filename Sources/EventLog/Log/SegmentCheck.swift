/// What `Log.verify(at:)` found in one segment, in the terms `Log.repair`
/// plans with: where its first damage lies (byte offset and position), what
/// the next open does by itself at its end, and which of its positions
/// scavenging removed. The verifier fills one per segment, in position order.
struct SegmentCheck: Sendable {
    let base: UInt64
    let isLast: Bool
    /// Positions between the end of the segment before (or the log start)
    /// and this segment's base are in no segment, or this segment overlaps
    /// the one before (Format.md §2): `expected` is where it should start.
    /// Only set when the segment before it was sound.
    var missingBefore: (expected: UInt64, reason: String)?
    /// The first damage, the lowest byte offset: in the header (offset below
    /// 64), a batch frame or record (the frame's offset), or where the data
    /// stops (the data end) when open would refuse it (Format.md §10).
    var damage: SegmentDamage?
    /// The last segment's end that the next open deals with by itself: a torn
    /// tail it cuts, or a creation a crash interrupted, which it removes.
    var recoveredByOpen: (offset: Int, reason: String)?
    /// The file could not be read, or its header has a format version this
    /// build does not read: nothing a repair can act on.
    var unreadable: String?
    /// A rewritten segment (Format.md §4.1) that is the last one: the
    /// segments from its declared end on are missing.
    var missingAfter: (position: UInt64, reason: String)?
    /// The position after the last batch before the segment's data first
    /// stops (zeros or an invalid frame): where an open ends the segment.
    var stopPosition: UInt64
    /// The position after the last event the walk read (past a damaged batch
    /// when the walk could resynchronise after it).
    var reachedPosition: UInt64
    /// A rewritten segment's declared end.
    var declaredEnd: UInt64?
    /// Positions scavenging removed from this segment (the gaps between its
    /// batches and after its last, Format.md §4.1), up to its first damage.
    var removedPositions: [Range<UInt64>] = []

    init(base: UInt64, isLast: Bool) {
        self.base = base
        self.isLast = isLast
        self.stopPosition = base
        self.reachedPosition = base
    }

    /// Keeps `candidate` when it lies before the damage found so far.
    mutating func noteDamage(_ candidate: SegmentDamage) {
        if damage.map({ candidate.offset < $0.offset }) ?? true { damage = candidate }
    }
}

/// One damaged place in a segment: its byte offset, the position of the
/// first event that cannot be read there, and why.
struct SegmentDamage: Sendable, Equatable {
    var offset: Int
    var position: UInt64
    var reason: String

    /// Damage in the segment header: nothing in the segment can be trusted.
    var isInHeader: Bool { offset < SegmentHeader.size }
}
