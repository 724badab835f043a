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
/// A unit of up to `prefixRoom` bytes is copied right after the dictionary
/// first, so that liblz4 compresses it with the dictionary as its prefix:
/// about 15% faster than with the dictionary elsewhere (1 KiB units of the
/// benchmark workload, this machine: 465 against 406 MB/s). The block is
/// an ordinary one against the dictionary (its bytes may differ from what
/// the other way gives: 2 units in 8,123 there). A larger unit is
/// compressed where it is.
///
/// Not thread-safe: one writer owns it (in its state, under the writer
/// lock), or one merge.
final class LZ4DictionaryCompressor: @unchecked Sendable {
    /// The dictionary, in an allocation of its own that never moves (the
    /// loaded stream points into it).
    let dictionary: LZ4Dictionary
    private let loaded: UnsafeMutablePointer<LZ4_stream_t>
    private let working: UnsafeMutablePointer<LZ4_stream_t>
    /// The room after the dictionary's bytes (in the same allocation).
    static let prefixRoom = 64 << 10

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
        let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + Self.prefixRoom, alignment: 16)
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
        guard var base = source.baseAddress, source.count > 0, source.count <= Int(LZ4_MAX_INPUT_SIZE),
              let dictionaryStart = dictionary.bytes.baseAddress
        else { return 0 }
        if source.count <= Self.prefixRoom {
            let room = UnsafeMutableRawPointer(mutating: dictionaryStart + dictionary.bytes.count)
            room.copyMemory(from: base, byteCount: source.count)
            base = UnsafeRawPointer(room)
        }
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
