#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Simulates process crashes and power losses for one log directory (tests
/// only), behind the I/O seam.
///
/// Give `faults` to the log (`LogOptions.storageFaults`); every file
/// operation then goes on as usual and is also recorded in a model of what
/// the disk holds durably (synced) and what only the page cache holds. Then:
///
/// - `crash()` is a kill -9: the page cache survives, nothing is lost, but
///   the abandoned log's `faults` fails every later operation with EIO so
///   its threads change nothing; what was not synced may still be lost by
///   a later power loss.
/// - `powerLoss()` also rewrites the directory into a state a real kernel
///   could leave after losing power (see PowerLossOutcome.swift), drawn from
///   the seed, which becomes the new durable baseline.
///
/// Each of them starts a new *epoch*: `faults` then returns a fresh
/// `StorageFaults` for the log opened next.
///
/// Limits:
/// - One directory, its regular files only; no subdirectories.
/// - Every change to the directory after `init` must go through the seam
///   (a file made outside it is taken as synced when the seam first meets
///   it; any other change outside is unknown, and undone by a power loss).
/// - An operation already past its `StorageFaults` check when the epoch
///   ends still completes (and is recorded, unless a power loss came
///   first). After a `powerLoss()`, one on a descriptor (write, sync,
///   truncate) cannot matter: every file is recreated as a new inode, so
///   the abandoned log's descriptors and mappings refer to files no longer
///   in the directory. One on a path (create, rename, unlink) landing after
///   the rewrite would change the new state unrecorded: release the
///   abandoned log first (its background threads may still be running;
///   the window is the few instructions between the check and the call).
///   After a `crash()` alone, the abandoned log also still holds its
///   `flock` until it is released.
/// - The same seed gives the same outcome for the same sequence of
///   operations; a log's background threads may order them differently.
///
/// Thread-safe.
final class PowerLossSimulator: Sendable {
    /// The directory, as given.
    let directory: String
    private let shared: SharedPowerLossModel
    private let decide: (@Sendable (StorageOperation, String) -> StorageFault?)?
    private let state: Mutex<Epoch>

    private struct Epoch {
        var number: Int
        var recorder: PowerLossRecorder
        var faults: StorageFaults
        var random: PowerLossRandom
    }

    /// Takes the regular files in `directory` (created when missing) as
    /// durable. `decide`, when given, is asked before each operation as a
    /// plain `StorageFaults` would be (to inject errors as well).
    init(
        directory: String, seed: UInt64,
        decide: (@Sendable (StorageOperation, String) -> StorageFault?)? = nil
    ) throws(IOError) {
        try DirectoryOperations.createIfMissing(directory, modes: .ownerOnly)
        self.directory = directory
        self.decide = decide
        let model = PowerLossModel(baseline: try Self.readFiles(in: directory), generation: 0)
        shared = SharedPowerLossModel(directory: directory, model: model)
        let recorder = PowerLossRecorder(shared: shared, generation: 0)
        state = Mutex(
            Epoch(number: 0, recorder: recorder, faults: Self.faults(recorder, decide), random: PowerLossRandom(seed: seed)))
    }

    /// The faults of the current epoch, for `LogOptions.storageFaults` or a
    /// `FileHandle`/`DirectoryOperations` under test.
    var faults: StorageFaults { state.withLock { $0.faults } }

    /// The current epoch: 0, then one more after each crash or power loss.
    var epoch: Int { state.withLock { $0.number } }

    /// A process crash: the current epoch's `faults` fails every later
    /// operation with EIO; nothing is lost. Starts a new epoch.
    func crash() {
        state.withLock { epoch in
            epoch.recorder.freeze()
            start(&epoch, generation: epoch.recorder.generation)
        }
    }

    /// A power loss: ends the epoch as `crash()` does, then rewrites the
    /// directory into a state a kernel could leave (chosen with the seeded
    /// generator), which becomes the durable baseline of the new epoch.
    ///
    /// Throws when the directory cannot be rewritten; its state is then undefined.
    @discardableResult
    func powerLoss() throws(IOError) -> PowerLossReport {
        try state.withLock { (epoch) throws(IOError) -> PowerLossReport in
            epoch.recorder.freeze()
            var random = epoch.random
            let generation = epoch.recorder.generation + 1
            defer {
                epoch.random = random
                start(&epoch, generation: generation)
            }
            return try shared.model.withLock { (model) throws(IOError) -> PowerLossReport in
                let (files, report) = model.powerLossOutcome(&random)
                // From here on, what the old descriptors report is ignored.
                model = PowerLossModel(baseline: files, generation: generation)
                try Self.replaceFiles(in: directory, with: files)
                return report
            }
        }
    }

    private func start(_ epoch: inout Epoch, generation: Int) {
        epoch.number += 1
        epoch.recorder = PowerLossRecorder(shared: shared, generation: generation)
        epoch.faults = Self.faults(epoch.recorder, decide)
    }

    private static func faults(
        _ recorder: PowerLossRecorder, _ decide: (@Sendable (StorageOperation, String) -> StorageFault?)?
    ) -> StorageFaults {
        StorageFaults(
            decide: { op, path in
                if recorder.isFrozen { return .fail(errno: EIO) }
                return decide?(op, path)
            }, recorder: recorder)
    }

    // MARK: The directory on disk, with plain system calls

    /// The regular files in `directory`, a file with several names (hard links) once.
    private static func readFiles(in directory: String) throws(IOError) -> [PowerLossModel.File] {
        var files: [PowerLossModel.File] = []
        var byInode: [UInt64: Int] = [:]
        for name in try DirectoryOperations(path: directory, faults: nil).list().sorted() {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if let index = byInode[UInt64(info.st_ino)] {
                files[index].names.append(name)
                continue
            }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw IOError(operation: "open", path: path, errno: errno) }
            defer { close(fd) }
            let (content, length) = try SparseBytes.load(descriptor: fd, path: path)
            byInode[UInt64(info.st_ino)] = files.count
            files.append(PowerLossModel.File(names: [name], content: content, length: length))
        }
        return files
    }

    /// Removes every regular file in `directory`, then creates `files`:
    /// each a new inode, its length set, its non-zero pages written, its
    /// other names linked.
    private static func replaceFiles(in directory: String, with files: [PowerLossModel.File]) throws(IOError) {
        for name in try DirectoryOperations(path: directory, faults: nil).list() {
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if unlink(path) != 0 && errno != ENOENT { throw IOError(operation: "unlink", path: path, errno: errno) }
        }
        for file in files {
            let path = directory + "/" + file.names[0]
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, CreateModes.ownerOnly.file)
            guard fd >= 0 else { throw IOError(operation: "open", path: path, errno: errno) }
            defer { close(fd) }
            if ftruncate(fd, off_t(file.length)) != 0 { throw IOError(operation: "ftruncate", path: path, errno: errno) }
            let size = Int64(SparseBytes.pageSize)
            for page in file.content.sortedPageIndices where page * size < file.length {
                let count = Int(min(size, file.length - page * size))
                let bytes = file.content.pages[page]!
                let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, count, off_t(page * size)) }
                if written != count { throw IOError(operation: "pwrite", path: path, errno: written < 0 ? errno : EIO) }
            }
            for name in file.names.dropFirst() where link(path, directory + "/" + name) != 0 {
                throw IOError(operation: "link", path: directory + "/" + name, errno: errno)
            }
        }
    }
}
