import Synchronization

/// Every stream's state (Format.md §14), as a log-structured merge: the
/// current generation in memory holds the streams changed since `from`
/// (and unchanged copies of those the generation before changed);
/// below it, `levels`: frozen generations waiting to be written, then
/// stream table runs on disk, each newer level overriding older ones.
///
/// Memory holds the current and frozen generations only, so it is bounded
/// by how many streams change within two checkpoints (and the writer
/// checkpoints early when the current generation outgrows
/// `LogOptions.streamMemoryBytes`), not by how many streams the log has.
///
/// ## Concurrency
/// Only the writer (holding the writer lock) changes the current
/// generation, and only inside `mutate`; it may read it without the lock,
/// since nothing else writes it. Readers read inside `read`, or through
/// `state(named:)`, which searches the levels outside the lock. The index
/// writer's queue publishes runs (`publish`) under the lock.
final class StreamTable: @unchecked Sendable {
    private let lock = Mutex<Void>(())
    /// The streams changed since `from`.
    private(set) var current = StreamGeneration()
    /// The position from which `current` holds the changes.
    private(set) var from: UInt64
    private(set) var levels: StreamLevels
    /// Hashes are masked with this (a test hook: 0 makes every stream collide).
    let hashMask: UInt64
    /// Whether the writer's lookups ask the oldest run's bloom filter (changed inside `mutate` only).
    private var oldestRunFilter = OldestRunFilterPolicy()

    init(hashMask: UInt64 = .max, levels: StreamLevels = StreamLevels(), from: UInt64 = 0) {
        self.hashMask = hashMask
        self.levels = levels
        self.from = from
    }

    @inline(__always) func hash(_ name: UnsafeRawBufferPointer) -> UInt64 { StreamHash.hash(name) & hashMask }

    func hash(_ name: String) -> UInt64 {
        var name = name
        return name.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// The id of the stream named `name` in the current generation, if it
    /// is there. Writer or `read`.
    @inline(__always) func find(_ name: UnsafeRawBufferPointer, hash: UInt64) -> UInt32? {
        current.find(name, hash: hash)
    }

    @inline(__always) subscript(id: UInt32) -> StreamState { current[id] }

    /// `StreamGeneration.appendFields` of the current generation. Writer or `read`.
    @inline(__always) func appendFields(
        _ name: UnsafeRawBufferPointer, hash: UInt64
    ) -> (id: UInt32, nextVersion: UInt64, deletion: StreamDeletion)? {
        current.appendFields(name, hash: hash)
    }

    /// `StreamGeneration.prefetch` of the current generation: a `find` of
    /// any of `hashes` soon after waits on no memory. Writer only.
    func prefetch(_ hashes: UnsafeBufferPointer<UInt64>) { current.prefetch(hashes) }

    /// Reads one stream's state of the current generation in place. Writer or `read`.
    @inline(__always) func withState<R>(_ id: UInt32, _ body: (borrowing StreamState) -> R) -> R {
        current.withState(id, body)
    }

    /// The streams in the current generation.
    var count: Int { current.count }

    /// The newest state of the stream named `name`, from whichever level
    /// has it. Any thread; the levels are searched outside the lock.
    func state(named name: String) throws(EventLogError) -> StreamState? {
        var name = name
        let found: Result<StreamState?, EventLogError> = name.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            let hash = self.hash(raw)
            let (state, levels) = read { table -> (StreamState?, StreamLevels) in
                if let id = table.find(raw, hash: hash) { return (table[id], StreamLevels()) }
                return (nil, table.levels)
            }
            if let state { return .success(state) }
            do throws(EventLogError) { return .success(try levels.lookup(raw, hash: hash)) } catch { return .failure(error) }
        }
        return try found.get()
    }

    /// Runs the writer's changes under the lock.
    func mutate<R, E: Error>(_ body: (inout Mutator) throws(E) -> R) throws(E) -> R {
        try lock.withLock { _ throws(E) in
            var mutator = Mutator(table: self)
            return try body(&mutator)
        }
    }

    /// Runs a reader's lookups under the lock.
    func read<R>(_ body: (StreamTable) throws -> R) rethrows -> R {
        try lock.withLock { _ in try body(self) }
    }

    /// The writer's handle for changes (only exists inside `mutate`).
    struct Mutator: ~Copyable {
        let table: StreamTable

        /// Adds a stream to the current generation; returns its id.
        func insert(_ state: consuming StreamState) -> UInt32 { table.current.insert(state) }

        func update(_ id: UInt32, _ change: (inout StreamState) -> Void) { table.current.update(id, change) }

        /// The id of the stream in the current generation; a stream only an
        /// older level has is copied into it first. Nil: no such stream.
        func findOrLoad(_ name: UnsafeRawBufferPointer, hash: UInt64) throws(EventLogError) -> UInt32? {
            if let id = table.current.find(name, hash: hash) { return id }
            guard let state = try table.levels.lookup(name, hash: hash, oldestRunFilter: &table.oldestRunFilter, adapting: true)
            else { return nil }
            return table.current.insert(state)
        }

        /// The id of the stream, created empty when no level has it.
        func findOrCreate(_ name: UnsafeRawBufferPointer, hash: UInt64) throws(EventLogError) -> UInt32 {
            if let id = try findOrLoad(name, hash: hash) { return id }
            return table.current.insert(StreamState(name: String(decoding: name, as: UTF8.self), hash: hash))
        }

        /// Ends the current generation at `position` (every record before it
        /// applied): it becomes the newest frozen level, and a new generation
        /// starts there, inheriting the frozen one's states
        /// (`StreamGeneration.inheriting`) when they take at most
        /// `inheritingUpTo` bytes, else empty. Nil when the current one
        /// changed no state, or when no record came since it began: its
        /// states are then copies of older levels' (inherited, or loaded by
        /// appends that failed or were retries), dropped, and a run of no
        /// positions is no run (§14.1).
        func freeze(at position: UInt64, inheritingUpTo inheritBytes: Int) -> FrozenGeneration? {
            guard table.current.changedCount > 0, position > table.from else {
                if !table.current.isEmpty { table.current = StreamGeneration() }
                table.from = max(table.from, position)
                return nil
            }
            let frozen = FrozenGeneration(table.current, from: table.from, to: position)
            table.levels.frozen.append(frozen)
            table.current = table.current.memoryBytes <= inheritBytes
                ? StreamGeneration.inheriting(table.current) : StreamGeneration()
            table.from = position
            return frozen
        }

        /// Drops every level and generation: the table starts again at
        /// `from` over `runs` (a read-only log adopting newer runs).
        func reset(runs: [StreamTableRunView], from: UInt64) {
            table.levels = StreamLevels(runs: runs, frozen: [])
            table.current = StreamGeneration()
            table.from = from
        }
    }

    // MARK: Levels (the index writer's queue)

    /// Publishes `run`, written from `frozen`, in its place.
    func publish(_ run: StreamTableRunView, replacing frozen: FrozenGeneration) {
        lock.withLock { _ in
            levels.frozen.removeAll { $0 === frozen }
            levels.runs.append(run)
        }
    }

    /// Replaces the runs `inputs` (contiguous, oldest first) with `merged`;
    /// false when they are no longer all there.
    func replace(_ inputs: [StreamTableRunView], with merged: StreamTableRunView) -> Bool {
        lock.withLock { _ in
            guard let first = inputs.first,
                  let start = levels.runs.firstIndex(where: { $0.path == first.path }),
                  start + inputs.count <= levels.runs.count,
                  zip(levels.runs[start..<(start + inputs.count)], inputs).allSatisfy({ $0.path == $1.path })
            else { return false }
            levels.runs.replaceSubrange(start..<(start + inputs.count), with: [merged])
            return true
        }
    }
}

extension StreamTable {
    /// The newest state of every stream whose name satisfies `include`, from
    /// every level: reads every run whole, so it costs time in the number of
    /// streams (listings, not the hot path).
    func states(where include: (String) -> Bool) throws(EventLogError) -> [StreamState] {
        let (recent, levels) = read { table in (table.current.streams.filter { include($0.name) }, table.levels) }
        var byName: [String: StreamState] = [:]
        for run in levels.runs {
            do {
                try run.forEachRow { hash, row in
                    if include(row.name) { byName[row.name] = StreamState(row: row, hash: hash) }
                }
            } catch {
                throw .wrapping(error)
            }
        }
        for frozen in levels.frozen {
            for state in frozen.generation.streams where include(state.name) { byName[state.name] = state }
        }
        for state in recent { byName[state.name] = state }
        return Array(byName.values)
    }
}
