import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CSystemCalls

/// A read-only shared mapping of a file, unmapped when released.
///
/// The log maps each segment once, at its full capacity, and never shrinks a
/// mapped file, so no access below `length` raises SIGBUS unless another
/// program truncates the file or the device fails: the readers guard against
/// that with `MappedBytes.touch`. Bytes written
/// with `pwrite` become visible through the mapping (one page cache); readers
/// only look at bytes the writer has published.
///
/// One of the few audited types that hold a raw pointer: every access goes
/// through `bytes(at:count:)`, which checks bounds.
final class MappedRegion: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let length: Int
    let path: String
    /// How many bytes from the start a scan's read-ahead thread has read
    /// (`ScanReadAhead`): their pages are mapped, and a later scan's
    /// read-ahead skips them.
    let readAheadEnd = Atomic<Int>(0)

    private init(base: UnsafeRawPointer?, length: Int, path: String) {
        self.base = base
        self.length = length
        self.path = path
    }

    deinit {
        if let base, length > 0 { munmap(UnsafeMutableRawPointer(mutating: base), length) }
    }

    /// Maps the first `length` bytes of `file` read-only and shared.
    /// The corresponding C function is `mmap`.
    static func map(_ file: FileHandle, length: Int) throws(IOError) -> MappedRegion {
        if length == 0 { return MappedRegion(base: nil, length: 0, path: file.path) }
        if case .fail(let e)? = file.faults?.decide(.map, file.path) {
            throw IOError(operation: "mmap", path: file.path, errno: e)
        }
        MappedBytes.installGuard()
        guard let pointer = mmap(nil, length, PROT_READ, MAP_SHARED, file.descriptor, 0),
              pointer != MAP_FAILED
        else { throw IOError(operation: "mmap", path: file.path, errno: errno) }
        return MappedRegion(base: UnsafeRawPointer(pointer), length: length, path: file.path)
    }

    /// How the kernel reads the pages of a mapping that are not in memory yet.
    enum Access {
        /// Read around each page touched (the default, `MADV_NORMAL`): for walks through the data.
        case normal
        /// Read only the pages touched (`MADV_RANDOM`): for a few scattered reads, such as a segment's
        /// header and last batch, around each of which a fault would otherwise read as much as the
        /// device's read-ahead (`read_ahead_kb`; 8 MiB on some machines) from the disk.
        case random
    }

    /// Tells the kernel how the mapping will be read (`madvise`); a hint, which changes no byte read.
    func advise(_ access: Access) {
        guard let base else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), length, access == .random ? MADV_RANDOM : MADV_NORMAL)
    }

    /// Asks the kernel to read `[offset, offset + count)` ahead (`madvise(MADV_WILLNEED)`).
    func willNeed(offset: Int, count: Int) {
        guard let base, count > 0 else { return }
        let page = 4096
        let start = offset & ~(page - 1)
        let end = min(length, offset + count)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_WILLNEED)
    }

    /// The bytes `[offset, offset + count)`, or nil when they are not all inside the mapping.
    @inline(__always)
    func bytes(at offset: Int, count: Int) -> UnsafeRawBufferPointer? {
        guard let base, offset >= 0, count >= 0, offset <= length, count <= length - offset else { return nil }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    /// Maps the whole file at `path` read-only, when it opens and holds at
    /// least `minimumLength` bytes; nil otherwise (a derived file the caller
    /// then treats as missing). The file descriptor is closed; the mapping
    /// stays valid until released.
    static func mapWhole(path: String, minimumLength: Int, faults: StorageFaults?) -> (MappedRegion, UnsafeRawBufferPointer)? {
        guard let file = try? FileHandle.open(path, readOnly: true, faults: faults),
              let length = try? file.length(), length >= Int64(minimumLength), length <= Int64(Int.max),
              let mapping = try? MappedRegion.map(file, length: Int(length)),
              let bytes = mapping.bytes(at: 0, count: Int(length))
        else { return nil }
        return (mapping, bytes)
    }
}

/// Reads of mapped bytes that may fault. A page of a mapped file can fail to
/// read: the file was truncated under the mapping by someone else, the
/// device returned an error, or a full tmpfs could not supply a page. The
/// kernel then raises SIGBUS, which would kill the process; `touch` reads
/// the pages of a range inside a small C routine guarded against it
/// (`eventlog_guarded_touch`), so the caller gets `false` and can report
/// the file and offset instead. Once touched, the pages are in memory.
enum MappedBytes {
    /// Installs the process's SIGBUS guard (once; it hands every other
    /// SIGBUS to the handler installed before it, or to the default action).
    static func installGuard() {
        _ = installed
    }

    private static let installed: Bool = eventlog_guard_install() == 0

    /// What a reader reports about bytes `touch` could not read.
    static let unreadableReason = "the file cannot be read here (SIGBUS: it was truncated by another program, or the device failed)"

    /// CRC32C of `count` bytes at `pointer`, continuing from `crc`, computed
    /// under the guard; nil when a page could not be read. No memory access
    /// beyond what the checksum makes anyway.
    @inline(__always)
    static func checksum(_ pointer: UnsafeRawPointer, count: Int, continuing crc: UInt32 = 0) -> UInt32? {
        var result: UInt32 = 0
        return eventlog_guarded_crc32c(crc, pointer, Int64(count), &result) == 0 ? result : nil
    }

    /// True when every page of `bytes[range]` could be read.
    @inline(__always)
    static func touch(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        guard let base = bytes.baseAddress, !range.isEmpty else { return true }
        return eventlog_guarded_touch(base + range.lowerBound, Int64(range.count)) == 0
    }
}
