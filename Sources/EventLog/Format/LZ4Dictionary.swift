import CLZ4

/// A segment's LZ4 dictionary (Format.md §5.4): the first bytes of the
/// records area of the segment's first batch, decompressed. The batches
/// after it may store their units compressed against it (codec 3), so a
/// unit of a few hundred bytes compresses about as well as a 12 KiB one
/// does alone, and a point read decompresses a few hundred bytes.
///
/// Borrowed bytes: valid while their owner (`SegmentDictionary`,
/// `LZ4DictionaryCompressor`) is.
struct LZ4Dictionary {
    /// The most bytes of the first batch's records area a dictionary takes.
    static let maxBytes = 16 << 10
    /// The fewest a writer compresses against (a first batch of one small
    /// event would only cost a checksum per batch). Readers do not depend on it.
    static let minBytes = 1 << 10

    let bytes: UnsafeRawBufferPointer
    /// What a codec 3 batch records of the dictionary its units were
    /// compressed against: CRC32C of `bytes`.
    let checksum: UInt32

    init(bytes: UnsafeRawBufferPointer) {
        self.init(bytes: bytes, checksum: CRC32C.checksum(bytes))
    }

    /// With its checksum known (computed once by its owner).
    init(bytes: UnsafeRawBufferPointer, checksum: UInt32) {
        self.bytes = bytes
        self.checksum = checksum
    }

    /// The dictionary's length taken from a first batch's (decompressed)
    /// records area of `recordsLength` bytes.
    static func length(ofRecords recordsLength: Int) -> Int { min(recordsLength, maxBytes) }
}

/// Compresses units against one dictionary (the writer's, for its active
/// segment). The dictionary is loaded into an LZ4 stream once; each unit
/// starts from a copy of that loaded stream (16 KiB), as liblz4 documents
/// for a dictionary used many times, instead of loading it again.
///
/// Not thread-safe: one writer owns it (in its state, under the writer
/// lock), or one merge.
final class LZ4DictionaryCompressor: @unchecked Sendable {
    /// The dictionary, in an allocation of its own that never moves (the
    /// loaded stream points into it).
    let dictionary: LZ4Dictionary
    private let loaded: UnsafeMutablePointer<LZ4_stream_t>
    private let working: UnsafeMutablePointer<LZ4_stream_t>

    /// The dictionary of a first batch's (decompressed) `records`; nil when
    /// it is shorter than `LZ4Dictionary.minBytes` or liblz4 could not make
    /// a stream.
    init?(records: UnsafeRawBufferPointer) {
        let bytes = UnsafeRawBufferPointer(rebasing: records[0..<LZ4Dictionary.length(ofRecords: records.count)])
        guard bytes.count >= LZ4Dictionary.minBytes, let base = bytes.baseAddress,
              let loaded = LZ4_createStream()
        else { return nil }
        guard let working = LZ4_createStream() else {
            LZ4_freeStream(loaded)
            return nil
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 16)
        copy.copyMemory(from: base, byteCount: bytes.count)
        self.dictionary = LZ4Dictionary(bytes: UnsafeRawBufferPointer(start: copy, count: bytes.count))
        self.loaded = loaded
        self.working = working
        _ = LZ4_loadDict(loaded, copy.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
    }

    deinit {
        LZ4_freeStream(loaded)
        LZ4_freeStream(working)
        UnsafeMutableRawPointer(mutating: dictionary.bytes.baseAddress)?.deallocate()
    }

    /// Compresses `source` against the dictionary into `destination` (room
    /// for `capacity` bytes); returns the bytes written, or 0 when they did
    /// not fit.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer, capacity: Int) -> Int {
        guard let base = source.baseAddress, source.count > 0, source.count <= Int(LZ4_MAX_INPUT_SIZE) else { return 0 }
        UnsafeMutableRawPointer(working).copyMemory(from: loaded, byteCount: MemoryLayout<LZ4_stream_t>.size)
        return Int(LZ4_compress_fast_continue(
            working, base.assumingMemoryBound(to: CChar.self), destination.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(min(capacity, Int(Int32.max))), 1))
    }
}

/// A copy of a dictionary with room after it: a unit decompressed into that
/// room has the dictionary as its output's prefix, which liblz4 decodes
/// about as fast as a block without one (about 0.28 µs for a 1 KiB unit
/// on the benchmark machine, against 0.77 µs with the dictionary
/// elsewhere, where every match into it is copied apart).
///
/// One reader owns one; it copies the dictionary (up to 16 KiB) when it
/// starts on another segment's.
struct LZ4DictionaryStage: ~Copyable {
    private var buffer = ByteBuffer(capacity: 0)
    /// Which dictionary the buffer starts with (its owner's bytes), if any.
    private var staged: UnsafeRawPointer?
    private var stagedCount = 0

    init() {}

    /// The copy of `dictionary` at the buffer's start, with room for `room`
    /// bytes right after it (the returned output): what was in the room is
    /// gone, the copy is made again only for another dictionary (or more room).
    mutating func prepare(_ dictionary: LZ4Dictionary, room: Int) -> (dictionary: LZ4Dictionary, output: UnsafeMutableRawPointer) {
        let length = dictionary.bytes.count
        if staged != dictionary.bytes.baseAddress || stagedCount != length || buffer.capacity < length + room {
            buffer.count = 0
            buffer.reserve(length + room)
            if let source = dictionary.bytes.baseAddress, length > 0 { buffer.base.copyMemory(from: source, byteCount: length) }
            staged = dictionary.bytes.baseAddress
            stagedCount = length
        }
        return (LZ4Dictionary(bytes: UnsafeRawBufferPointer(start: buffer.base, count: length), checksum: dictionary.checksum), buffer.base + length)
    }
}
