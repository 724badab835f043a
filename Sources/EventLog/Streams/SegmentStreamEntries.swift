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
        return Self.walk(from: head, entries: entries, count: count)
    }

    /// Every hash's entries below `count`, each in position order, as the
    /// groups of a stream index file: a group is a run of one stream's
    /// consecutive versions; where streams share a hash, an entry joins the
    /// first group of its hash ending at the version before its own.
    /// Sorted by (hash, first relative position), the order of the file.
    func groups(count: Int) -> [StreamIndexFile.Group] {
        var groups: [StreamIndexFile.Group] = []
        let heads = self.heads.withLock { $0 }
        heads.forEach { hash, head in
            let chain = Self.walk(from: head, entries: entries, count: count)
            guard !chain.isEmpty else { return }
            let first = groups.count
            for e in chain {
                var joined = false
                if e.version > 0 {
                    for g in first..<groups.count
                    where groups[g].firstVersion + UInt64(groups[g].entries.count) == e.version {
                        groups[g].entries.append((e.relativePosition, e.offset))
                        joined = true
                        break
                    }
                }
                if !joined {
                    groups.append(StreamIndexFile.Group(hash: hash, firstVersion: e.version, entries: [(e.relativePosition, e.offset)]))
                }
            }
        }
        groups.sort { ($0.hash, $0.entries[0].relativePosition) < ($1.hash, $1.entries[0].relativePosition) }
        return groups
    }

    /// The chain from entry `head` back, below `count`, in position order.
    private static func walk(
        from head: UInt32, entries: StreamEntries, count: Int
    ) -> [(relativePosition: UInt32, offset: UInt32, version: UInt64)] {
        var result: [(relativePosition: UInt32, offset: UInt32, version: UInt64)] = []
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
        return result
    }
}
