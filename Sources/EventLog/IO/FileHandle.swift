#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSystemCalls

/// An open file descriptor and the few system calls the log makes on it.
///
/// Each method is one system call (named in its comment), retries `EINTR`,
/// and turns a failure into an `IOError` naming the path and the operation.
/// The descriptor is closed when the handle is released.
///
/// Thread-safe: every call is positional (`pread`/`pwrite`), so handles are
/// shared between the writer and maintenance threads. Every call may block on
/// the disk.
final class FileHandle: Sendable {
    let descriptor: Int32
    let path: String
    let faults: StorageFaults?

    private init(descriptor: Int32, path: String, faults: StorageFaults?) {
        self.descriptor = descriptor
        self.path = path
        self.faults = faults
    }

    deinit { _ = systemClose(descriptor) }

    /// Opens `path`; with `create`, creates it when missing with those
    /// modes' file mode (a file that exists keeps its mode). The
    /// corresponding C function is `open`.
    ///
    /// A writable open never follows a symbolic link (`O_NOFOLLOW`: the
    /// call fails with `ELOOP`): every file the log writes is its own, in
    /// its directory, and a link planted there (by another user, or a
    /// hostile archive) must not make it write anywhere else. Read-only
    /// opens follow links.
    static func open(
        _ path: String, readOnly: Bool = false, create: CreateModes? = nil, exclusive: Bool = false,
        faults: StorageFaults?
    ) throws(IOError) -> FileHandle {
        if case .fail(let e)? = faults?.decide(.open, path) { throw IOError(operation: "open", path: path, errno: e) }
        var flags: Int32 = readOnly ? O_RDONLY : O_RDWR
        flags |= O_CLOEXEC
        if !readOnly { flags |= O_NOFOLLOW }
        if create != nil { flags |= O_CREAT }
        if exclusive { flags |= O_EXCL }
        while true {
            let fd = systemOpen(path, flags, create?.file ?? 0)
            if fd >= 0 {
                let file = FileHandle(descriptor: fd, path: path, faults: faults)
                faults?.recorder?.opened(file)
                return file
            }
            if errno == EINTR { continue }
            throw IOError(operation: "open", path: path, errno: errno)
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read
    /// (fewer only at the end of the file). The corresponding C function is `pread`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(IOError) -> Int {
        if case .fail(let e)? = faults?.decide(.read, path) { throw IOError(operation: "pread", path: path, errno: e) }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n > 0 { done += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw IOError(operation: "pread", path: path, errno: errno)
        }
        return done
    }

    /// Writes all of `bytes` at `offset` without moving the file position.
    /// The corresponding C function is `pwrite`; short writes are continued.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(IOError) {
        if let faults { return try write(bytes, at: offset, faults: faults) }
        let (_, failure) = writeAll(bytes, at: offset)
        if let failure { throw IOError(operation: "pwrite", path: path, errno: failure) }
    }

    /// `write` under a fault plan: asks it first, and tells its recorder
    /// what was written (for a torn or failed write, the part written).
    private func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64, faults: StorageFaults) throws(IOError) {
        var toWrite = bytes.count
        var injected: Int32? = nil
        switch faults.decide(.write, path) {
        case .fail(let e)?: throw IOError(operation: "pwrite", path: path, errno: e)
        case .tornWrite(let keep, let e)?: toWrite = max(0, min(keep, bytes.count)); injected = e
        case nil: break
        }
        let (written, failure) = writeAll(UnsafeRawBufferPointer(rebasing: bytes[0..<toWrite]), at: offset)
        faults.recorder?.wrote(self, UnsafeRawBufferPointer(rebasing: bytes[0..<written]), at: offset)
        if let e = failure ?? injected { throw IOError(operation: "pwrite", path: path, errno: e) }
    }

    /// `pwrite`s until all of `bytes` are written or a call fails: the bytes
    /// written, and the failure's `errno`.
    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int64) -> (written: Int, errno: Int32?) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n >= 0 { done += n; continue }
            if errno == EINTR { continue }
            return (done, errno)
        }
        return (done, nil)
    }

    /// Writes a byte array at `offset` (cold paths: headers, small files).
    func write(_ bytes: [UInt8], at offset: Int64) throws(IOError) {
        var failure: IOError?
        bytes.withUnsafeBytes { raw in
            do throws(IOError) { try write(raw, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Flushes the file's data (and the metadata needed to read it back) to the
    /// device. The corresponding C function is `fdatasync`.
    func datasync() throws(IOError) {
        if case .fail(let e)? = faults?.decide(.datasync, path) { throw IOError(operation: "fdatasync", path: path, errno: e) }
        while fdatasync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "fdatasync", path: path, errno: errno)
        }
        faults?.recorder?.synced(self)
    }

    /// Flushes the file's data and all of its metadata. The corresponding C
    /// function is `fsync`.
    func sync() throws(IOError) {
        if case .fail(let e)? = faults?.decide(.sync, path) { throw IOError(operation: "fsync", path: path, errno: e) }
        while fsync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "fsync", path: path, errno: errno)
        }
        faults?.recorder?.synced(self)
    }

    /// Sets the file's length, growing it with a hole (no blocks allocated) or
    /// shrinking it. The corresponding C function is `ftruncate`. The log only
    /// ever grows files that may be mapped.
    func setLength(_ length: Int64) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.truncate, path) { throw IOError(operation: "ftruncate", path: path, errno: e) }
        while ftruncate(descriptor, off_t(length)) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "ftruncate", path: path, errno: errno)
        }
        faults?.recorder?.lengthSet(self, to: length)
    }

    /// Allocates storage for `[offset, offset + length)` (`fallocate` with
    /// mode 0), so writes there cannot fail for lack of room; what the range
    /// holds does not change. Returns false where the file system cannot
    /// (nothing was done); a full disk throws (ENOSPC).
    func reserve(at offset: Int64, length: Int64) throws(IOError) -> Bool {
        guard length > 0 else { return true }
        if case .fail(let e)? = faults?.decide(.allocate, path) { throw IOError(operation: "fallocate", path: path, errno: e) }
        while eventlog_reserve(descriptor, offset, length) != 0 {
            if errno == EINTR { continue }
            if errno == EOPNOTSUPP || errno == ENOSYS { return false }
            throw IOError(operation: "fallocate", path: path, errno: errno)
        }
        return true
    }

    /// Makes `[offset, offset + length)` read as zeros without changing the
    /// file's length (`fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`).
    /// Where the file system cannot punch holes, zeros are written instead
    /// (each write told to the recorder as a write).
    func zeroRange(at offset: Int64, length: Int64) throws(IOError) {
        guard length > 0 else { return }
        if case .fail(let e)? = faults?.decide(.allocate, path) { throw IOError(operation: "fallocate", path: path, errno: e) }
        var punched = true
        while eventlog_punch_hole(descriptor, offset, length) != 0 {
            if errno == EINTR { continue }
            if errno == EOPNOTSUPP || errno == ENOSYS { punched = false; break }
            throw IOError(operation: "fallocate", path: path, errno: errno)
        }
        if punched {
            faults?.recorder?.zeroed(self, at: offset, length: length)
            return
        }
        let chunk = 1 << 16
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var done: Int64 = 0
        while done < length {
            let n = Int(min(Int64(chunk), length - done))
            try write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: offset + done)
            done += Int64(n)
        }
    }

    /// Starts writeback of `[offset, offset + length)` without waiting for it
    /// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`). It makes no promise
    /// of durability; but a failure (EIO) is reported, since the kernel may
    /// not report that write error to a later `fdatasync` again.
    func startWriteback(at offset: Int64, length: Int64) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.writeback, path) { throw IOError(operation: "sync_file_range", path: path, errno: e) }
        while eventlog_start_writeback(descriptor, offset, length) != 0 {
            if errno == EINTR { continue }
            if errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL || errno == ESPIPE { return }
            throw IOError(operation: "sync_file_range", path: path, errno: errno)
        }
    }

    /// Writes the dirty pages of `[offset, offset + length)` and waits until
    /// the device has them (`sync_file_range` with `SYNC_FILE_RANGE_WAIT_BEFORE`,
    /// `WRITE` and `WAIT_AFTER`). Not a durability barrier (no metadata, no
    /// cache flush): a bound on how much of a large write is in flight, so
    /// that it does not stand in a queue before another file's `fdatasync`.
    /// A failure (EIO) is reported, as for `startWriteback`.
    func waitForWriteback(at offset: Int64, length: Int64) throws(IOError) {
        if case .fail(let e)? = faults?.decide(.writeback, path) { throw IOError(operation: "sync_file_range", path: path, errno: e) }
        while eventlog_wait_writeback(descriptor, offset, length) != 0 {
            if errno == EINTR { continue }
            if errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL || errno == ESPIPE { return }
            throw IOError(operation: "sync_file_range", path: path, errno: errno)
        }
    }

    /// The file's current length in bytes. The corresponding C function is `fstat`.
    func length() throws(IOError) -> Int64 {
        var info = stat()
        while fstat(descriptor, &info) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "fstat", path: path, errno: errno)
        }
        return Int64(info.st_size)
    }

    /// Bytes of storage allocated to the file (`st_blocks * 512`).
    func allocatedBytes() throws(IOError) -> Int64 {
        var info = stat()
        while fstat(descriptor, &info) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "fstat", path: path, errno: errno)
        }
        return Int64(info.st_blocks) * 512
    }

    /// Takes an exclusive advisory lock, waiting for it (`flock(LOCK_EX)`).
    func lockExclusive() throws(IOError) {
        while flock(descriptor, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "flock", path: path, errno: errno)
        }
    }

    /// The file's identity (device and inode): a renamed-over path no longer matches it.
    func identity() throws(IOError) -> FileIdentity {
        var info = stat()
        while fstat(descriptor, &info) != 0 {
            if errno == EINTR { continue }
            throw IOError(operation: "fstat", path: path, errno: errno)
        }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Releases an advisory lock (`flock(LOCK_UN)`).
    func unlock() {
        _ = flock(descriptor, LOCK_UN)
    }

    /// Takes an exclusive advisory lock without waiting (`flock(LOCK_EX | LOCK_NB)`).
    /// Returns false when another open file description holds it.
    func tryLockExclusive() throws(IOError) -> Bool {
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            if errno == EWOULDBLOCK { return false }
            throw IOError(operation: "flock", path: path, errno: errno)
        }
        return true
    }
}

// The C functions under names that do not collide with the methods above.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }

/// A file's device and inode.
struct FileIdentity: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    /// The identity of the file at `path` now, nil when there is none.
    static func of(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }
}
