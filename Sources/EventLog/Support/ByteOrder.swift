/// Little-endian loads and stores at byte offsets, and LEB128 varints: the
/// primitives every structure of Format.md is built from.
extension UnsafeRawPointer {
    @inline(__always) func loadLE<T: FixedWidthInteger>(at offset: Int, as type: T.Type) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always) func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func loadLE<T: FixedWidthInteger>(at offset: Int, as type: T.Type) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// Unsigned LEB128: 7 bits a byte, low bits first, high bit set on all but
/// the last byte. At most 10 bytes for a UInt64.
///
/// `read` is public to the `EventLogTool` SPI: the `eventlog` command reads
/// encoded metadata with it, and so does the fuzz package, which compiles
/// the command's files (a `package` symbol is invisible there).
@_spi(EventLogTool) public enum Varint {
    static let maxBytes = 10

    @inline(__always) static func size(_ value: UInt64) -> Int {
        // 1 + floor(bits/7), computed without a loop.
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    /// Writes `value` at `pointer`; returns the number of bytes written.
    @inline(__always) static func write(_ value: UInt64, to pointer: UnsafeMutableRawPointer) -> Int {
        var v = value
        var n = 0
        while v >= 0x80 {
            pointer.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: n, as: UInt8.self)
            v >>= 7
            n += 1
        }
        pointer.storeBytes(of: UInt8(v), toByteOffset: n, as: UInt8.self)
        return n + 1
    }

    /// Reads a varint from `bytes` starting at `offset`, which it advances.
    /// Returns nil when the bytes end first or the value overflows 64 bits.
    /// (SPI `EventLogTool`: the tool reads encoded metadata with it too.)
    @inline(__always) @_spi(EventLogTool) public static func read(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var i = offset
        while i < bytes.count {
            let byte = bytes[i]
            i += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                offset = i
                return result
            }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// ZigZag: signed values of small magnitude become small unsigned ones.
    @inline(__always) static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    @inline(__always) static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }
}
