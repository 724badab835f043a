import Synchronization

/// The consumers' durable state: named cursors and consumer groups' parked
/// events, kept in memory and in the cursor journal.
///
/// Thread-safe: one lock orders journal appends; under `.always` durability
/// concurrent commits share one `fdatasync` (group commit), as appends do.
/// Every method may block on the disk.
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
    let readOnly: Bool
    let state: Mutex<State>
    let groupCommit = GroupCommit()
    /// Bytes written to the journal ever (the group commit's sequence).
    private let written = Atomic<UInt64>(0)

    private init(directory: DirectoryOperations, logID: [UInt8], durability: Durability, readOnly: Bool, state: State) {
        self.directory = directory
        self.logID = logID
        self.durability = durability
        self.readOnly = readOnly
        self.state = Mutex(state)
    }

    /// Loads the journal (creating it when missing, unless read-only). A torn
    /// last record is cut; damage before it is an error naming the offset.
    static func open(
        directory: DirectoryOperations, logID: [UInt8], durability: Durability, readOnly: Bool
    ) throws(EventLogError) -> ConsumerStore {
        let path = directory.file(FileNames.cursorJournal)
        var state = State(file: nil, end: CursorJournalHeader.size)
        do {
            if let bytes = try directory.readWhole(FileNames.cursorJournal) {
                let validEnd = try bytes.withUnsafeBytes { (raw) throws(EventLogError) -> Int in
                    try CursorJournalHeader.check(raw, file: path, logID: logID)
                    return try replay(raw, file: path, into: &state)
                }
                if !readOnly {
                    let file = try FileHandle.open(path, faults: directory.faults)
                    if validEnd < bytes.count {
                        // A torn last record: never acknowledged. The journal is not mapped, so it may shrink.
                        try file.setLength(Int64(validEnd))
                        try file.datasync()
                    }
                    state.file = file
                }
                state.end = validEnd
            } else if !readOnly {
                try directory.writeAtomically(FileNames.cursorJournal, bytes: CursorJournalHeader.encode(logID: logID))
                state.file = try FileHandle.open(path, faults: directory.faults)
            }
        } catch {
            throw .wrapping(error)
        }
        return ConsumerStore(directory: directory, logID: logID, durability: durability, readOnly: readOnly, state: state)
    }

    /// Applies every valid record; returns the offset after the last one.
    private static func replay(_ bytes: UnsafeRawBufferPointer, file: String, into state: inout State) throws(EventLogError) -> Int {
        var at = CursorJournalHeader.size
        while at < bytes.count {
            guard let (record, length) = CursorRecord.decode(bytes, at: at) else {
                // Only the last write can be torn (appends are serialised):
                // a valid record after this one means damage, not a tear.
                let claimed = Int(bytes.count - at >= 4 ? bytes.loadLE(at: at, as: UInt32.self) : 0)
                if claimed >= CursorRecord.fixedBytes, at + claimed < bytes.count, CursorRecord.decode(bytes, at: at + claimed) != nil {
                    throw .corruption(file: file, offset: Int64(at), reason: "cursor journal record checksum mismatch")
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
        }
    }

    /// Appends records and applies them, atomically with `check`, which sees
    /// the state first and may refuse (throw). Then waits for durability
    /// under `.always`.
    func write(_ records: (inout State) throws(EventLogError) -> [CursorRecord]) throws(EventLogError) {
        if readOnly { throw .readOnly }
        let sequence = try state.withLock { (state) throws(EventLogError) -> UInt64 in
            if let failure = state.failure ?? groupCommit.failureReason { throw .writerStopped(reason: failure) }
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
            try directory.writeAtomically(FileNames.cursorJournal, bytes: w.bytes)
            state.file = try FileHandle.open(directory.file(FileNames.cursorJournal), faults: directory.faults)
            state.end = w.bytes.count
            if let file = state.file { groupCommit.noteWritten(written.load(ordering: .relaxed), file: file) }
        } catch {
            state.failure = "\(error)"
            throw .io(error)
        }
    }

    /// Syncs the journal (the interval flusher, `sync()`, `close()`).
    func sync() throws(EventLogError) {
        guard !readOnly else { return }
        try groupCommit.syncNow()
    }

    var snapshot: State { state.withLock { $0 } }
}
