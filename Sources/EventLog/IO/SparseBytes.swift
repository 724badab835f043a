#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The content of a file held sparsely, for the power-loss model (tests
/// only): 4096-byte pages, where an absent page reads as zeros and a page
/// that becomes all zeros is dropped. A 128 MiB segment created as a sparse
/// file costs only the pages written into it.
///
/// Offsets are unbounded and everything past the last page reads as zeros;
/// the file's length is kept beside it by the caller.
struct SparseBytes: Sendable, Equatable {
    static let pageSize = 4096
    private static let zeroPage = [UInt8](repeating: 0, count: pageSize)

    /// Page index → its 4096 bytes, never all zeros.
    private(set) var pages: [Int64: [UInt8]] = [:]

    init() {}

    /// The page indices holding data, in ascending order.
    var sortedPageIndices: [Int64] { pages.keys.sorted() }

    /// Copies `bytes` to `[offset, offset + bytes.count)`.
    mutating func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) {
        var done = 0
        while done < bytes.count {
            let position = offset + Int64(done)
            let page = position / Int64(Self.pageSize)
            let start = Int(position % Int64(Self.pageSize))
            let count = min(Self.pageSize - start, bytes.count - done)
            let empty = pages[page, default: Self.zeroPage].withUnsafeMutableBytes { target in
                (target.baseAddress! + start).copyMemory(from: bytes.baseAddress! + done, byteCount: count)
                return Self.isZero(UnsafeRawBufferPointer(target))
            }
            if empty { pages[page] = nil }
            done += count
        }
    }

    mutating func write(_ bytes: [UInt8], at offset: Int64) {
        bytes.withUnsafeBytes { write($0, at: offset) }
    }

    /// Makes `[start, end)` read as zeros (`end` may be `Int64.max`).
    mutating func zero(from start: Int64, to end: Int64) {
        guard end > start, !pages.isEmpty else { return }
        let size = Int64(Self.pageSize)
        let first = start / size
        let last = (end - 1) / size
        // Walk the range or the pages, whichever is shorter.
        let touched: [Int64] =
            last - first < Int64(pages.count)
            ? (first...last).filter { pages[$0] != nil }
            : pages.keys.filter { $0 >= first && $0 <= last }
        for page in touched {
            let lower = max(start, page * size) - page * size
            let upper = min(end - page * size, size)
            if lower == 0 && upper == size { pages[page] = nil; continue }
            let empty = pages[page]!.withUnsafeMutableBytes { target in
                (target.baseAddress! + Int(lower)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(upper - lower))
                return Self.isZero(UnsafeRawBufferPointer(target))
            }
            if empty { pages[page] = nil }
        }
    }

    /// Copies `[offset, offset + buffer.count)` into `buffer`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) {
        var done = 0
        while done < buffer.count {
            let position = offset + Int64(done)
            let page = position / Int64(Self.pageSize)
            let start = Int(position % Int64(Self.pageSize))
            let count = min(Self.pageSize - start, buffer.count - done)
            if let bytes = pages[page] {
                bytes.withUnsafeBytes { (buffer.baseAddress! + done).copyMemory(from: $0.baseAddress! + start, byteCount: count) }
            } else {
                (buffer.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: count)
            }
            done += count
        }
    }

    func read(at offset: Int64, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { read(into: $0, at: offset) }
        return bytes
    }

    /// The indices of the `sectorSize`-byte sectors that hold a non-zero
    /// byte, in ascending order.
    func nonZeroSectors(sectorSize: Int) -> [Int64] {
        let perPage = Self.pageSize / sectorSize
        var sectors: [Int64] = []
        for page in sortedPageIndices {
            pages[page]!.withUnsafeBytes { raw in
                for i in 0..<perPage where !Self.isZero(UnsafeRawBufferPointer(rebasing: raw[(i * sectorSize)..<((i + 1) * sectorSize)])) {
                    sectors.append(page * Int64(perPage) + Int64(i))
                }
            }
        }
        return sectors
    }

    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let words = bytes.count / 8
        while i < words {
            if bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
            i += 1
        }
        for j in (words * 8)..<bytes.count where bytes[j] != 0 { return false }
        return true
    }
}

extension SparseBytes {
    /// Reads the whole file open on `descriptor` (readable) and its length,
    /// skipping holes (`lseek(SEEK_DATA/SEEK_HOLE)` where the file system
    /// supports it, `pread` of everything where not).
    static func load(descriptor: Int32, path: String) throws(IOError) -> (content: SparseBytes, length: Int64) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw IOError(operation: "fstat", path: path, errno: errno) }
        let length = Int64(info.st_size)
        var content = SparseBytes()
        let size = Int64(pageSize)
        var page = [UInt8](repeating: 0, count: pageSize)
        var position: Int64 = 0
        while position < length {
            // The next data extent [start, end); without SEEK_DATA, the rest of the file.
            var start = Int64(lseek(descriptor, off_t(position), seekData))
            var end = length
            if start < 0 {
                if errno == ENXIO { break }  // only a hole is left
                start = position
            } else {
                let hole = Int64(lseek(descriptor, off_t(start), seekHole))
                if hole > start { end = min(hole, length) }
            }
            var offset = start / size * size
            while offset < end {
                let count = Int(min(size, length - offset))
                let read = page.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress!, count, off_t(offset)) }
                if read < 0 {
                    if errno == EINTR { continue }
                    throw IOError(operation: "pread", path: path, errno: errno)
                }
                if read == 0 { break }
                page.withUnsafeBytes { content.write(UnsafeRawBufferPointer(rebasing: $0[0..<read]), at: offset) }
                offset += size
            }
            position = max(end, offset)
        }
        return (content, length)
    }

    #if os(Linux)
    /// `SEEK_DATA` and `SEEK_HOLE` (the importer hides them behind `_GNU_SOURCE`).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4
    #else
    private static let seekData = SEEK_DATA
    private static let seekHole = SEEK_HOLE
    #endif
}
