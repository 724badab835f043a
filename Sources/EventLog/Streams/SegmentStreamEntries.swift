import Synchronization

/// The stream index of one segment held by the writer: the active
/// segment's, and a sealed segment's until its `.streamindex` file is
/// written (Format.md §13). It is a **base** (the segment's last checkpoint
/// file, covering its events before `baseEnd`; none for a new segment) and
/// the **entries** of every event since, in memory.
///
/// Each in-memory entry links to the previous one with the same stream
/// hash, and `heads` holds the newest per hash: a stream's events are its
/// hash's chain, less the entries of other streams with the same hash
/// (readers confirm the stream name on every record they read). The entries
/// name no stream id and need no stream state, so the stream table may drop
/// a stream from memory while the segment is active, and an open uses a
/// checkpoint without loading it.
///
/// When a checkpoint file is written, the writer starts a new value on it
/// (`rebased`): memory holds only the entries since the last file, and each
/// file costs the size of the last one plus those entries (so a checkpoint
/// writes one only when it would about double, `StreamIndex.rewritesActiveFile`).
///
/// ## Concurrency
/// One writer appends (under the writer lock), then publishes a count (the
/// stream index does); readers read entries below a count they were given,
/// and chain heads under `heads`' lock. An entry is written before the head
/// that leads to it, so a reader never follows a link to an unwritten entry.
final class SegmentStreamEntries: @unchecked Sendable {
    /// The checkpoint this value builds on, checked whole when it was taken.
    let base: VerifiedStreamIndex?
    let entries = StreamEntries()
    /// Hash → index of the newest entry with that hash.
    private let heads = Mutex(HashIndex())

    init(base: VerifiedStreamIndex? = nil) { self.base = base }

    /// The position before which the base holds every event (the segment's
    /// base position when there is no base).
    func baseEnd(segmentBase: UInt64) -> UInt64 { base?.view.header.endPosition ?? segmentBase }

    var writtenCount: Int { entries.writtenCount }

    /// Appends entries under one hold of the chain heads: `body` gets a
    /// function appending (hash, relative position, offset, version) that
    /// returns false when the segment holds `StreamEntries.capacity`
    /// entries already. Writer only.
    func append<R>(_ body: ((UInt64, UInt32, UInt32, UInt64) -> Bool) throws -> R) rethrows -> R {
        try heads.withLock { heads in
            try body { hash, relativePosition, offset, version in
                let previous = heads[hash].map { $0 + 1 } ?? 0
                guard let index = entries.append(StreamEntry(
                    relativePosition: relativePosition, offset: offset, previous: previous, version: version, hash: hash))
                else { return false }
                heads.set(hash, UInt32(index))
                return true
            }
        }
    }

    /// Starts loading the chain heads of `hashes` into the cache
    /// (`HashIndex.prefetch`): the writer asks for a batch's streams before
    /// it appends their entries, so the batch waits on memory about once
    /// instead of once per stream. Writer only.
    func prefetchHeads(_ hashes: (_ each: (UInt64) -> Void) -> Void) {
        heads.withLock { heads in hashes { heads.prefetch($0) } }
    }

    /// The index of the first entry below `count` at or after relative
    /// position `relative` (`count` when none): entries are appended in
    /// position order.
    func firstIndex(atOrAfter relative: UInt64, below count: Int) -> Int {
        var low = 0
        var high = min(count, entries.writtenCount)
        while low < high {
            let mid = (low + high) / 2
            if UInt64(entries[mid].relativePosition) < relative { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// A new value on `checkpoint` (a file describing this segment up to
    /// the entry `covered`), holding a copy of the entries from `covered`
    /// on (writer only).
    func rebased(on checkpoint: VerifiedStreamIndex, covered: Int) -> SegmentStreamEntries {
        let next = SegmentStreamEntries(base: checkpoint)
        next.append { add in
            for i in covered..<entries.writtenCount {
                let e = entries[i]
                _ = add(e.hash, e.relativePosition, e.offset, e.version)
            }
        }
        return next
    }

    /// The entries with `hash` below `count` (the base's first), in
    /// position order: (relative position, offset, version); of the base's,
    /// those whose versions are in `versions` (the others are not read; the
    /// entries since the base all come, the caller filters them). The base's
    /// blocks are checked as they are read.
    ///
    /// `stopBefore` is asked about the entries since the base,
    /// newest first: at the first for which it returns true the walk ends,
    /// leaving it, every older entry and the base's out (a reader that
    /// found its stream's first event below the versions it wants).
    func chain(
        of hash: UInt64, count: Int, versions: ClosedRange<UInt64> = 0...UInt64.max,
        stopBefore: (_ relativePosition: UInt32, _ offset: UInt32, _ version: UInt64) throws(EventLogError) -> Bool = { _, _, _ in false }
    ) throws(EventLogError) -> [(relativePosition: UInt32, offset: UInt32, version: UInt64)] {
        guard let head = heads.withLock({ $0[hash] }) else { return try base?.view.entries(withHash: hash, versions: versions) ?? [] }
        var recent: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
        // Every entry of the base is older than every entry since it.
        if try Self.walk(from: head, entries: entries, count: count, into: &recent, stopBefore: stopBefore) { return recent }
        var result = try base?.view.entries(withHash: hash, versions: versions) ?? []
        if result.isEmpty { return recent }
        result.append(contentsOf: recent)
        return result
    }

    // MARK: Files

    /// The stream index file of the base and the entries below `count`
    /// (Format.md §13.2). Each hash's events, in position order, become
    /// groups: a group is a run of one stream's consecutive versions; where
    /// streams share a hash, an event joins the first group of its hash
    /// ending at the version before its own. Groups are in file order,
    /// (hash, first relative position). Allocates a few arrays in all, none
    /// per stream or entry (this runs for every checkpoint file and seal).
    func fileBytes(_ header: IndexFileHeader, count: Int) -> [UInt8] {
        let block = file(header, count: count)
        return withExtendedLifetime(block) { [UInt8](UnsafeRawBufferPointer(start: block.base, count: block.byteCount)) }
    }

    /// The same file in a `PageBlock` of exactly its size, its entries
    /// gathered in another (a full segment's are megabytes): the
    /// checkpoints' and seals' memory goes back to the kernel once the file
    /// is written, instead of staying in the malloc arena of the index
    /// writer's thread.
    func file(_ header: IndexFileHeader, count: Int) -> PageBlock {
        // Through a reader, not the index: binding the optional index in the
        // loops below would copy it (and retain its mapping) at every group.
        withExtendedLifetime(self.base) { file(header, count: count, base: self.base?.reader) }
    }

    private func file(_ header: IndexFileHeader, count: Int, base: VerifiedStreamIndex.Reader?) -> PageBlock {
        let heads = sortedHeads()
        var hashes: [UInt64] = []
        var firstVersions: [UInt64] = []
        var counts: [UInt32] = []
        // Every entry below `count` and every entry of the base goes into one group.
        let packed = PageArray<UInt64>(reserving: count + (base?.entryCount ?? 0))
        let baseGroups = base?.groupCount ?? 0
        hashes.reserveCapacity(heads.count + baseGroups)
        firstVersions.reserveCapacity(heads.count + baseGroups)
        counts.reserveCapacity(heads.count + baseGroups)
        /// Appends one group: the base's entries `fromBase` (none without a
        /// base), then `recent`.
        func emit(
            _ hash: UInt64, _ firstVersion: UInt64, fromBase: Range<Int> = 0..<0,
            _ recent: some Sequence<(relativePosition: UInt32, offset: UInt32)>
        ) {
            let before = packed.count
            if let base { for i in fromBase { packed.append(base.packedEntry(i)) } }
            for e in recent { packed.append(StreamIndexFile.packedEntry(relativePosition: e.relativePosition, offset: e.offset)) }
            hashes.append(hash)
            firstVersions.append(firstVersion)
            counts.append(UInt32(packed.count - before))
        }
        /// The base's groups `range`, as they are.
        func emitBase(_ range: Range<Int>) {
            guard let base else { return }
            for g in range {
                let group = base.group(g)
                emit(group.hash, group.firstVersion, fromBase: group.first..<(group.first + group.count), EmptyCollection())
            }
        }
        var chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
        var walks = ChainWalks()
        var g = 0  // the next base group, in file order
        for (k, (hash, _)) in heads.enumerated() {
            // Base groups of smaller hashes, as they are.
            let start = g
            while let base, g < baseGroups, base.group(g).hash < hash { g += 1 }
            emitBase(start..<g)
            if k % ChainWalks.width == 0 { walks.walk(heads[k..<min(heads.count, k + ChainWalks.width)], entries: entries, count: count) }
            walks.take(k % ChainWalks.width, into: &chain)
            let recent = chain.lazy.map { (relativePosition: $0.relativePosition, offset: $0.offset) }
            let consecutive = zip(chain, chain.dropFirst()).allSatisfy({ $0.version &+ 1 == $1.version })
            if let base, let first = chain.first, consecutive, g < baseGroups, base.group(g).hash == hash,
               g + 1 == baseGroups || base.group(g + 1).hash != hash {
                let group = base.group(g)
                if group.firstVersion + UInt64(group.count) == first.version {
                    // One stream, in the base and since, as almost always: its base
                    // group goes on with the new entries. Nothing allocated.
                    emit(hash, group.firstVersion, fromBase: group.first..<(group.first + group.count), recent)
                    g += 1
                    continue
                }
            }
            var seeds: [StreamIndexFile.Group] = []
            while let base, g < baseGroups, base.group(g).hash == hash {
                let group = base.group(g)
                seeds.append(StreamIndexFile.Group(
                    hash: hash, firstVersion: group.firstVersion,
                    entries: (group.first..<(group.first + group.count)).map {
                        let packed = base.packedEntry($0)
                        return (UInt32(truncatingIfNeeded: packed), UInt32(truncatingIfNeeded: packed >> 32))
                    }))
                g += 1
            }
            if seeds.isEmpty, let first = chain.first, consecutive {
                // One stream new to the base, as almost always: one group.
                emit(hash, first.version, recent)
                continue
            }
            for group in Self.split(chain, hash: hash, seeds: seeds) { emit(hash, group.firstVersion, group.entries) }
        }
        emitBase(g..<baseGroups)
        return packed.withUnsafeBufferPointer { entries in
            StreamIndexFile.encodedBlock(header, hashes: hashes, firstVersions: firstVersions, counts: counts, entries: entries)
        }
    }

    /// Groups `chain` (one hash's in-memory entries, in position order)
    /// continues, starting from `seeds` (the base's groups of that hash):
    /// each entry joins the first group ending at the version before its
    /// own, or starts one. Sorted by first relative position.
    private static func split(
        _ chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)], hash: UInt64, seeds: [StreamIndexFile.Group]
    ) -> [StreamIndexFile.Group] {
        var groups = seeds
        for e in chain {
            if e.version > 0,
               let g = groups.firstIndex(where: { $0.firstVersion + UInt64($0.entries.count) == e.version }) {
                groups[g].entries.append((e.relativePosition, e.offset))
            } else {
                groups.append(StreamIndexFile.Group(hash: hash, firstVersion: e.version, entries: [(e.relativePosition, e.offset)]))
            }
        }
        return groups.filter { !$0.entries.isEmpty }.sorted { $0.entries[0].relativePosition < $1.entries[0].relativePosition }
    }

    /// Every hash and its chain head, by hash. Copied out under the lock
    /// (not the map itself: the writer's next change would copy it whole).
    private func sortedHeads() -> [(hash: UInt64, head: UInt32)] {
        var result: [(hash: UInt64, head: UInt32)] = []
        heads.withLock { heads in
            result.reserveCapacity(heads.count)
            heads.forEach { result.append(($0, $1)) }
        }
        result.sort { $0.hash < $1.hash }
        return result
    }

    /// The chains of up to `width` heads, walked together for `file`: each
    /// round takes one entry of every chain still going, so the memory
    /// waits of different chains overlap instead of following each other
    /// (walked one at a time, each entry of a checkpoint's megabytes of
    /// entries was a cache miss of its own: most of a checkpoint's time,
    /// on the index writer's thread beside the appends). Each chain comes
    /// out as `walk` gives it (never stopped). Its arrays are reused: no
    /// allocation per window once they have grown.
    private struct ChainWalks {
        static let width = 16
        private var chains = [[(relativePosition: UInt32, offset: UInt32, version: UInt64)]](repeating: [], count: width)
        private var next = [Int](repeating: 0, count: width)
        private var sorted = [Bool](repeating: true, count: width)

        mutating func walk(_ heads: ArraySlice<(hash: UInt64, head: UInt32)>, entries: StreamEntries, count: Int) {
            let n = heads.count
            for (k, (_, head)) in heads.enumerated() {
                chains[k].removeAll(keepingCapacity: true)
                next[k] = Int(head) + 1
                sorted[k] = true
            }
            var going = n
            while going > 0 {
                going = 0
                for k in 0..<n where next[k] != 0 {
                    let index = next[k] - 1
                    let e = entries[index]
                    if index < count {
                        if let last = chains[k].last, last.relativePosition < e.relativePosition { sorted[k] = false }
                        chains[k].append((e.relativePosition, e.offset, e.version))
                    }
                    next[k] = Int(e.previous)
                    if next[k] != 0 { going += 1 }
                }
            }
            // Chains hold entries in position order, newest first; sorted to be safe.
            for k in 0..<n {
                if sorted[k] { chains[k].reverse() } else { chains[k].sort { $0.relativePosition < $1.relativePosition } }
            }
        }

        /// Chain `k` of the last `walk`, swapped into `chain` (whose storage it keeps for reuse).
        mutating func take(_ k: Int, into chain: inout [(relativePosition: UInt32, offset: UInt32, version: UInt64)]) {
            swap(&chain, &chains[k])
        }
    }

    /// The chain from entry `head` back, below `count`, in position order,
    /// into `result` (emptied first, its storage reused). `stopBefore`
    /// (asked newest first, only while the chain is in position order) ends
    /// it at the first entry it accepts; returns true when it did.
    @discardableResult
    private static func walk<E: Error>(
        from head: UInt32, entries: StreamEntries, count: Int,
        into result: inout [(relativePosition: UInt32, offset: UInt32, version: UInt64)],
        stopBefore: (UInt32, UInt32, UInt64) throws(E) -> Bool
    ) throws(E) -> Bool {
        result.removeAll(keepingCapacity: true)
        var next = Int(head) + 1
        var sorted = true
        var stopped = false
        while next != 0 {
            let index = next - 1
            let e = entries[index]
            if index < count {
                if let last = result.last, last.relativePosition < e.relativePosition { sorted = false }
                if sorted, try stopBefore(e.relativePosition, e.offset, e.version) {
                    stopped = true
                    break
                }
                result.append((e.relativePosition, e.offset, e.version))
            }
            next = Int(e.previous)
        }
        // Chains hold entries in position order, newest first; sorted to be safe.
        if sorted { result.reverse() } else { result.sort { $0.relativePosition < $1.relativePosition } }
        return stopped
    }
}
