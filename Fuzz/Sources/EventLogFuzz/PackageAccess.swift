/// The `eventlog` command's files under CLI/ (symbolic links) read encoded
/// metadata with the library's `package` `Varint.read`, which a module of
/// another package cannot see even through `@testable import`. This is the
/// same reader (Sources/EventLog/Support/ByteOrder.swift), for those files
/// only; the library's decoders under test use their own.
enum Varint {
    static func read(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> UInt64? {
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
}
