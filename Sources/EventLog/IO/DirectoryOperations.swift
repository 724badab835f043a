#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory-level system calls: create, list, rename, unlink, and the
/// directory fsync that makes each of them durable.
///
/// Every call blocks on the disk. Thread-safe.
struct DirectoryOperations: Sendable {
    let path: String
    let faults: StorageFaults?
    /// The modes of the files and directories created in it.
    var modes: CreateModes = .ownerOnly

    func file(_ name: String) -> String { path + "/" + name }

    /// Creates the directory (and its parents) when missing, with `modes`'
    /// directory mode. The corresponding C function is `mkdir`.
    static func createIfMissing(_ path: String, modes: CreateModes) throws(IOError) {
        var components: [Substring] = path.split(separator: "/", omittingEmptySubsequences: true)
        var prefix = path.hasPrefix("/") ? "" : "."
        var created = false
        while !components.isEmpty {
            prefix += "/" + components.removeFirst()
            if mkdir(prefix, modes.directory) == 0 { created = true; continue }
            if errno == EEXIST { continue }
            throw IOError(operation: "mkdir", path: prefix, errno: errno)
        }
        _ = created
    }

    /// True when `path` exists and is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// True when `path` exists.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// The names in the directory, without `.` and `..`. The corresponding C function is `readdir`.
    func list() throws(IOError) -> [String] {
        guard let dir = opendir(path) else { throw IOError(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The directory itself, or a file or directory in it, that the group or
    /// others can write (`CreateModes.isWritableByOthers`): its path and
    /// mode, the first found; nil when there is none. Symbolic links are
    /// not followed (their own mode means nothing).
    func writableByOthers(among names: [String]) -> (path: String, mode: mode_t)? {
        for candidate in [path] + names.map(file) {
            guard let (mode, counts) = CreateModes.permissions(of: candidate), counts else { continue }
            if CreateModes.isWritableByOthers(mode) { return (candidate, mode) }
        }
        return nil
    }

    /// Makes the directory's entries durable (`open(O_RDONLY|O_DIRECTORY)` + `fsync`).
    /// Called after every create, rename or unlink that must survive a crash.
    func sync() throws(IOError) {
        if case .fail(let e)? = faults?.decide(.syncDirectory, path) {
            throw IOError(operation: "fsync", path: path, errno: e)
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw IOError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "fsync", path: path, errno: errno)
        }
        faults?.recorder?.directorySynced(path)
    }

    /// Renames `from` to `to` inside the directory, replacing `to` atomically,
    /// then syncs the directory. The corresponding C function is `rename`.
    func rename(_ from: String, to: String) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.rename, file(from)) {
            throw IOError(operation: "rename", path: file(from), errno: e)
        }
        if Glibc.rename(file(from), file(to)) != 0 {
            throw IOError(operation: "rename", path: file(from), errno: errno)
        }
        faults?.recorder?.renamed(file(from), to: file(to))
        try sync()
    }

    /// Creates the directory `name` inside this one (with `modes`' directory
    /// mode), then syncs this one.
    /// Fails when it exists. The corresponding C function is `mkdir`.
    func makeDirectory(_ name: String) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.makeDirectory, file(name)) {
            throw IOError(operation: "mkdir", path: file(name), errno: e)
        }
        if mkdir(file(name), modes.directory) != 0 { throw IOError(operation: "mkdir", path: file(name), errno: errno) }
        try sync()
    }

    /// Moves file `name` into `other` (a directory on the same file system,
    /// keeping the name), then syncs `other` and this directory, in that
    /// order: the new entry is durable before the old one's removal is. The
    /// corresponding C function is `rename`.
    func move(_ name: String, into other: DirectoryOperations) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.rename, file(name)) {
            throw IOError(operation: "rename", path: file(name), errno: e)
        }
        if Glibc.rename(file(name), other.file(name)) != 0 {
            throw IOError(operation: "rename", path: file(name), errno: errno)
        }
        // Gone from this directory; the power-loss model knows no other.
        faults?.recorder?.unlinked(file(name))
        try other.sync()
        try sync()
    }

    /// Removes a file when present, then syncs the directory. The corresponding C function is `unlink`.
    func remove(_ name: String) throws(IOError) {
        if try removeUnsynced(name) { try sync() }
    }

    /// Removes a file when present, without syncing the directory (the
    /// caller syncs it after its other changes); true when it was there.
    /// The corresponding C function is `unlink`.
    @discardableResult
    func removeUnsynced(_ name: String) throws(IOError) -> Bool {
        if case .fail(let e)? = faults?.decide(.unlink, file(name)) {
            throw IOError(operation: "unlink", path: file(name), errno: e)
        }
        if unlink(file(name)) != 0 {
            if errno == ENOENT { return false }
            throw IOError(operation: "unlink", path: file(name), errno: errno)
        }
        faults?.recorder?.unlinked(file(name))
        return true
    }

    /// Writes `bytes` to a new file `name` atomically: write `name.tmp`, fdatasync
    /// it, rename it over `name`, fsync the directory.
    func writeAtomically(_ name: String, bytes: [UInt8]) throws(IOError) {
        try writeTemporary(name, bytes: bytes)
        try rename(name + ".tmp", to: name)
    }

    /// `writeAtomically(_:bytes:)` of bytes held elsewhere (a `PageBlock`).
    func writeAtomically(_ name: String, bytes: UnsafeRawBufferPointer) throws(IOError) {
        try writeTemporary(name, bytes: bytes)
        try rename(name + ".tmp", to: name)
    }

    /// Writes `bytes` to `name.tmp` (replacing it) and fdatasyncs it: the first
    /// half of an atomic replace, for callers that rename several files and
    /// then sync the directory once.
    func writeTemporary(_ name: String, bytes: [UInt8]) throws(IOError) {
        try writeTemporary(name) { (handle) throws(IOError) in try handle.write(bytes, at: 0) }
    }

    /// `writeTemporary(_:bytes:)` of bytes held elsewhere.
    func writeTemporary(_ name: String, bytes: UnsafeRawBufferPointer) throws(IOError) {
        try writeTemporary(name) { (handle) throws(IOError) in try handle.write(bytes, at: 0) }
    }

    /// `name.tmp` created or emptied, filled by `write`, then fdatasynced.
    private func writeTemporary(_ name: String, write: (FileHandle) throws(IOError) -> Void) throws(IOError) {
        let handle = try FileHandle.open(file(name + ".tmp"), create: modes, faults: faults)
        try handle.setLength(0)
        try write(handle)
        try handle.datasync()
    }

    /// Renames `name.tmp` over `name` without syncing the directory (the caller does).
    func renameTemporaryUnsynced(_ name: String) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.rename, file(name + ".tmp")) {
            throw IOError(operation: "rename", path: file(name + ".tmp"), errno: e)
        }
        if Glibc.rename(file(name + ".tmp"), file(name)) != 0 {
            throw IOError(operation: "rename", path: file(name + ".tmp"), errno: errno)
        }
        faults?.recorder?.renamed(file(name + ".tmp"), to: file(name))
    }

    /// Creates file `name` with `bytes` unless it exists: writes
    /// `name.<pid>.tmp`, fdatasyncs it, links it to `name` (which, unlike a
    /// rename, never replaces a file another process created meanwhile),
    /// removes the temporary name, syncs the directory.
    func createAtomically(_ name: String, bytes: [UInt8]) throws(IOError) {
        let temporary = "\(name).\(getpid()).tmp"
        try writeTemporary(String(temporary.dropLast(4)), bytes: bytes)
        if link(file(temporary), file(name)) == 0 {
            faults?.recorder?.linked(file(temporary), as: file(name))
        } else if errno != EEXIST {
            let failure = IOError(operation: "link", path: file(name), errno: errno)
            if unlink(file(temporary)) == 0 { faults?.recorder?.unlinked(file(temporary)) }
            throw failure
        }
        if unlink(file(temporary)) == 0 { faults?.recorder?.unlinked(file(temporary)) }
        try sync()
    }

    /// Reads a whole small file, or nil when it does not exist. Bounded: of
    /// a file longer than `limit` bytes (the most its kind can hold), only
    /// the first `limit + 1` are read, which its decoder then refuses as the
    /// wrong length (a damaged or hostile file never makes the process
    /// allocate more than its kind's limit).
    func readWhole(_ name: String, atMost limit: Int) throws(IOError) -> [UInt8]? {
        let handle: FileHandle
        do { handle = try FileHandle.open(file(name), readOnly: true, faults: faults) } catch {
            if error.errno == ENOENT { return nil }
            throw error
        }
        let count = Int(min(try handle.length(), Int64(max(0, limit)) + 1))
        var bytes = [UInt8](repeating: 0, count: count)
        var result: Result<Int, IOError> = .success(0)
        bytes.withUnsafeMutableBytes { raw in
            do throws(IOError) { result = .success(try handle.read(into: raw, at: 0)) } catch { result = .failure(error) }
        }
        let read = try result.get()
        if read < count { bytes.removeLast(count - read) }
        return bytes
    }
}
