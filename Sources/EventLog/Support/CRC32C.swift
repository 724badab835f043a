import CCRC32C

/// CRC32C (Castagnoli), the checksum of every structure in Format.md.
/// Hardware-accelerated where the CPU allows (see `CCRC32C`).
enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    @inline(__always) static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return eventlog_crc32c(crc, base, bytes.count)
    }

    @inline(__always) static func checksum(_ pointer: UnsafeRawPointer, count: Int, continuing crc: UInt32 = 0) -> UInt32 {
        eventlog_crc32c(crc, pointer, count)
    }

    /// The checksum of a byte array (cold paths only: small files).
    static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }
}
