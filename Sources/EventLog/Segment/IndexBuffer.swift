/// Fixed-capacity, append-only storage for index entries, shared by the
/// writer and readers without a lock: the writer only writes slots at or
/// after the count it has published, and a reader only reads slots below the
/// count in its snapshot (published under the snapshot lock, which orders
/// the writes before the reads). It never reallocates, so a reader's
/// pointer stays valid.
///
/// Its storage is a `PageBlock`: an active segment's buffers, sized for the
/// most entries its file can need, are mapped, and only the pages its
/// entries reach become resident.
///
/// One of the few audited types that hold a raw pointer.
final class IndexBuffer<Entry: BitwiseCopyable & Sendable>: @unchecked Sendable {
    let capacity: Int
    private let block: PageBlock
    private let storage: UnsafeMutablePointer<Entry>
    /// Written by the writer only.
    private(set) var writtenCount = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        self.block = PageBlock(byteCount: self.capacity * MemoryLayout<Entry>.stride)
        self.storage = block.base.bindMemory(to: Entry.self, capacity: self.capacity)
    }

    convenience init(_ entries: [Entry]) {
        self.init(capacity: entries.count)
        entries.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.initialize(from: base, count: source.count) }
        }
        writtenCount = entries.count
    }

    /// A buffer holding exactly the first `count` entries of `other`
    /// (at most its written ones), with no room for more: a sealed
    /// segment's, which gets no more entries.
    convenience init(exactly count: Int, of other: IndexBuffer<Entry>) {
        let count = min(count, other.writtenCount)
        self.init(capacity: count)
        storage.initialize(from: other.storage, count: count)
        writtenCount = count
    }

    /// Appends an entry (writer only). Returns false when full.
    @discardableResult
    func append(_ entry: Entry) -> Bool {
        guard writtenCount < capacity else { return false }
        (storage + writtenCount).initialize(to: entry)
        writtenCount += 1
        return true
    }

    /// Drops every entry at or after `count` (writer only, before publishing a smaller count).
    func removeAll(from count: Int) {
        guard count < writtenCount else { return }
        writtenCount = count
    }

    @inline(__always) subscript(i: Int) -> Entry { storage[i] }

    /// The first `count` entries as an array (cold paths: writing index files).
    func prefix(_ count: Int) -> [Entry] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    /// The greatest index `i < count` for which `isAtOrBefore(entry i)` holds,
    /// given that the predicate is true on a prefix of the entries; nil when
    /// it holds for none.
    @inline(__always)
    func lastIndex(count: Int, where isAtOrBefore: (Entry) -> Bool) -> Int? {
        lastIndex(between: 0, and: count, where: isAtOrBefore)
    }

    /// The halving search both searches end with: the predicate holds at
    /// `low - 1` (or `low` is 0) and fails at `high` (or `high` is the count).
    @inline(__always)
    private func lastIndex(between low: Int, and high: Int, where isAtOrBefore: (Entry) -> Bool) -> Int? {
        var low = low
        var high = high  // answer in [low - 1, high)
        while low < high {
            let mid = (low + high) / 2
            if isAtOrBefore(storage[mid]) { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }

    /// `lastIndex(count:where:)`, searching outward from `hint` (a guess at
    /// the answer) in steps that double, then by halving between the last
    /// two steps: a good guess costs a cache line or two instead of the
    /// ~log2(count) scattered probes of a search over everything; a wrong
    /// one costs at most about twice those. `hint` is clamped into range.
    @inline(__always)
    func lastIndex(count: Int, near hint: Int, where isAtOrBefore: (Entry) -> Bool) -> Int? {
        guard count > 0 else { return nil }
        let start = min(max(hint, 0), count - 1)
        var low: Int  // the predicate holds at low - 1 (or low == 0)
        var high: Int  // and fails at high (or high == count)
        if isAtOrBefore(storage[start]) {
            low = start + 1
            var step = 1
            high = low
            while high < count && isAtOrBefore(storage[high]) {
                low = high + 1
                step &*= 2
                high = min(count, start &+ step)
            }
        } else {
            high = start
            var step = 1
            low = high
            while low > 0 && !isAtOrBefore(storage[low - 1]) {
                high = low - 1
                step &*= 2
                low = max(0, start &- step)
            }
        }
        return lastIndex(between: low, and: high, where: isAtOrBefore)
    }
}
