import Synchronization

/// The stream entries of one segment held in memory: the active segment's,
/// and a sealed segment's until its `.streamindex` file is written
/// (Format.md §13). Every event has an entry; per stream hash, `heads` holds
/// the newest entry, and each entry links to the previous one with the same
/// hash. A stream's events in the segment are its hash's chain, less the
/// entries of other streams with the same hash: readers confirm the stream
/// name on every record they read.
///
/// The entries name no stream id and need no stream state, so the stream
/// table may drop a stream from memory while the segment is active, and an
/// open loads a checkpoint without looking up a single stream.
///
/// ## Concurrency
/// One writer appends (under the writer lock), then publishes a count (the
/// stream index does); readers read entries below a count they were given,
/// and chain heads under `heads`' lock. An entry is written before the head
/// that leads to it, so a reader never follows a link to an unwritten entry.
final class SegmentStreamEntries: @unchecked Sendable {
    let entries = StreamEntries()
    /// Hash → index of the newest entry with that hash.
    private let heads = Mutex(HashIndex())

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
                    relativePosition: relativePosition, offset: offset, previous: previous, version: version))
                else { return false }
                heads.set(hash, UInt32(index))
                return true
            }
        }
    }

    /// The entries with `hash` below `count`, in position order:
    /// (relative position, offset, version).
    func chain(of hash: UInt64, count: Int) -> [(relativePosition: UInt32, offset: UInt32, version: UInt64)] {
        guard let head = heads.withLock({ $0[hash] }) else { return [] }
        var chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
        Self.walk(from: head, entries: entries, count: count, into: &chain)
        return chain
    }

    /// The stream index file of these entries below `count` (Format.md
    /// §13.2). Each hash's chain, in position order, becomes groups: a group
    /// is a run of one stream's consecutive versions; where streams share a
    /// hash, an entry joins the first group of its hash ending at the version
    /// before its own. Groups are in file order, (hash, first relative
    /// position). Allocates a few arrays in all, none per stream or entry
    /// (this runs for every sealed segment and every checkpoint).
    func fileBytes(_ header: IndexFileHeader, count: Int) -> [UInt8] {
        // Hashes in file order, with their chain heads.
        let heads = self.sortedHeads()

        var hashes: [UInt64] = []
        var firstVersions: [UInt64] = []
        var counts: [UInt32] = []
        var packed: [UInt64] = []
        hashes.reserveCapacity(heads.count)
        firstVersions.reserveCapacity(heads.count)
        counts.reserveCapacity(heads.count)
        packed.reserveCapacity(count)
        var chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
        for (hash, head) in heads {
            Self.walk(from: head, entries: entries, count: count, into: &chain)
            guard let first = chain.first else { continue }
            if zip(chain, chain.dropFirst()).allSatisfy({ $0.version &+ 1 == $1.version }) {
                // One stream, as almost always: one group.
                hashes.append(hash)
                firstVersions.append(first.version)
                counts.append(UInt32(chain.count))
                for e in chain { packed.append(StreamIndexFile.packedEntry(relativePosition: e.relativePosition, offset: e.offset)) }
                continue
            }
            for group in Self.split(chain, hash: hash) {
                hashes.append(hash)
                firstVersions.append(group.firstVersion)
                counts.append(UInt32(group.entries.count))
                for e in group.entries { packed.append(StreamIndexFile.packedEntry(relativePosition: e.relativePosition, offset: e.offset)) }
            }
        }
        return StreamIndexFile.encode(header, hashes: hashes, firstVersions: firstVersions, counts: counts, entries: packed)
    }

    /// Every hash's groups below `count`, as `fileBytes` makes them (tests, verify).
    func groups(count: Int) -> [StreamIndexFile.Group] {
        var groups: [StreamIndexFile.Group] = []
        var chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
        for (hash, head) in sortedHeads() {
            Self.walk(from: head, entries: entries, count: count, into: &chain)
            groups += Self.split(chain, hash: hash)
        }
        groups.sort { ($0.hash, $0.entries[0].relativePosition) < ($1.hash, $1.entries[0].relativePosition) }
        return groups
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

    /// A chain of streams sharing `hash` split into groups of consecutive
    /// versions, sorted by first relative position.
    private static func split(
        _ chain: [(relativePosition: UInt32, offset: UInt32, version: UInt64)], hash: UInt64
    ) -> [StreamIndexFile.Group] {
        var groups: [StreamIndexFile.Group] = []
        for e in chain {
            if e.version > 0,
               let g = groups.firstIndex(where: { $0.firstVersion + UInt64($0.entries.count) == e.version }) {
                groups[g].entries.append((e.relativePosition, e.offset))
            } else {
                groups.append(StreamIndexFile.Group(hash: hash, firstVersion: e.version, entries: [(e.relativePosition, e.offset)]))
            }
        }
        return groups
    }

    /// The chain from entry `head` back, below `count`, in position order,
    /// into `result` (emptied first, its storage reused).
    private static func walk(
        from head: UInt32, entries: StreamEntries, count: Int,
        into result: inout [(relativePosition: UInt32, offset: UInt32, version: UInt64)]
    ) {
        result.removeAll(keepingCapacity: true)
        var next = Int(head) + 1
        var sorted = true
        while next != 0 {
            let index = next - 1
            let e = entries[index]
            if index < count {
                if let last = result.last, last.relativePosition < e.relativePosition { sorted = false }
                result.append((e.relativePosition, e.offset, e.version))
            }
            next = Int(e.previous)
        }
        // A chain loaded from a checkpoint file holds colliding streams group
        // after group, not in position order.
        if sorted { result.reverse() } else { result.sort { $0.relativePosition < $1.relativePosition } }
    }
}
