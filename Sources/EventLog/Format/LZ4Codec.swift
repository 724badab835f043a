import CLZ4

/// The LZ4 block format through the system liblz4 (Format.md, "Compression").
enum LZ4Codec {
    /// Decompresses `source` into `destination` (room for `capacity` bytes);
    /// returns the bytes written, or -1 when the input is malformed or does
    /// not fit. Never reads or writes out of bounds (`LZ4_decompress_safe`;
    /// against `dictionary`, the bytes that logically precede the block,
    /// `LZ4_decompress_safe_usingDict`).
    static func decompress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer, capacity: Int,
        dictionary: UnsafeRawBufferPointer? = nil
    ) -> Int {
        guard let base = source.baseAddress, source.count > 0, source.count <= Int(Int32.max), capacity <= Int(Int32.max) else { return -1 }
        let from = base.assumingMemoryBound(to: CChar.self)
        let to = destination.assumingMemoryBound(to: CChar.self)
        guard let dictionary, let start = dictionary.baseAddress else {
            return Int(LZ4_decompress_safe(from, to, Int32(source.count), Int32(capacity)))
        }
        return Int(LZ4_decompress_safe_usingDict(
            from, to, Int32(source.count), Int32(capacity), start.assumingMemoryBound(to: CChar.self), Int32(dictionary.count)))
    }

    /// Decompresses the first `count` bytes that `source` (one whole block)
    /// decompresses to into `destination` (room for `count`), and stops
    /// there; returns the bytes written (fewer when the block holds fewer),
    /// or a negative number when the input is malformed
    /// (`LZ4_decompress_safe_partial`; against `dictionary`,
    /// `LZ4_decompress_safe_partial_usingDict`).
    static func decompressPrefix(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer, count: Int,
        dictionary: UnsafeRawBufferPointer? = nil
    ) -> Int {
        guard let base = source.baseAddress, source.count > 0, source.count <= Int(Int32.max), count <= Int(Int32.max) else { return -1 }
        let from = base.assumingMemoryBound(to: CChar.self)
        let to = destination.assumingMemoryBound(to: CChar.self)
        guard let dictionary, let start = dictionary.baseAddress else {
            return Int(LZ4_decompress_safe_partial(from, to, Int32(source.count), Int32(count), Int32(count)))
        }
        return Int(LZ4_decompress_safe_partial_usingDict(
            from, to, Int32(source.count), Int32(count), Int32(count), start.assumingMemoryBound(to: CChar.self),
            Int32(dictionary.count)))
    }

    /// Compresses `source` into `destination` (room for `capacity` bytes);
    /// returns the bytes written, or 0 when it did not fit.
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer, capacity: Int) -> Int {
        guard let base = source.baseAddress, source.count > 0, source.count <= Int(LZ4_MAX_INPUT_SIZE) else { return 0 }
        return Int(LZ4_compress_default(
            base.assumingMemoryBound(to: CChar.self), destination.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(min(capacity, Int(Int32.max)))))
    }

    static func compressBound(_ count: Int) -> Int { Int(LZ4_compressBound(Int32(count))) }
}
