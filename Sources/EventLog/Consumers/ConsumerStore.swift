import CoreMetrics
import Logging
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
        /// The record layout of the journal file (its header's version).
        var layout: CursorJournalLayout = .v2
        /// The journal's bytes before this offset are known to be on disk
        /// (from records' synced fields, a cut, a rewrite, or this process's
        /// own syncs): what the next record's synced field says.
        var knownSynced = CursorJournalHeader.size
        /// This process's last write to the journal file: its group commit
        /// sequence and the file offset after it. A sync that covers it
        /// covers every byte before that offset.
        var lastOwnWrite: (sequence: UInt64, end: Int)?
        /// Regions whose records fail their checksum although a later
        /// record says they were on disk: damage, confined to the cursors
        /// they held (Format.md §15).
        var damage: [CursorJournalDamage] = []
        /// Cursors named by a damaged region and not set or deleted since,
        /// with the region's offset: using one is `cursorDamaged`.
        var damagedCursors: [String: Int64] = [:]

        /// Forgets what was read of a journal file, to read one from its start.
        mutating func restart() {
            end = CursorJournalHeader.size
            cursors = [:]
            parked = [:]
            knownSynced = CursorJournalHeader.size
            lastOwnWrite = nil
            damage = []
            damagedCursors = [:]
        }
    }

    let directory: DirectoryOperations
    let logID: [UInt8]
    let durability: Durability
    /// False for a read-only log without `allowsCursorCommits`: commits are refused.
    let writable: Bool
    let state: Mutex<State>
    let groupCommit: GroupCommit
    /// `LogOptions.logger`.
    let logger: Logger
    /// Bytes written to the journal ever (the group commit's sequence).
    private let written = Atomic<UInt64>(0)
    var path: String { directory.file(FileNames.cursorJournal) }

    private init(
        directory: DirectoryOperations, logID: [UInt8], durability: Durability, writable: Bool, state: State,
        logger: Logger, slowSyncThreshold: Duration, metrics: any MetricsFactory
    ) {
        self.logger = logger
        self.groupCommit = GroupCommit(
            what: "cursor journal", logger: logger, slowSyncThreshold: slowSyncThreshold, dimensions: [("log", directory.path)],
            metrics: metrics)
        self.directory = directory
        self.logID = logID
        self.durability = durability
        self.writable = writable
        self.state = Mutex(state)
    }

    /// The first format version in which every log with a segment has a
    /// journal (Format.md §15, "A missing journal"): the builds of version 1
    /// before the journal existed wrote logs without one.
    static let requiredFromVersion: UInt16 = 2

    /// True when a log with `metadata` (nil: unreadable, taken as the
    /// current version) and a segment must have a journal.
    static func isRequired(segmentsExist: Bool, metadata: LogMetadata?) -> Bool {
        segmentsExist && (metadata?.readVersion ?? FormatVersion.current) >= requiredFromVersion
    }

    /// Why a missing journal is damage (Format.md §15, "A missing journal").
    static let missingReason = "the cursor journal is missing, but the log has segments, and every writer creates it before "
        + "the log's first segment: every cursor it held is unknown"

    /// Loads the journal. A torn last record is cut; damage before it is
    /// confined (reported, Format.md §15). A missing journal is created
    /// (when writable) unless `required`: the log has a segment, so it had
    /// a journal (Format.md §15, "A missing journal"); then a writable
    /// open refuses, naming `eventlog repair`, and a reader goes on without
    /// cursors, reporting the file as damaged at byte 0.
    static func open(
        directory: DirectoryOperations, logID: [UInt8], durability: Durability, writable: Bool, required: Bool = false,
        logger: Logger = Logger(label: "EventLog"), slowSyncThreshold: Duration = .seconds(1),
        metrics: any MetricsFactory = MetricsSystem.factory
    ) throws(EventLogError) -> ConsumerStore {
        let store = ConsumerStore(
            directory: directory, logID: logID, durability: durability, writable: writable,
            state: State(file: nil, end: CursorJournalHeader.size), logger: logger, slowSyncThreshold: slowSyncThreshold,
            metrics: metrics)
        let missing = required && !DirectoryOperations.exists(store.path)
        if missing && writable {
            throw .corruption(
                file: store.path, offset: 0,
                reason: missingReason + "; run eventlog repair, which creates it empty (the consumers start again from where they begin)")
        }
        try store.state.withLock { (state) throws(EventLogError) in
            if missing {
                // A reader needs no cursors to read events: it goes on without any and reports the file.
                state.damage = [CursorJournalDamage(offset: 0, length: 0, names: [], reason: missingReason)]
                logger.warning("the cursor journal is missing; read without cursors", metadata: ["file": "\(store.path)"])
                return
            }
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
                    let sequence = store.written.add(1, ordering: .relaxed).newValue
                    store.groupCommit.noteWritten(sequence, file: file)
                    state.lastOwnWrite = (sequence, state.end)
                }
                // A journal of an older format version gets records with a
                // synced field (layout 2) by a rewrite, unless it is damaged:
                // then it keeps its layout until `repair` settles the damage.
                if state.layout == .v1 && state.damage.isEmpty {
                    try store.lockJournal(&state)
                    defer { store.unlockJournal(state) }
                    try store.rewrite(&state, leaving: [])
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
                    state.restart()
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
            var headerCheck: Result<CursorJournalLayout, EventLogError> = .success(.v2)
            header.withUnsafeBytes { raw in
                do throws(EventLogError) { headerCheck = .success(try CursorJournalHeader.check(raw, file: path, logID: logID)) } catch {
                    headerCheck = .failure(error)
                }
            }
            let layout: CursorJournalLayout
            switch headerCheck {
            case .success(let found): layout = found
            case .failure(let error):
                guard let damage = FileDamage(error) else { throw error }
                if writable {
                    throw damage.advising("; if it is this log's journal, run eventlog repair, which rewrites it without the cursors it cannot read")
                }
                // A reader needs no cursors to read events: it goes on without
                // any and reports the damage (a writer refuses: `repair`).
                state.restart()
                state.damage = [CursorJournalDamage(offset: damage.offset, length: length, names: [], reason: damage.reason)]
                state.end = length
                return
            }
            state.restart()
            state.layout = layout
        }
        guard length > state.end else { return }
        let from = state.end
        let before = state
        // (A read-only view's first read reports no damage: it may not be.)
        var (read, valid) = try readAndReplay(
            file, from: from, length: length, logger: writable ? logger : Self.silent, into: &state)
        if !writable, state.damage.count > before.damage.count {
            // Without the lock a writer may be appending while the read copies
            // the file (page by page, not at one instant): a later record can
            // come through while the one before it does not yet, and that
            // reads as damage. The writer writes in order, so once the later
            // record is seen the earlier one is there: read again, once.
            state = before
            (read, valid) = try readAndReplay(file, from: from, length: length, logger: logger, into: &state)
        }
        state.end = from + valid
        if valid < read && cutTornTail && writable {
            // A torn last record: never acknowledged. The journal is never mapped, so it may shrink.
            try file.setLength(Int64(state.end))
            try file.datasync()
            state.knownSynced = state.end
        }
    }

    /// Reads the journal from `from` (`length` is the file's length) and
    /// applies its records to `state`: the bytes read, and the bytes of them
    /// that hold valid records (the rest: a torn or unfinished last write).
    private func readAndReplay(
        _ file: FileHandle, from: Int, length: Int, logger: Logger, into state: inout State
    ) throws -> (read: Int, valid: Int) {
        var bytes = [UInt8](repeating: 0, count: length - from)
        var result: Result<Int, IOError> = .success(0)
        bytes.withUnsafeMutableBytes { raw in
            do throws(IOError) { result = .success(try file.read(into: raw, at: Int64(from))) } catch { result = .failure(error) }
        }
        let read = try result.get()
        var replayed: Result<Int, EventLogError> = .success(0)
        let journal = path
        bytes.withUnsafeBytes { raw in
            do throws(EventLogError) {
                replayed = .success(try Self.replay(
                    UnsafeRawBufferPointer(rebasing: raw[0..<read]), fileOffset: from, file: journal, logger: logger, into: &state))
            } catch {
                replayed = .failure(error)
            }
        }
        return (read, try replayed.get())
    }

    /// Where a read that may be read again logs (nowhere).
    private static let silent = Logger(label: "EventLog", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A read-only view's catch-up: no lock, no repair; a record still being
    /// written is left for the next time.
    private func catchUpWithoutLock(_ state: inout State) throws(EventLogError) {
        do {
            let current = FileIdentity.of(path)
            if current == nil { return }
            if let file = state.file, try file.identity() != current { state.file = nil }
            if state.file == nil {
                state.file = try FileHandle.open(path, readOnly: true, faults: directory.faults)
                state.restart()
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
    /// journal); returns the offset in `bytes` after the last one. An
    /// invalid record is a torn last write (the records stop there) unless
    /// a later record shows it was on disk: then it is damage, recorded in
    /// `state.damage`, and the records after it are applied (Format.md §15).
    private static func replay(
        _ bytes: UnsafeRawBufferPointer, fileOffset: Int, file: String, logger: Logger, into state: inout State
    ) throws(EventLogError) -> Int {
        var at = 0
        while at < bytes.count {
            guard let (record, length) = try CursorRecord.decode(
                bytes, at: at, layout: state.layout, file: file, fileOffset: fileOffset)
            else {
                guard let resume = Self.resumeAfterDamage(bytes, at: at, fileOffset: fileOffset, layout: state.layout) else {
                    return at  // a torn last write
                }
                let damage = CursorJournalDamage(
                    offset: Int64(fileOffset + at), length: resume - at,
                    names: CursorRecord.readableNames(UnsafeRawBufferPointer(rebasing: bytes[at..<resume]), layout: state.layout))
                state.damage.append(damage)
                for name in damage.names { state.damagedCursors[name] = damage.offset }
                logger.warning(
                    "the cursor journal is damaged; the cursors it names are unusable until reset, deleted or repaired",
                    metadata: ["file": "\(file)", "offset": "\(damage.offset)", "bytes": "\(damage.length)", "cursors": "\(damage.names)"])
                at = resume
                continue
            }
            apply(record, to: &state)
            state.knownSynced = max(state.knownSynced, min(Int(clamping: record.synced), fileOffset + at))
            at += length
        }
        return at
    }

    /// Where the records after the invalid one at `at` resume when it is
    /// damage; nil when it is a torn last write. Layout 2: damage when any
    /// later record's synced field covers `at` (those bytes were on disk,
    /// so no power loss tore them). Layout 1, without that field: damage
    /// when the invalid record's length field leads to a valid record.
    private static func resumeAfterDamage(
        _ bytes: UnsafeRawBufferPointer, at: Int, fileOffset: Int, layout: CursorJournalLayout
    ) -> Int? {
        switch layout {
        case .v1:
            guard bytes.count - at >= 4 else { return nil }
            let claimed = Int(bytes.loadLE(at: at, as: UInt32.self))
            guard claimed >= layout.fixedBytes, claimed < bytes.count - at,
                  CursorRecord.checkedLength(bytes, at: at + claimed, layout: layout) != nil
            else { return nil }
            return at + claimed
        case .v2:
            guard let first = CursorRecord.nextChecked(bytes, after: at, layout: layout) else { return nil }
            var probe = first
            while true {
                if CursorRecord.synced(bytes, at: probe.offset, layout: layout) > UInt64(fileOffset + at) { return first.offset }
                let next = probe.offset + probe.length
                if let length = CursorRecord.checkedLength(bytes, at: next, layout: layout) {
                    probe = (next, length)
                } else if let found = CursorRecord.nextChecked(bytes, after: next, layout: layout) {
                    probe = found
                } else {
                    return nil
                }
            }
        }
    }

    private static func apply(_ record: CursorRecord, to state: inout State) {
        if !state.damagedCursors.isEmpty {
            // A later record that says where the cursor is makes it usable
            // again; a consumer group's parked events stay in doubt until it
            // is deleted (a damaged park record may have held one).
            let isGroup = record.name.hasPrefix(ConsumerGroup.cursorPrefix)
            if record.kind == .delete || (record.kind == .set && !isGroup) { state.damagedCursors[record.name] = nil }
        }
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

    /// `Log.verify(at:)`'s check of the cursor journal: its header, and
    /// every record but a torn last one (Format.md §15), and that it exists
    /// when the log has a segment.
    static func verifyJournal(in directory: DirectoryOperations, report: inout VerificationReport) {
        for damage in findDamage(in: directory) {
            report.problems.append(.init(file: damage.file, offset: damage.offset, reason: damage.reason))
        }
    }

    /// The journal's damage as a reader's open finds it, without opening
    /// the log (`verify`, `inspect`): a damaged header, damaged records (not
    /// a torn last one), or a missing journal in a log that has a segment.
    /// The log id is `eventlog.meta`'s when that reads (its own damage is
    /// reported on its own), else the journal's.
    static func findDamage(in directory: DirectoryOperations) -> [RecoveryReport.DamagedFile] {
        let path = directory.file(FileNames.cursorJournal)
        var metadata: LogMetadata?
        if case .success(let found)? = try? LogMetadata.read(in: directory, writing: false) { metadata = found }
        guard DirectoryOperations.exists(path) else {
            let segmentsExist = !SegmentSet.bases(in: (try? directory.list()) ?? []).isEmpty
            return isRequired(segmentsExist: segmentsExist, metadata: metadata) ? [.init(file: path, offset: 0, reason: missingReason)] : []
        }
        let journalID = (try? directory.readWhole(FileNames.cursorJournal, atMost: 32))?.flatMap { $0.count >= 32 ? Array($0[16..<32]) : nil }
        do {
            let store = try open(
                directory: directory, logID: metadata?.logID ?? journalID ?? [], durability: .none, writable: false)
            return store.state.withLock { $0.damage }.map { .init(file: path, offset: $0.offset, reason: $0.description) }
        } catch {
            switch error {
            case .corruption(_, let offset, let reason): return [.init(file: path, offset: offset, reason: reason)]
            default: return [.init(file: path, offset: 0, reason: error.description)]
            }
        }
    }

    /// Adds the journal's damage, and the cursors it names, to an open's report.
    func reportDamage(into report: inout RecoveryReport) {
        let (damage, names) = state.withLock { ($0.damage, $0.damagedCursors.keys.sorted()) }
        for region in damage {
            report.damagedFiles.append(.init(file: path, offset: region.offset, reason: region.description))
        }
        report.damagedCursors = names
    }

    /// Throws `cursorDamaged` when damaged records of the journal name `name`.
    func checkUsable(_ name: String, in state: State) throws(EventLogError) {
        if let offset = state.damagedCursors[name] { throw .cursorDamaged(name: name, file: path, offset: offset) }
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
            // A damaged cursor stays damaged: a set record would make it look sound.
            for (name, cursor) in state.cursors.sorted(by: { $0.key < $1.key })
            where cursor.position > end && state.damagedCursors[name] == nil {
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
            let synced = UInt64(knownSynced(&state))
            for var r in list {
                r.synced = synced
                r.encode(into: &w, layout: state.layout)
            }
            do throws(IOError) { try file.write(w.bytes, at: Int64(state.end)) } catch { throw .io(error) }
            state.end += w.bytes.count
            for r in list { Self.apply(r, to: &state) }
            let sequence = written.add(UInt64(w.bytes.count), ordering: .relaxed).newValue
            groupCommit.noteWritten(sequence, file: file)
            state.lastOwnWrite = (sequence, state.end)
            try compactIfLarge(&state)
            return sequence
        }
        if durability == .always {
            try groupCommit.waitDurable(upTo: sequence)
        }
    }

    /// The offset the next record's synced field may name: what records
    /// and cuts showed, or this process's last write once a sync covered it.
    private func knownSynced(_ state: inout State) -> Int {
        if let last = state.lastOwnWrite, groupCommit.durableSequence >= last.sequence {
            state.knownSynced = max(state.knownSynced, last.end)
            state.lastOwnWrite = nil
        }
        return min(state.knownSynced, state.end)
    }

    /// Rewrites the journal with one record per live fact when it has grown
    /// to 16 times that (and at least 1 MiB). Not while it holds damage:
    /// that is `repair`'s to settle (a rewrite would forget which cursors
    /// the damage named).
    private func compactIfLarge(_ state: inout State) throws(EventLogError) {
        let live = (state.cursors.count + state.parked.values.reduce(0) { $0 + $1.count }) * 64
        guard state.end > max(1 << 20, 16 * live), state.damage.isEmpty else { return }
        try rewrite(&state, leaving: [])
    }

    /// A whole journal in the current layout with one record per live fact,
    /// leaving out the cursors `leaving` names. Every record's synced field
    /// is its own offset: the file is on disk before anyone can read it.
    static func journalBytes(
        cursors: [String: Cursor], parked: [String: [UInt64: UInt32]], leaving: Set<String>, logID: [UInt8]
    ) -> ByteWriter {
        var w = ByteWriter()
        w.raw(CursorJournalHeader.encode(logID: logID))
        let now = currentTimestamp()
        for (name, cursor) in cursors.sorted(by: { $0.key < $1.key }) where !leaving.contains(name) {
            CursorRecord(kind: .set, name: name, position: cursor.position, timestamp: cursor.updatedAt, synced: UInt64(w.bytes.count))
                .encode(into: &w, layout: .v2)
        }
        for (group, events) in parked.sorted(by: { $0.key < $1.key }) where !leaving.contains(group) {
            for (position, deliveries) in events.sorted(by: { $0.key < $1.key }) {
                CursorRecord(kind: .park, name: group, position: position, timestamp: now, deliveries: deliveries, synced: UInt64(w.bytes.count))
                    .encode(into: &w, layout: .v2)
            }
        }
        return w
    }

    /// `Log.repair`'s new journal for a damaged one: every cursor and parked
    /// event its sound records hold, a cursor that damaged records name
    /// kept where the records before the damage had it (its consumer
    /// re-reads from there: at least once) or, without such a record,
    /// dropped. Returns the file's bytes and each damaged cursor's fate.
    static func salvage(in directory: DirectoryOperations, logID: [UInt8]) -> (bytes: [UInt8], fates: [String]) {
        if !DirectoryOperations.exists(directory.file(FileNames.cursorJournal)) {
            return (journalBytes(cursors: [:], parked: [:], leaving: [], logID: logID).bytes,
                    ["the journal is missing: created empty, every cursor it held is gone (their consumers start again from where they begin)"])
        }
        let state: State
        do {
            state = try open(directory: directory, logID: logID, durability: .none, writable: false).snapshot
        } catch {
            return (journalBytes(cursors: [:], parked: [:], leaving: [], logID: logID).bytes,
                    ["no record could be read (\(error)): every cursor is dropped"])
        }
        var fates: [String] = []
        if let header = state.damage.first(where: { $0.reason != nil }) {
            fates.append("the header is damaged (\(header.reason ?? "")): no cursor could be read, every cursor is dropped")
        }
        for (name, offset) in state.damagedCursors.sorted(by: { $0.key < $1.key }) {
            if let cursor = state.cursors[name] {
                fates.append("cursor \(name) (damaged at byte \(offset)) kept at position \(cursor.position), where the records before the damage had it")
            } else {
                fates.append("cursor \(name) (damaged at byte \(offset)) dropped: no record before the damage names it")
            }
        }
        return (journalBytes(cursors: state.cursors, parked: state.parked, leaving: [], logID: logID).bytes, fates)
    }

    /// Rewrites the journal in the current layout with one record per live
    /// fact, leaving out the cursors `leaving` names: write a new file, sync
    /// it, rename it over the old one, sync the directory. Every record's
    /// synced field is its own offset: the file is on disk before anyone
    /// can read it.
    private func rewrite(_ state: inout State, leaving: Set<String>) throws(EventLogError) {
        let w = Self.journalBytes(cursors: state.cursors, parked: state.parked, leaving: leaving, logID: logID)
        do {
            try state.file?.datasync()  // what is acknowledged stays acknowledged across the swap
            // Still under the old file's lock: other processes wait on it, then
            // see that the path names a new file and read that one.
            try directory.writeAtomically(FileNames.cursorJournal, bytes: w.bytes)
            let old = state.file
            state.file = try FileHandle.open(directory.file(FileNames.cursorJournal), faults: directory.faults)
            old?.unlock()
            state.end = w.bytes.count
            state.layout = .v2
            state.knownSynced = w.bytes.count
            state.lastOwnWrite = nil
            for name in leaving {
                state.cursors[name] = nil
                state.parked[name] = nil
            }
            state.damage = []
            state.damagedCursors = [:]
            if let file = state.file { groupCommit.noteWritten(written.load(ordering: .relaxed), file: file) }
        } catch {
            state.failure = "\(error)"
            if error.isFailedSync { groupCommit.fail(error.description) }  // and the log's writer with it
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
