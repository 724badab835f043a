#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The seam's side of the power-loss simulator (tests only): `FileHandle`
/// and `DirectoryOperations` tell it, after each operation that succeeded
/// (or the part of it that did), what changed, and it keeps the
/// `PowerLossModel` of its directory up to date.
///
/// One recorder per epoch of a `PowerLossSimulator` (one `StorageFaults`);
/// all of them share the model. A recorder whose files a power loss
/// replaced (an older `generation`) is ignored: what it reports went to
/// files no longer in the directory.
///
/// Files outside the directory are not modelled; their operations are
/// ignored. Paths are compared after removing repeated slashes and `.`
/// components, not after resolving symbolic links: give the simulator and
/// the log the same path. Thread-safe.
final class PowerLossRecorder: Sendable {
    let shared: SharedPowerLossModel
    let generation: Int
    private let frozen = Atomic<Bool>(false)

    init(shared: SharedPowerLossModel, generation: Int) {
        self.shared = shared
        self.generation = generation
    }

    /// True once its epoch ended: its `StorageFaults` then fails every operation.
    var isFrozen: Bool { frozen.load(ordering: .acquiring) }

    func freeze() { frozen.store(true, ordering: .releasing) }

    private func update(_ body: (inout PowerLossModel) -> Void) {
        shared.model.withLock { model in
            guard model.generation == generation else { return }
            body(&model)
        }
    }

    // MARK: File hooks (FileHandle)

    /// `open` succeeded: the descriptor names the file now at `file.path`.
    /// A name the model does not have is a file the open just created (or
    /// one made outside the seam, taken as it is: content synced, entry not).
    func opened(_ file: FileHandle) {
        let name = shared.name(of: file.path)
        update { model in
            model.bind(file.descriptor, to: name) { try? SparseBytes.load(descriptor: file.descriptor, path: file.path) }
        }
    }

    /// `pwrite` wrote `bytes` at `offset` (for a torn or failed write, the part written).
    func wrote(_ file: FileHandle, _ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        guard !bytes.isEmpty else { return }
        let end = offset + Int64(bytes.count)
        let change: PowerLossModel.FileChange =
            SparseBytes.isZero(bytes) ? .zero(from: offset, to: end) : .write(offset: offset, bytes: Array(bytes))
        update { $0.record(change, on: file.descriptor) { max($0, end) } }
    }

    /// `fdatasync` or `fsync` succeeded: the file's content and length are durable.
    func synced(_ file: FileHandle) {
        update { $0.sync(file.descriptor) }
    }

    /// `ftruncate` set the length: growing adds zeros, shrinking drops bytes.
    func lengthSet(_ file: FileHandle, to length: Int64) {
        update { $0.record(.zero(from: length, to: .max), on: file.descriptor) { _ in length } }
    }

    /// `[offset, offset + length)` reads as zeros (a punched hole; the length is unchanged).
    func zeroed(_ file: FileHandle, at offset: Int64, length: Int64) {
        guard length > 0 else { return }
        update { $0.record(.zero(from: offset, to: offset + length), on: file.descriptor) { $0 } }
    }

    // MARK: Directory hooks (DirectoryOperations), full paths

    /// `rename(from, to)` succeeded.
    func renamed(_ from: String, to: String) {
        guard let source = shared.name(of: from), let target = shared.name(of: to) else { return }
        update { model in
            if model.names[source] == nil, let loaded = Self.load(to) { model.adopt(source, loaded) }
            // Renaming a file onto one of its own names does nothing (POSIX).
            guard let node = model.names[source], model.names[target] != node else { return }
            model.change(.rename(from: source, to: target))
        }
    }

    /// `unlink(path)` succeeded.
    func unlinked(_ path: String) {
        guard let name = shared.name(of: path) else { return }
        update { model in
            if model.names[name] != nil { model.change(.unlink(name: name)) }
        }
    }

    /// `link(existing, path)` succeeded: the file has a second name.
    func linked(_ existing: String, as path: String) {
        guard let source = shared.name(of: existing), let target = shared.name(of: path) else { return }
        update { model in
            if model.names[source] == nil, let loaded = Self.load(path) { model.adopt(source, loaded) }
            guard let node = model.names[source] else { return }
            model.change(.link(name: target, node: node))
        }
    }

    /// `fsync` of the directory succeeded: every entry change so far is durable.
    func directorySynced(_ path: String) {
        guard SharedPowerLossModel.normalize(path) == shared.directory else { return }
        update { $0.syncDirectory() }
    }

    /// The content of a file the model did not know (made outside the seam).
    private static func load(_ path: String) -> (content: SparseBytes, length: Int64)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return try? SparseBytes.load(descriptor: fd, path: path)
    }
}

/// The model every recorder of one simulator shares, and the directory it describes.
final class SharedPowerLossModel: Sendable {
    /// The directory, normalized.
    let directory: String
    let model: Mutex<PowerLossModel>

    init(directory: String, model: consuming PowerLossModel) {
        self.directory = Self.normalize(directory)
        self.model = Mutex(model)
    }

    /// The file name of `path` when it is directly inside the directory.
    func name(of path: String) -> String? {
        let normalized = Self.normalize(path)
        guard let slash = normalized.lastIndex(of: "/"), normalized[..<slash] == directory[...] else { return nil }
        let name = normalized[normalized.index(after: slash)...]
        return name.isEmpty ? nil : String(name)
    }

    /// `path` without repeated or trailing slashes and `.` components.
    static func normalize(_ path: String) -> String {
        let parts = path.split(separator: "/").filter { $0 != "." }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }
}

/// What a power-loss simulator knows of its directory: each file (a node,
/// as an inode: a rename moves it, a link gives it another name) with its
/// content and length as of its last sync and the changes since, and the
/// directory's entries as of its last fsync and the changes since.
///
/// Its memory grows with the bytes written and not yet synced (each
/// pending write keeps its bytes) and with the data of every file.
struct PowerLossModel: Sendable {
    typealias NodeID = Int

    /// A change to a file's content.
    enum FileChange: Sendable {
        /// `pwrite` of bytes that are not all zeros.
        case write(offset: Int64, bytes: [UInt8])
        /// `[from, to)` became zeros: a punched hole, a write of zeros, or
        /// (`to == Int64.max`) the bytes an `ftruncate` cut or added.
        case zero(from: Int64, to: Int64)

        /// The bytes it changes.
        var range: Range<Int64> {
            switch self {
            case .write(let offset, let bytes): offset..<(offset + Int64(bytes.count))
            case .zero(let from, let to): from..<to
            }
        }

        func apply(to content: inout SparseBytes) {
            switch self {
            case .write(let offset, let bytes): content.write(bytes, at: offset)
            case .zero(let from, let to): content.zero(from: from, to: to)
            }
        }

        /// Applies the change to `sector`, the bytes at `[start, start + sector.count)`.
        func apply(toSector sector: inout [UInt8], at start: Int64) {
            let lower = max(range.lowerBound, start)
            let upper = min(range.upperBound, start + Int64(sector.count))
            guard lower < upper else { return }
            switch self {
            case .write(let offset, let bytes):
                for i in lower..<upper { sector[Int(i - start)] = bytes[Int(i - offset)] }
            case .zero:
                for i in lower..<upper { sector[Int(i - start)] = 0 }
            }
        }
    }

    /// A change since the file's last sync, and the file's length after it.
    struct PendingChange: Sendable {
        var change: FileChange
        var lengthAfter: Int64
    }

    /// A file (an inode).
    struct Node: Sendable {
        /// Content and length as of the last sync: what a power loss keeps.
        var synced = SparseBytes()
        var syncedLength: Int64 = 0
        /// The changes since, in order.
        var pending: [PendingChange] = []
        /// The length now.
        var length: Int64 = 0

        mutating func record(_ change: FileChange, length: Int64) {
            self.length = length
            pending.append(PendingChange(change: change, lengthAfter: length))
        }

        mutating func sync() {
            for p in pending { p.change.apply(to: &synced) }
            syncedLength = length
            pending = []
        }
    }

    /// A change to the directory's entries.
    enum DirectoryChange: Sendable, Equatable {
        case create(name: String, node: NodeID)
        case link(name: String, node: NodeID)
        case rename(from: String, to: String)
        case unlink(name: String)

        func apply(to names: inout [String: NodeID]) {
            switch self {
            case .create(let name, let node), .link(let name, let node): names[name] = node
            case .rename(let from, let to):
                if let node = names[from] { names[from] = nil; names[to] = node }
            case .unlink(let name): names[name] = nil
            }
        }
    }

    /// A file as a baseline gives it: synced, its names synced.
    struct File: Sendable {
        var names: [String]
        var content: SparseBytes
        var length: Int64
    }

    var nodes: [NodeID: Node] = [:]
    /// The entries now, and as of the last directory fsync.
    var names: [String: NodeID] = [:]
    var syncedNames: [String: NodeID] = [:]
    /// The entry changes since the last directory fsync, in order.
    var directoryChanges: [DirectoryChange] = []
    /// Open descriptors and the nodes they refer to (a closed descriptor's
    /// entry stays until the number is opened again).
    var descriptors: [Int32: NodeID] = [:]
    var nextNode: NodeID = 0
    /// Incremented by each power loss, which replaces every file.
    let generation: Int

    /// A model where `files` are all durable.
    init(baseline files: [File], generation: Int) {
        self.generation = generation
        for file in files {
            let id = add(Node(synced: file.content, syncedLength: file.length, pending: [], length: file.length))
            for name in file.names { names[name] = id }
        }
        syncedNames = names
    }

    private mutating func add(_ node: Node) -> NodeID {
        let id = nextNode
        nextNode += 1
        nodes[id] = node
        return id
    }

    /// Records that `descriptor` refers to the file named `name` (nil: a
    /// file outside the directory). A name not in the model becomes a new
    /// file with the content `load` reads (empty for a file just created).
    mutating func bind(
        _ descriptor: Int32, to name: String?, load: () -> (content: SparseBytes, length: Int64)?
    ) {
        guard let name else { descriptors[descriptor] = nil; return }
        if names[name] == nil { adopt(name, load() ?? (SparseBytes(), 0)) }
        descriptors[descriptor] = names[name]
    }

    /// Adds a file at `name` whose content is synced and whose entry is not.
    mutating func adopt(_ name: String, _ loaded: (content: SparseBytes, length: Int64)) {
        let id = add(Node(synced: loaded.content, syncedLength: loaded.length, pending: [], length: loaded.length))
        change(.create(name: name, node: id))
    }

    mutating func record(_ change: FileChange, on descriptor: Int32, length: (Int64) -> Int64) {
        guard let id = descriptors[descriptor], let old = nodes[id]?.length else { return }
        nodes[id]!.record(change, length: length(old))
    }

    mutating func sync(_ descriptor: Int32) {
        guard let id = descriptors[descriptor] else { return }
        nodes[id]?.sync()
    }

    mutating func change(_ change: DirectoryChange) {
        change.apply(to: &names)
        directoryChanges.append(change)
    }

    /// Makes the entries durable, and forgets the files no name refers to
    /// any more (no later power loss can bring them back).
    mutating func syncDirectory() {
        syncedNames = names
        directoryChanges = []
        let named = Set(names.values)
        for id in nodes.keys where !named.contains(id) { nodes[id] = nil }
    }
}
