/// The operations of the I/O seam that a test can make fail.
///
/// Every system call the log makes on its files goes through `FileHandle`,
/// `MappedRegion` or `DirectoryOperations`; each asks the log's `StorageFaults`
/// (when one is set) before it acts. Production code never sets one.
public enum StorageOperation: String, Sendable {
    /// `open` of a file.
    case open
    /// `pread`.
    case read
    /// `pwrite`.
    case write
    /// `fdatasync`.
    case datasync
    /// `sync_file_range` (writeback started, or waited for, without a durability barrier).
    case writeback
    /// `fsync` of a file.
    case sync
    /// `fallocate` (space reserved ahead of appends).
    case allocate
    /// `ftruncate`.
    case truncate
    /// `rename`.
    case rename
    /// `unlink`.
    case unlink
    /// `mmap`.
    case map
    /// `fsync` of the log directory (after a create, rename or unlink).
    case syncDirectory
    /// `mkdir` of a directory inside the log directory (`Log.repair`'s damaged directory).
    case makeDirectory
}

/// What an injected fault does.
public enum StorageFault: Sendable, Equatable {
    /// The call fails with this `errno` and does nothing.
    case fail(errno: Int32)
    /// Only the first `keepBytes` bytes are written, then the call fails with
    /// `errno` (a torn write, as a crash or a full disk leaves it).
    case tornWrite(keepBytes: Int, errno: Int32)
}

/// A fault plan for the storage seam, for tests (TigerBeetle-style fault
/// injection). `decide` is called before each operation with the operation
/// and the path; returning `nil` lets the operation run normally.
///
/// The seam also tells `recorder`, when there is one (a `PowerLossSimulator`
/// sets it), what each operation changed, after it succeeded.
///
/// Thread-safe as long as `decide` is.
public final class StorageFaults: Sendable {
    let decide: @Sendable (StorageOperation, String) -> StorageFault?
    let recorder: PowerLossRecorder?

    /// A fault plan: `decide` is asked before each operation, with the operation and the path, and returns the fault to inject, or nil to let it run.
    public init(_ decide: @escaping @Sendable (StorageOperation, String) -> StorageFault?) {
        self.decide = decide
        self.recorder = nil
    }

    init(
        decide: @escaping @Sendable (StorageOperation, String) -> StorageFault?, recorder: PowerLossRecorder?
    ) {
        self.decide = decide
        self.recorder = recorder
    }
}
