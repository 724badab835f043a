/// The 64-bit hash that keys stream index entries (Format.md, "Stream
/// index"): FNV-1a over the stream name's UTF-8 bytes. Entries are always
/// confirmed by the stored name, so a collision costs a little time, never
/// a wrong answer.
enum StreamHash {
    @inline(__always) static func hash(_ name: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    static func hash(_ name: String) -> UInt64 {
        var name = name
        return name.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }
}
