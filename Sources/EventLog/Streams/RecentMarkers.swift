/// The streams of the stream markers (deletions, truncations, limits) the
/// writer applied since the log opened, in order, as far back as
/// `capacity` of them: what lets scavenging look again only at the
/// segments that hold events of those streams, instead of at every
/// segment it found clean before (`Scavenger`).
///
/// The markers are numbered from 1 as they are applied; `count` is the
/// number applied so far. Kept under the stream index's lock
/// (`StreamIndex.noteMarker`), so a count read there always has its hashes.
struct RecentMarkers: Sendable {
    /// The most stream hashes held (8 bytes each: 512 KiB).
    static let capacity = 1 << 16

    /// Markers applied since the log opened.
    private(set) var count: UInt64 = 0
    /// The stream hashes of markers `first + 1 ... count`, oldest first.
    private var hashes: [UInt64] = []
    private var first: UInt64 = 0

    /// Notes one more marker, applied to the stream whose hash is `hash`.
    mutating func note(_ hash: UInt64) {
        if hashes.count == Self.capacity {
            // Forget the older half (one move per capacity / 2 markers).
            hashes.removeFirst(Self.capacity / 2)
            first += UInt64(Self.capacity / 2)
        }
        hashes.append(hash)
        count += 1
    }

    /// The stream hashes of markers `after + 1 ... through` (distinct, in
    /// no order); nil when some of them are forgotten, or `through` is
    /// beyond what was applied.
    func hashes(after: UInt64, through: UInt64) -> Set<UInt64>? {
        guard after >= first, after <= through, through <= count else { return nil }
        return Set(hashes[Int(after - first)..<Int(through - first)])
    }
}
