#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension FileHandle {
    /// Copies the bytes `range` of this file to `destination`, starting at
    /// `offset` there, with `pread` and `pwrite` in chunks of 1 MiB. Only the
    /// data regions are read and written (`dataRegion`): a hole of this file
    /// is left a hole of the copy, which reads as the same zeros as long as
    /// the destination held nothing there. Does not sync and does not set the
    /// destination's length (a trailing hole needs `setLength`).
    func copy(_ range: Range<Int64>, to destination: FileHandle, at offset: Int64) throws(IOError) {
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var at = range.lowerBound
        while at < range.upperBound, let region = dataRegion(atOrAfter: at, fileLength: range.upperBound) {
            var from = max(at, region.lowerBound)
            while from < region.upperBound {
                let count = Int(min(Int64(chunk), region.upperBound - from))
                let read = try self.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: from)
                // The file ended before the range did: a copy would not hold what was asked for.
                if read == 0 { throw IOError(operation: "pread", path: path, errno: EIO) }
                try destination.write(UnsafeRawBufferPointer(rebasing: buffer[0..<read]), at: offset + (from - range.lowerBound))
                from += Int64(read)
            }
            at = region.upperBound
        }
    }
}
