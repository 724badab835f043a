import CSystemCalls

/// The stream states one generation of the stream table changed, by name,
/// and unchanged copies of those the generation before it changed
/// (`inheriting(_:)`, Format.md §14): an in-memory table with a hash index, the "memtable" of
/// the stream table's log-structured merge. Stream ids index `streams`;
/// they never change or get reused within the generation, and mean nothing
/// outside it.
struct StreamGeneration: Sendable {
    private(set) var streams: ContiguousArray<StreamState> = []
    /// Hash → the newest stream id with that hash; others chain through `collisionNext`.
    private var byHash = HashIndex()
    /// What the states take in memory, about (`StreamState.memoryBytes`).
    private(set) var memoryBytes = 0
    /// Per id: false for a state this generation inherited from the one
    /// before (`inheriting(_:)`) and has not changed since; true for one it
    /// changed, created or loaded from an older level. Only changed states
    /// go into the generation's run.
    private var changed: ContiguousArray<Bool> = []
    /// How many states are changed.
    private(set) var changedCount = 0

    var count: Int { streams.count }
    var isEmpty: Bool { streams.isEmpty }

    /// A new generation starting where `previous` ended, holding copies of
    /// its states, none of them changed yet: the writer finds the streams it
    /// keeps appending to here instead of loading each again from the
    /// levels on its first append after every checkpoint (with thousands of
    /// streams in use, a miss and a copy per stream per checkpoint). The
    /// copies take memory, but are never written again unless changed.
    /// When `previous` holds states it did not change itself (inherited,
    /// untouched for a whole generation), only its changed ones are copied,
    /// so a stream is kept in memory one generation past its last change.
    static func inheriting(_ previous: StreamGeneration) -> StreamGeneration {
        var next: StreamGeneration
        if previous.changedCount == previous.count {
            // All of them: the storage is shared until the writer's next change.
            next = previous
        } else {
            next = StreamGeneration()
            for id in previous.streams.indices where previous.changed[id] {
                var state = previous.streams[id]
                state.collisionNext = 0
                _ = next.insert(state)
            }
        }
        next.changed = ContiguousArray(repeating: false, count: next.streams.count)
        next.changedCount = 0
        return next
    }

    @inline(__always) subscript(id: UInt32) -> StreamState { streams[Int(id)] }

    /// The id of the stream named `name` (whose hash is `hash`), if this generation has it.
    @inline(__always) func find(_ name: UnsafeRawBufferPointer, hash: UInt64) -> UInt32? {
        guard let first = byHash[hash] else { return nil }
        return streams.withUnsafeBufferPointer { states -> UInt32? in
            var candidate = first + 1
            while candidate != 0 {
                let id = candidate - 1
                if states[Int(id)].name.utf8Equals(name) { return id }
                candidate = states[Int(id)].collisionNext
            }
            return nil
        }
    }

    /// What an append reads of the stream named `name` (whose hash is
    /// `hash`), if this generation has it: its id, next version and
    /// deletion. Reads those fields in place: no copy of the state (and of
    /// its name), no closure.
    @inline(__always) func appendFields(
        _ name: UnsafeRawBufferPointer, hash: UInt64
    ) -> (id: UInt32, nextVersion: UInt64, deletion: StreamDeletion)? {
        guard let id = find(name, hash: hash) else { return nil }
        return streams.withUnsafeBufferPointer { states in (id, states[Int(id)].nextVersion, states[Int(id)].deletion) }
    }

    /// Starts loading what a `find` of each of `hashes` reads: first every
    /// hash slot, then (as those arrive) the first state each slot names.
    /// The misses of all of them overlap instead of following each other.
    /// A hint: it reads the slots, and changes nothing.
    func prefetch(_ hashes: UnsafeBufferPointer<UInt64>) {
        for hash in hashes { byHash.prefetch(hash) }
        streams.withUnsafeBufferPointer { states in
            guard let base = states.baseAddress else { return }
            for hash in hashes {
                guard let id = byHash[hash] else { continue }
                // The name and the versions come first; the fields a commit sets follow.
                eventlog_prefetch(base + Int(id), MemoryLayout<StreamState>.stride)
            }
        }
    }

    /// Reads one stream's state in place (no copy of it).
    @inline(__always) func withState<R>(_ id: UInt32, _ body: (borrowing StreamState) -> R) -> R {
        streams.withUnsafeBufferPointer { body($0[Int(id)]) }
    }

    /// Adds a stream; returns its id.
    mutating func insert(_ state: consuming StreamState) -> UInt32 {
        let id = UInt32(streams.count)
        state.collisionNext = byHash[state.hash].map { $0 + 1 } ?? 0
        memoryBytes += state.memoryBytes
        let hash = state.hash
        streams.append(state)
        changed.append(true)
        changedCount += 1
        byHash.set(hash, id)
        return id
    }

    mutating func update(_ id: UInt32, _ change: (inout StreamState) -> Void) {
        if !changed[Int(id)] {
            changed[Int(id)] = true
            changedCount += 1
        }
        change(&streams[Int(id)])
    }

    /// The ids of the changed states in the order of a stream table run: by (hash, name bytes).
    func idsInRunOrder() -> [UInt32] {
        var ids = (0..<UInt32(streams.count)).filter { changed[Int($0)] }
        streams.withUnsafeBufferPointer { states in
            ids.sort { a, b in
                let x = states[Int(a)], y = states[Int(b)]
                if x.hash != y.hash { return x.hash < y.hash }
                return x.name.utf8.lexicographicallyPrecedes(y.name.utf8)
            }
        }
        return ids
    }
}

/// A generation no longer changed: the writer started a new one at `to`.
/// Its states stay in memory, a level of the stream table, until a stream
/// table run holding them is written and published in its place.
final class FrozenGeneration: Sendable {
    let generation: StreamGeneration
    /// It holds the changes of the records at positions `from..<to`.
    let from: UInt64
    let to: UInt64

    init(_ generation: StreamGeneration, from: UInt64, to: UInt64) {
        self.generation = generation
        self.from = from
        self.to = to
    }
}

/// The stream table's levels below the current generation, oldest first:
/// stream table runs on disk (a contiguous chain of position ranges), then
/// frozen generations waiting to be written. Immutable: the table replaces
/// the whole value under its lock, and a reader searches the one it took.
struct StreamLevels: Sendable {
    var runs: [StreamTableRunView] = []
    var frozen: [FrozenGeneration] = []

    /// The position up to which the levels hold every change (nil: no level).
    var to: UInt64? { frozen.last?.to ?? runs.last?.to }

    /// The newest state of the stream named `name` in these levels.
    func lookup(_ name: UnsafeRawBufferPointer, hash: UInt64) throws(EventLogError) -> StreamState? {
        var asksEveryFilter = OldestRunFilterPolicy()
        return try lookup(name, hash: hash, oldestRunFilter: &asksEveryFilter, adapting: false)
    }

    /// `lookup(_:hash:)` for the writer: `policy` decides whether the oldest
    /// run's bloom filter is asked, and (when `adapting`) counts what the
    /// lookup found there.
    func lookup(
        _ name: UnsafeRawBufferPointer, hash: UInt64, oldestRunFilter policy: inout OldestRunFilterPolicy, adapting: Bool
    ) throws(EventLogError) -> StreamState? {
        var i = frozen.count
        while i > 0 {
            i -= 1
            if let id = frozen[i].generation.find(name, hash: hash) { return frozen[i].generation[id] }
        }
        // Through the buffer: no copy of a view (each holds a reference to
        // its mapping) for each of the runs asked, once per event the writer
        // appends to a stream it does not hold.
        let checksOldestBloom = !adapting || policy.checksBloom
        var reachedOldest = false
        let found: Result<StreamState?, EventLogError> = runs.withUnsafeBufferPointer { runs in
            var i = runs.count
            while i > 0 {
                i -= 1
                let checksBloom = i > 0 || checksOldestBloom
                if i == 0 { reachedOldest = true }
                do throws(EventLogError) {
                    if let row = try runs[i].lookup(hash: hash, name: name, checkingBloom: checksBloom) {
                        return .success(StreamState(row: row, hash: hash))
                    }
                } catch {
                    return .failure(error)
                }
            }
            return .success(nil)
        }
        if adapting && reachedOldest, case .success(let state) = found { policy.record(found: state != nil) }
        return try found.get()
    }
}
