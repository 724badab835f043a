/// Whether the writer's lookups ask the oldest stream table run's bloom
/// filter before searching its blocks (RocksDB's `optimize_filters_for_hits`,
/// decided from what the lookups find rather than configured).
///
/// The oldest run is the largest: at 10M streams its filter is about 12 MB,
/// so asking it is a cache (and TLB) miss of its own. When the writer's
/// lookups mostly find their stream there (appends to existing streams, the
/// common case in event sourcing), the filter only ever answers "maybe", and
/// the miss buys nothing: the fence search and the block read follow anyway.
/// When they mostly do not (appends creating streams), the filter saves a
/// block read per lookup. So the policy counts, over a sliding window of the
/// last `window` lookups that reached the oldest run, how many found their
/// row, and skips the filter while more than half did. Skipping never
/// changes an answer: the block search decides.
///
/// Writer only (`StreamTable.Mutator`); readers always ask the filter.
struct OldestRunFilterPolicy: Sendable {
    /// Lookups counted before the counts are halved (the window's length, about).
    static let window: UInt32 = 4096
    /// Lookups counted before the filter may be skipped.
    static let warmUp: UInt32 = 64

    private(set) var reached: UInt32 = 0
    private(set) var found: UInt32 = 0

    /// True while the filter should be asked.
    var checksBloom: Bool { reached < Self.warmUp || found * 2 <= reached }

    /// Counts one lookup that reached the oldest run (whether its filter
    /// was asked or not) and whether it found the stream there.
    mutating func record(found wasFound: Bool) {
        reached += 1
        if wasFound { found += 1 }
        if reached >= Self.window {
            reached /= 2
            found /= 2
        }
    }
}
