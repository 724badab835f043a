#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemCalls

extension FileHandle {
    /// The data regions of the file: the first region at or after `offset`
    /// that is not a hole, as `start..<end`, or nil when only holes follow.
    /// The corresponding C calls are `lseek(SEEK_DATA)` and `lseek(SEEK_HOLE)`.
    /// Where the file system cannot tell holes from data, the rest of the file
    /// counts as one region. Read-only; no fault hook (it changes nothing).
    func dataRegion(atOrAfter offset: Int64, fileLength: Int64) -> Range<Int64>? {
        guard offset < fileLength else { return nil }
        let start = eventlog_seek_data(descriptor, offset)
        if start < 0 {
            return errno == ENXIO ? nil : offset..<fileLength
        }
        guard start < fileLength else { return nil }
        let end = eventlog_seek_hole(descriptor, start)
        if end < 0 { return start..<fileLength }
        return start..<min(end, fileLength)
    }
}
