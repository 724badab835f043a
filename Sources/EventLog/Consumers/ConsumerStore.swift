import Synchronization

/// The consumers' durable state: named cursors and consumer groups' parked
/// events, kept in memory and in the cursor journal.
///
/// Several processes may commit to one journal: the writer's, and readers
/// opened read-only with `LogOptions.allowsCursorCommits`. Every append
/// happens under an exclusive `flock` of the journal, after reading what
/// other processes appended since (so "never backwards" holds across them)
/// and after checking that the journal was not replaced by a compaction.
///
/// Thread-safe: one lock orders this process's appends; under `.always`
/// durability concurrent commits share one `fdatasync` (group commit), as
/// appends do. Every method may block on the disk.
final class ConsumerStore: Sendable {
    struct Cursor: Sendable, Equatable {
        var position: UInt64
        var updatedAt: Timestamp
    }

    struct State: Sendable {
        var file: FileHandle?
        var end: Int
        var cursors: [String: Cursor] = [:]
        /// Consumer group → parked event position → deliveries when parked.
        var parked: [String: [UInt64: UInt32]] = [:]
        var failure: String?
    }

    let directory: DirectoryOperations
    let logID: [UInt8]
    let durability: Durability
    /// False for a read-only log without `allowsCursorCommits`: commits are refused.
    let writable: Bool
    let state: Mutex<State>
    let groupCommit = GroupCommit()
    /// Bytes written to the journal ever (the group commit's sequence).
    private let written = Atomic<UInt64>(0)
    var path: String { directory.file(FileNames.cursorJournal) }

    private init(directory: DirectoryOperations, logID: [UInt8], durability: Durability, writable: Bool, state: State) {
        self.directory = directory
        self.logID = logID
        self.durability = durability
        self.writable = writable
        self.state = Mutex(state)
    }

    /// Loads the journal (creating it when missing, when writable). A torn
    /// last record is cut; damage before it is an error naming the offset.
    static func open(
        directory: DirectoryOperations, logID: [UInt8], durability: Durability, writable: Bool
    ) throws(EventLogError) -> ConsumerStore {
        let store = ConsumerStore(
            directory: directory, logID: logID, durability: durability, writable: writable,
            state: State(file: nil, end: CursorJournalHeader.size))
        try store.state.withLock { (state) throws(EventLogError) in
            if writable {
                if !DirectoryOperations.exists(store.path) {
                    do throws(IOError) {
                        try directory.createAtomically(FileNames.cursorJournal, bytes: CursorJournalHeader.encode(logID: logID))
                    } catch {
                        throw .io(error)
                    }
                }
                try store.lockJournal(&state)
                store.unlockJournal(state)
                // What the journal holds may be only in the page cache (a
                // process that crashed wrote it): count it as one unsynced
                // write, so the first sync (`sync()`, the flusher, a durable
                // commit) covers it too.
                if let file = state.file {
                    store.groupCommit.noteWritten(store.written.add(1, ordering: .relaxed).newValue, file: file)
                }
            } else {
                try store.catchUpWithoutLock(&state)
            }
        }
        return store
    }

    /// Takes the journal's `flock`, making sure it is the current journal
    /// file (a compaction elsewhere may have replaced it), and reads what
    /// other processes appended since this one last looked.
    private func lockJournal(_ state: inout State) throws(EventLogError) {
        do {
            while true {
                if state.file == nil {
                    state.file = try FileHandle.open(path, faults: directory.faults)
                    state.end = CursorJournalHeader.size
                    state.cursors = [:]
                    state.parked = [:]
                }
                guard let file = state.file else { throw EventLogError.closed }
                try file.lockExclusive()
                if FileIdentity.of(path) == (try file.identity()) { break }
                // Replaced by a compaction: read the new file from its start.
                file.unlock()
                state.file = nil
            }
            try catchUp(&state, cutTornTail: true)
        } catch {
            state.file?.unlock()
            throw .wrapping(error)
        }
    }

    private func unlockJournal(_ state: State) {
        state.file?.unlock()
    }

    /// Applies the records after `state.end`. Under the lock a bad last
    /// record is a torn write of a process that died, and is cut.
    private func catchUp(_ state: inout State, cutTornTail: Bool) throws {
        guard let file = state.file else { return }
        let length = Int(try file.length())
        if state.end == CursorJournalHeader.size || length < state.end {
            // From the start: check the header, forget what was read before.
            var header = [UInt8](repeating: 0, count: min(length, CursorJournalHeader.size))
            var result: Result<Int, IOError> = .success(0)
            header.withUnsafeMutableBytes { raw in
                do throws(IOError) { result = .success(try file.read(into: raw, at: 0)) } catch { result = .failure(error) }
            }
            _ = try result.get()
            var headerCheck: Result<Void, EventLogError> = .success(())
            header.withUnsafeBytes { raw in
                do throws(EventLogError) { try CursorJournalHeader.check(raw, file: path, logID: logID) } catch {
                    headerCheck = .failure(error)
                }
            }
            try headerCheck.get()
            state.end = CursorJournalHeader.size
            state.cursors = [:]
            state.parked = [:]
        }
        guard length > state.end else { return }
        var bytes = [UInt8](repeating: 0, count: length - state.end)
        var result: Result<Int, IOError> = .success(0)
        let from = state.end
        bytes.withUnsafeMutableBytes { raw in
            do throws(IOError) { result = .success(try file.read(into: raw, at: Int64(from))) } catch { result = .failure(error) }
        }
        let read = try result.get()
        var replayed: Result<Int, EventLogError> = .success(0)
        let journal = path
        bytes.withUnsafeBytes { raw in
            do throws(EventLogError) {
                replayed = .success(try Self.replay(
                    UnsafeRawBufferPointer(rebasing: raw[0..<read]), fileOffset: from, file: journal, into: &state))
            } catch {
                replayed = .failure(error)
            }
        }
        let valid = try replayed.get()
        state.end = from + valid
        if valid < read && cutTornTail && writable {
            // A torn last record: never acknowledged. The journal is never mapped, so it may shrink.
            try file.setLength(Int64(state.end))
            try file.datasync()
        }
    }

    /// A read-only view's catch-up: no lock, no repair; a record still being
    /// written is left for the next time.
    private func catchUpWithoutLock(_ state: inout State) throws(EventLogError) {
        do {
            let current = FileIdentity.of(path)
            if current == nil { return }
            if let file = state.file, try file.identity() != current { state.file = nil }
            if state.file == nil {
                state.file = try FileHandle.open(path, readOnly: true, faults: directory.faults)
                state.end = CursorJournalHeader.size
            }
            try catchUp(&state, cutTornTail: false)
        } catch {
            throw .wrapping(error)
        }
    }

    /// Reads what other processes committed since (a read-only log's `refresh()`).
    func refreshFromDisk() throws(EventLogError) {
        try state.withLock { (state) throws(EventLogError) in
            if writable {
                try lockJournal(&state)
                unlockJournal(state)
            } else {
                try catchUpWithoutLock(&state)
            }
        }
    }

    /// Applies every valid record of `bytes` (read from `fileOffset` of the
    /// journal); returns the offset in `bytes` after the last one.
    private static func replay(
        _ bytes: UnsafeRawBufferPointer, fileOffset: Int, file: String, into state: inout State
    ) throws(EventLogError) -> Int {
        var at = 0
        while at < bytes.count {
            guard let (record, length) = try CursorRecord.decode(bytes, at: at, file: file, fileOffset: fileOffset) else {
                // Only the last write can be torn (appends are serialised):
                // a valid record after this one means damage, not a tear.
                let claimed = Int(bytes.count - at >= 4 ? bytes.loadLE(at: at, as: UInt32.self) : 0)
                if claimed >= CursorRecord.fixedBytes, claimed < bytes.count - at,
                   CursorRecord.checkedLength(bytes, at: at + claimed) != nil {
                    throw .corruption(file: file, offset: Int64(fileOffset + at), reason: "cursor journal record checksum mismatch")
                }
                return at
            }
            apply(record, to: &state)
            at += length
        }
        return at
    }

    private static func apply(_ record: CursorRecord, to state: inout State) {
        switch record.kind {
        case .set: state.cursors[record.name] = Cursor(position: record.position, updatedAt: record.timestamp)
        case .delete:
            state.cursors[record.name] = nil
            state.parked[record.name] = nil
        case .park: state.parked[record.name, default: [:]][record.position] = record.deliveries
        case .unpark: state.parked[record.name]?[record.position] = nil
        case .replay:
            for position in record.positions { state.parked[record.name]?[position] = nil }
            state.cursors[record.name] = Cursor(position: record.position, updatedAt: record.timestamp)
        }
    }

    /// Moves every cursor that is past `end` (the recovered end of the log)
    /// back to it, and drops parked events at or past it: their events were
    /// lost with an unsynced tail, and positions from `end` on will be given
    /// to new events. Returns what it moved.
    func clamp(toEnd end: UInt64) throws(EventLogError) -> [RecoveryReport.ClampedCursor] {
        let ahead = state.withLock { state in
            state.cursors.values.contains { $0.position > end } || state.parked.values.contains { $0.keys.contains { $0 >= end } }
        }
        guard ahead else { return [] }  // the usual case: no journal write, no lock
        var clamped: [RecoveryReport.ClampedCursor] = []
        try write { state in
            let now = currentTimestamp()
            var records: [CursorRecord] = []
            for (name, cursor) in state.cursors.sorted(by: { $0.key < $1.key }) where cursor.position > end {
                records.append(CursorRecord(kind: .set, name: name, position: end, timestamp: now))
                clamped.append(.init(name: name, was: cursor.position, now: end))
            }
            for (name, parked) in state.parked.sorted(by: { $0.key < $1.key }) {
                for position in parked.keys.sorted() where position >= end {
                    records.append(CursorRecord(kind: .unpark, name: name, position: position, timestamp: now))
                }
            }
            return records
        }
        return clamped
    }

    /// Appends records and applies them, atomically with `check`, which sees
    /// the state first and may refuse (throw). Then waits for durability
    /// under `.always`.
    func write(_ records: (inout State) throws(EventLogError) -> [CursorRecord]) throws(EventLogError) {
        if !writable { throw .readOnly }
        let sequence = try state.withLock { (state) throws(EventLogError) -> UInt64 in
            if let failure = state.failure ?? groupCommit.failureReason { throw .writerStopped(reason: failure) }
            try lockJournal(&state)
            defer { unlockJournal(state) }
            guard let file = state.file else { throw .closed }
            let list = try records(&state)
            guard !list.isEmpty else { return written.load(ordering: .relaxed) }
            var w = ByteWriter()
            for r in list { r.encode(into: &w) }
            do throws(IOError) { try file.write(w.bytes, at: Int64(state.end)) } catch { throw .io(error) }
            state.end += w.bytes.count
            for r in list { Self.apply(r, to: &state) }
            let sequence = written.add(UInt64(w.bytes.count), ordering: .relaxed).newValue
            groupCommit.noteWritten(sequence, file: file)
            try compactIfLarge(&state)
            return sequence
        }
        if durability == .always {
            try groupCommit.waitDurable(upTo: sequence)
        }
    }

    /// Rewrites the journal with one record per live fact when it has grown
    /// to 16 times that (and at least 1 MiB): write a new file, sync it,
    /// rename it over the old one, sync the directory.
    private func compactIfLarge(_ state: inout State) throws(EventLogError) {
        let live = (state.cursors.count + state.parked.values.reduce(0) { $0 + $1.count }) * 64
        guard state.end > max(1 << 20, 16 * live) else { return }
        var w = ByteWriter()
        w.raw(CursorJournalHeader.encode(logID: logID))
        let now = currentTimestamp()
        for (name, cursor) in state.cursors.sorted(by: { $0.key < $1.key }) {
            CursorRecord(kind: .set, name: name, position: cursor.position, timestamp: cursor.updatedAt).encode(into: &w)
        }
        for (group, events) in state.parked.sorted(by: { $0.key < $1.key }) {
            for (position, deliveries) in events.sorted(by: { $0.key < $1.key }) {
                CursorRecord(kind: .park, name: group, position: position, timestamp: now, deliveries: deliveries).encode(into: &w)
            }
        }
        do {
            try state.file?.datasync()  // what is acknowledged stays acknowledged across the swap
            // Still under the old file's lock: other processes wait on it, then
            // see that the path names a new file and read that one.
            try directory.writeAtomically(FileNames.cursorJournal, bytes: w.bytes)
            let old = state.file
            state.file = try FileHandle.open(directory.file(FileNames.cursorJournal), faults: directory.faults)
            old?.unlock()
            state.end = w.bytes.count
            if let file = state.file { groupCommit.noteWritten(written.load(ordering: .relaxed), file: file) }
        } catch {
            state.failure = "\(error)"
            throw .io(error)
        }
    }

    /// Syncs the journal (the interval flusher, `sync()`, `close()`).
    func sync() throws(EventLogError) {
        guard writable else { return }
        try groupCommit.syncNow()
    }

    var snapshot: State { state.withLock { $0 } }
}
