/// Which sealed segments retention removes (Format.md §3.1), decided from
/// numbers alone so that it can be tested without files.
///
/// Whole segments only, oldest first, never the active one, and only a
/// prefix of the log: the log start must stay a segment's base. A segment
/// goes when it holds no position at or after `floor` (the cursors named
/// in the settings, parked events) and either its newest event is older
/// than the retain age, or the segments kept would otherwise take more
/// bytes than the retain bytes. The first segment that may not go stops
/// the plan.
struct RetentionPlan: Equatable, Sendable {
    /// What the plan knows of a segment.
    struct Segment: Equatable, Sendable {
        var base: UInt64
        var end: UInt64
        /// Its file's length.
        var bytes: UInt64
        /// Its newest event's timestamp.
        var newestTimestamp: Timestamp
    }

    /// The log start after the plan (the base of the first segment kept).
    var start: UInt64
    /// How many segments go, from the oldest.
    var removedSegments: Int
    var removedBytes: UInt64
    var removedEvents: UInt64
    /// Why no more segments go when a limit still asks for it (a cursor or
    /// a parked event holds them), nil otherwise.
    var heldBack: String?

    /// The plan for `segments` (oldest first, the active one last).
    static func make(segments: [Segment], settings: LogSettings, floor: UInt64, floorReason: String, now: Timestamp) -> RetentionPlan {
        var plan = RetentionPlan(start: segments.first?.base ?? 0, removedSegments: 0, removedBytes: 0, removedEvents: 0, heldBack: nil)
        guard !settings.retainsEverything else { return plan }
        var kept = segments.reduce(UInt64(0)) { $0 + $1.bytes }
        let age = settings.retainAgeMicroseconds
        for segment in segments.dropLast() {
            let tooOld = age > 0 && now > segment.newestTimestamp && UInt64(now - segment.newestTimestamp) >= age
            let tooBig = settings.retainBytes.map { kept > $0 } ?? false
            guard tooOld || tooBig else { break }
            guard segment.end <= floor else {
                plan.heldBack = floorReason
                break
            }
            kept -= segment.bytes
            plan.removedSegments += 1
            plan.removedBytes += segment.bytes
            plan.removedEvents += segment.end - segment.base
            plan.start = segment.end
        }
        return plan
    }
}
