import Crypto
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The data keys of an encrypted log and their store, `eventlog.keys`
/// (Format.md §16): the one owner of every key the log has, created,
/// looked up, forgotten (crypto-shredding) and re-wrapped under a new
/// master key here.
///
/// Data keys are wrapped on disk and unwrapped on first use. A new key is
/// on disk (appended and `fdatasync`ed) before any batch sealed under it
/// is written; forgetting one appends a forgetting entry, syncs, then
/// overwrites the key's wrapped bytes with zeros and syncs again, so a
/// crash in between leaves it forgotten either way.
///
/// Thread-safe: one mutex; the file is written under it. Writes block on
/// the disk: callers are the writer (under its lock) and `Log`'s
/// maintenance calls, never the cooperative pool.
final class KeyRing: SealKeys, Sendable {
    let logID: [UInt8]
    let scope: DataKeyScope
    let path: String
    private let directory: DirectoryOperations
    private let state: Mutex<State>
    private let forgettings = Atomic<UInt32>(0)
    var forgetEpoch: UInt32 { forgettings.load(ordering: .acquiring) }

    /// The most bytes a key store may have (about 10 million data keys of
    /// 40-byte scope names): a larger file is refused, not read.
    static let maxBytes = 1 << 30

    private struct State {
        var master: SymmetricKey
        /// Data keys, wrapped until first used.
        var keys: [UInt32: Slot] = [:]
        var forgotten: Set<UInt32> = []
        /// Each scope name's current key (the one new events are sealed under).
        var current: [[UInt8]: UInt32] = [:]
        /// Each data key's scope name (forgotten ones too).
        var scopeOf: [UInt32: [UInt8]] = [:]
        /// Where each data key's entry starts (for shredding).
        var entryOffsets: [UInt32: Int] = [:]
        var end: Int
        var nextID: UInt32 = 1
        /// The writer's handle (`openForWriting`); nil for a read-only open.
        var file: FileHandle?
        /// The file's length when loaded (beyond `end`: a torn tail).
        var fileLength = 0
        /// A failed write or sync: no more keys are created (the writer stops, Format.md §11).
        var failure: String?
    }

    private enum Slot {
        case wrapped(name: [UInt8], bytes: [UInt8])
        case key(SymmetricKey)
    }

    private init(logID: [UInt8], scope: DataKeyScope, directory: DirectoryOperations, state: State) {
        self.logID = logID
        self.scope = scope
        self.directory = directory
        self.path = directory.file(FileNames.keyStore)
        self.state = Mutex(state)
    }

    // MARK: - Opening

    /// Creates the key store of a new log (atomically), with the log's one
    /// data key when the scope is `.log`.
    static func create(
        in directory: DirectoryOperations, logID: [UInt8], encryption: LogEncryption
    ) throws -> KeyRing {
        let master = try masterKey(from: encryption.keyProvider)
        let stored = encryption.scope.stored
        let header = KeyStoreFile.Header(
            version: FormatVersion.current, scope: stored.scope, separator: stored.separator, logID: logID,
            masterCheck: check(master: master, logID: logID))
        var bytes = header.encode()
        var state = State(master: master, end: 0)
        if encryption.scope == .log {
            let key = SymmetricKey(size: .bits256)
            let entry = try wrap(key, id: 1, name: [], master: master, logID: logID)
            state.entryOffsets[1] = bytes.count
            bytes += entry.encode()
            state.keys[1] = .key(key)
            state.scopeOf[1] = []
            state.current[[]] = 1
            state.nextID = 2
        }
        state.end = bytes.count
        try directory.writeAtomically(FileNames.keyStore, bytes: bytes)
        state.file = try FileHandle.open(directory.file(FileNames.keyStore), create: directory.modes, faults: directory.faults)
        return KeyRing(logID: logID, scope: encryption.scope, directory: directory, state: state)
    }

    /// Loads the key store of an existing log. A torn last entry (a key
    /// being added when the power went) is cut by a writer; a damaged
    /// entry anywhere else is corruption naming the file and offset, unless
    /// a later forgetting entry names its key (a torn shred).
    static func load(in directory: DirectoryOperations, logID: [UInt8], provider: any KeyProvider) throws -> KeyRing {
        let path = directory.file(FileNames.keyStore)
        guard let contents = try KeyStoreContents.read(in: directory) else {
            throw EventLogError.encryptionMismatch(
                path: path, reason: "the log is encrypted but its key store is missing: its events cannot be read")
        }
        let header = contents.header
        guard header.logID == logID else { throw EventLogError.foreignFile(file: path, reason: "the key store belongs to another log") }
        let master = try masterKey(from: provider)
        guard check(master: master, logID: logID) == header.masterCheck else { throw EventLogError.wrongMasterKey(file: path) }

        var state = State(master: master, end: KeyStoreFile.headerSize)
        var maxID: UInt32 = 0
        for (offset, entry) in contents.entries {
            maxID = max(maxID, entry.keyID)
            if entry.kind == KeyStoreFile.kindForgetting {
                state.forgotten.insert(entry.keyID)
            } else if !entry.isShredded {
                state.keys[entry.keyID] = .wrapped(name: entry.scopeName, bytes: entry.wrappedKey)
                state.current[entry.scopeName] = entry.keyID
                state.scopeOf[entry.keyID] = entry.scopeName
                state.entryOffsets[entry.keyID] = offset
            } else {
                state.forgotten.insert(entry.keyID)
                state.scopeOf[entry.keyID] = entry.scopeName
                state.entryOffsets[entry.keyID] = offset
            }
        }
        if let damage = contents.unexplainedDamage.first {
            throw EventLogError.corruption(
                file: path, offset: Int64(damage.offset), reason: KeyStoreContents.damageReason(keyID: damage.keyID))
        }
        for entry in contents.damaged {
            maxID = max(maxID, entry.keyID)
            // A shred torn by a crash: its forgetting entry came first.
            if entry.offset < contents.lastValidEnd { state.entryOffsets[entry.keyID] = entry.offset }
        }
        for id in state.forgotten {
            state.keys[id] = nil
        }
        // Forgotten keys are no scope's current key.
        state.current = state.current.filter { !state.forgotten.contains($0.value) }
        state.nextID = maxID &+ 1
        state.end = contents.lastValidEnd
        state.fileLength = contents.length
        return KeyRing(
            logID: logID, scope: DataKeyScope(scope: header.scope, separator: header.separator), directory: directory, state: state)
    }

    /// Makes the ring writable (a writer's open, once every check passed):
    /// a torn last entry is cut first. It was never part of a synced key:
    /// keys are synced before any batch uses them.
    func openForWriting() throws {
        try state.withLock { (state) throws in
            let file = try FileHandle.open(path, faults: directory.faults)
            if state.fileLength > state.end {
                try file.setLength(Int64(state.end))
                try file.datasync()
                state.fileLength = state.end
            }
            state.file = file
        }
    }

    // MARK: - Lookups

    func dataKey(_ id: UInt32) -> DataKeyLookup {
        state.withLock { state in
            switch state.keys[id] {
            case .key(let key)?: return .key(key)
            case .wrapped(let name, let bytes)?:
                guard let key = try? Self.unwrap(bytes, id: id, name: name, master: state.master, logID: logID) else { return .missing }
                state.keys[id] = .key(key)
                return .key(key)
            case nil:
                return state.forgotten.contains(id) ? .forgotten : .missing
            }
        }
    }

    /// How many data keys were forgotten (part of what a cleaner checkpoint was judged under).
    var forgottenCount: Int { state.withLock { $0.forgotten.count } }

    /// The forgotten data keys' ids.
    func forgottenKeys() -> Set<UInt32> { state.withLock { $0.forgotten } }

    /// True when key `id` was forgotten.
    func isForgotten(_ id: UInt32) -> Bool { state.withLock { $0.forgotten.contains(id) } }

    /// The current data key of each scope name, creating (and syncing) the
    /// ones that have none yet, in one write.
    func currentKeys(for names: [[UInt8]]) throws(EventLogError) -> [(id: UInt32, key: SymmetricKey)] {
        try state.withLock { (state) throws(EventLogError) -> [(id: UInt32, key: SymmetricKey)] in
            var created: [UInt8] = []
            var result: [(id: UInt32, key: SymmetricKey)] = []
            var fresh: [(UInt32, SymmetricKey, [UInt8], Int)] = []
            for name in names {
                if let id = state.current[name] {
                    switch state.keys[id] {
                    case .key(let key)?: result.append((id, key)); continue
                    case .wrapped(let name, let bytes)?:
                        do {
                            let key = try Self.unwrap(bytes, id: id, name: name, master: state.master, logID: logID)
                            state.keys[id] = .key(key)
                            result.append((id, key))
                            continue
                        } catch {
                            throw .corruption(file: path, offset: Int64(state.entryOffsets[id] ?? 0), reason: "data key \(id) does not unwrap")
                        }
                    case nil: break
                    }
                }
                guard state.file != nil else { throw .readOnly }
                if let failure = state.failure { throw .writerStopped(reason: failure) }
                let id = state.nextID
                state.nextID &+= 1
                let key = SymmetricKey(size: .bits256)
                let entry: KeyStoreFile.Entry
                do { entry = try Self.wrap(key, id: id, name: name, master: state.master, logID: logID) } catch {
                    throw .invalidArgument("cannot wrap a data key: \(error)")
                }
                fresh.append((id, key, name, state.end + created.count))
                created += entry.encode()
                result.append((id, key))
            }
            if !created.isEmpty {
                try Self.write(&state, created, at: state.end)
                state.end += created.count
                for (id, key, name, offset) in fresh {
                    state.keys[id] = .key(key)
                    state.scopeOf[id] = name
                    state.current[name] = id
                    state.entryOffsets[id] = offset
                }
            }
            return result
        }
    }

    /// A data key forgotten from the start: a new key id, recorded as
    /// forgotten (a kind 2 entry alone, appended and synced, as a rotation
    /// writes for every forgotten key), and a random key that is never
    /// stored. What an import seals the events an export calls forgotten
    /// under, so that they read as forgotten again (`LogImporter`).
    func shreddedKey() throws(EventLogError) -> (id: UInt32, key: SymmetricKey) {
        try state.withLock { (state) throws(EventLogError) -> (id: UInt32, key: SymmetricKey) in
            guard state.file != nil else { throw .readOnly }
            if let failure = state.failure { throw .writerStopped(reason: failure) }
            let id = state.nextID
            let entry = KeyStoreFile.Entry(kind: KeyStoreFile.kindForgetting, keyID: id, scopeName: [], wrappedKey: []).encode()
            try Self.write(&state, entry, at: state.end)
            state.end += entry.count
            state.nextID &+= 1
            state.forgotten.insert(id)
            forgettings.add(1, ordering: .releasing)
            return (id, SymmetricKey(size: .bits256))
        }
    }

    /// Forgets the current data key of scope `name` and any earlier ones
    /// of it: a forgetting entry each (synced), then their wrapped bytes
    /// zeroed (synced). Returns the key ids forgotten (empty: the scope had none).
    func forget(scopeName name: [UInt8]) throws(EventLogError) -> [UInt32] {
        try state.withLock { (state) throws(EventLogError) -> [UInt32] in
            guard state.file != nil else { throw .readOnly }
            if let failure = state.failure { throw .writerStopped(reason: failure) }
            let all = state.keys.keys.filter { state.scopeOf[$0] == name }.sorted()
            guard !all.isEmpty else { return [] }
            var forgetting: [UInt8] = []
            for id in all {
                forgetting += KeyStoreFile.Entry(kind: KeyStoreFile.kindForgetting, keyID: id, scopeName: [], wrappedKey: []).encode()
            }
            try Self.write(&state, forgetting, at: state.end)
            state.end += forgetting.count
            for id in all {
                state.keys[id] = nil
                state.forgotten.insert(id)
            }
            state.current[name] = nil
            forgettings.add(1, ordering: .releasing)
            // Shred: the wrapped bytes of each entry overwritten with zeros.
            for id in all {
                guard let offset = state.entryOffsets[id] else { continue }
                let shredded = KeyStoreFile.Entry(
                    kind: KeyStoreFile.kindDataKey, keyID: id, scopeName: name,
                    wrappedKey: [UInt8](repeating: 0, count: KeyStoreFile.wrappedKeyBytes)).encode()
                try Self.write(&state, shredded, at: offset, sync: false)
            }
            try Self.sync(&state)
            return all
        }
    }

    /// Writes the key store again with every data key wrapped under the
    /// master key from `provider` (atomically: a crash leaves the old store
    /// or the new one). Forgotten keys stay forgotten (a forgetting entry each).
    func rotate(to provider: any KeyProvider) throws {
        let newMaster = try Self.masterKey(from: provider)
        try state.withLock { (state) throws in
            guard state.file != nil else { throw EventLogError.readOnly }
            var keys: [(UInt32, SymmetricKey, [UInt8])] = []
            for (id, slot) in state.keys {
                let name = state.scopeOf[id] ?? []
                switch slot {
                case .key(let key): keys.append((id, key, name))
                case .wrapped(let wrappedName, let bytes):
                    keys.append((id, try Self.unwrap(bytes, id: id, name: wrappedName, master: state.master, logID: logID), wrappedName))
                }
            }
            keys.sort { $0.0 < $1.0 }
            let stored = scope.stored
            var bytes = KeyStoreFile.Header(
                version: FormatVersion.current, scope: stored.scope, separator: stored.separator, logID: logID,
                masterCheck: Self.check(master: newMaster, logID: logID)
            ).encode()
            var offsets: [UInt32: Int] = [:]
            for id in state.forgotten.sorted() {
                bytes += KeyStoreFile.Entry(kind: KeyStoreFile.kindForgetting, keyID: id, scopeName: [], wrappedKey: []).encode()
            }
            for (id, key, name) in keys {
                offsets[id] = bytes.count
                bytes += try Self.wrap(key, id: id, name: name, master: newMaster, logID: logID).encode()
            }
            try directory.writeAtomically(FileNames.keyStore, bytes: bytes)
            state.file = try FileHandle.open(path, faults: directory.faults)
            state.master = newMaster
            state.entryOffsets = offsets
            state.end = bytes.count
            for (id, key, _) in keys { state.keys[id] = .key(key) }
        }
    }

    // MARK: - Crypto and I/O

    private static func masterKey(from provider: any KeyProvider) throws -> SymmetricKey {
        let bytes = try provider.masterKey()
        guard bytes.count == 32 else {
            throw EventLogError.invalidArgument("the master key has \(bytes.count) bytes: it must have 32 (AES-256)")
        }
        return SymmetricKey(data: bytes)
    }

    /// The first 16 bytes of HMAC-SHA256(master, "EventLog master key check" ‖ log id).
    static func check(master: SymmetricKey, logID: [UInt8]) -> [UInt8] {
        let code = HMAC<SHA256>.authenticationCode(for: Array("EventLog master key check".utf8) + logID, using: master)
        return Array(Array(code).prefix(KeyStoreFile.checkBytes))
    }

    /// The additional data a wrapped key is bound to: log id, key id, scope name.
    private static func wrapContext(id: UInt32, name: [UInt8], logID: [UInt8]) -> [UInt8] {
        var bytes = logID
        withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + name
    }

    private static func wrap(_ key: SymmetricKey, id: UInt32, name: [UInt8], master: SymmetricKey, logID: [UInt8]) throws -> KeyStoreFile.Entry {
        let plain = key.withUnsafeBytes { Array($0) }
        let box = try AES.GCM.seal(plain, using: master, authenticating: wrapContext(id: id, name: name, logID: logID))
        guard let combined = box.combined, combined.count == KeyStoreFile.wrappedKeyBytes else {
            throw EventLogError.invalidArgument("a wrapped data key is not \(KeyStoreFile.wrappedKeyBytes) bytes")
        }
        return KeyStoreFile.Entry(kind: KeyStoreFile.kindDataKey, keyID: id, scopeName: name, wrappedKey: Array(combined))
    }

    private static func unwrap(_ wrapped: [UInt8], id: UInt32, name: [UInt8], master: SymmetricKey, logID: [UInt8]) throws -> SymmetricKey {
        let box = try AES.GCM.SealedBox(combined: wrapped)
        let plain = try AES.GCM.open(box, using: master, authenticating: wrapContext(id: id, name: name, logID: logID))
        return SymmetricKey(data: plain)
    }

    private static func write(_ state: inout State, _ bytes: [UInt8], at offset: Int, sync: Bool = true) throws(EventLogError) {
        guard let file = state.file else { throw .readOnly }
        do {
            try file.write(bytes, at: Int64(offset))
            if sync { try file.datasync() }
        } catch {
            state.failure = error.description
            throw .io(error)
        }
    }

    private static func sync(_ state: inout State) throws(EventLogError) {
        guard let file = state.file else { throw .readOnly }
        do { try file.datasync() } catch {
            state.failure = error.description
            throw .io(error)
        }
    }
}
