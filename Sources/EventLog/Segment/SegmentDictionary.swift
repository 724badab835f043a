import Synchronization

/// A segment's LZ4 dictionary (Format.md §5.4), as readers get it: read
/// from the segment's first batch the first time a batch compressed
/// against it (codec 3) is read, then kept while the segment is (every
/// copy of the `Segment` value shares it). The first batch never changes
/// once written, so what was read once holds.
///
/// Thread-safe: the first readers may each read the first batch; one copy is kept.
final class SegmentDictionary: Sendable {
    /// The dictionary, its bytes an allocation of this object's.
    private struct Loaded: @unchecked Sendable {
        let dictionary: LZ4Dictionary
    }

    private let loaded = Mutex<Loaded?>(nil)
    /// Staged copies readers gave back (`lendCopy`), at most `spareCopies`.
    private let spares = Mutex<[StagedDictionaryCopy]>([])
    /// How many given-back copies are kept for the next readers.
    static let spareCopies = 4

    init() {}

    deinit {
        loaded.withLock { UnsafeMutableRawPointer(mutating: $0?.dictionary.bytes.baseAddress)?.deallocate() }
    }

    /// A copy of this segment's dictionary with room after it for a unit of
    /// up to `StagedDictionaryCopy.room` bytes (`LZ4DictionaryStage`'s
    /// layout), lent to one reader until it gives it back (`takeBack`): a
    /// point read, which a reader of its own makes, finds one already made
    /// instead of copying the dictionary (16 KiB) for its one unit. Nil
    /// before the dictionary was read (`dictionary(in:path:forBatchAt:)`).
    func lendCopy() -> StagedDictionaryCopy? {
        if let spare = spares.withLock({ $0.popLast() }) { return spare }
        guard let known = loaded.withLock({ $0 }) else { return nil }
        return StagedDictionaryCopy(of: known.dictionary)
    }

    /// Takes back a copy `lendCopy` lent (kept for the next reader, up to `spareCopies`).
    func takeBack(_ copy: StagedDictionaryCopy) {
        spares.withLock { if $0.count < Self.spareCopies { $0.append(copy) } }
    }

    /// The dictionary of the segment whose published bytes are `bytes`
    /// (the file at `path`), which the batch at `offset` (codec 3) was
    /// compressed against; valid while this object is.
    /// (Nil `offset`: the dictionary a batch written after the first would use.)
    func dictionary(in bytes: UnsafeRawBufferPointer, path: String, forBatchAt offset: Int?) throws(EventLogError) -> LZ4Dictionary {
        if let known = loaded.withLock({ $0 }) { return known.dictionary }
        if let offset, offset <= SegmentHeader.size {
            throw .corruption(
                file: path, offset: Int64(offset),
                reason: "the segment's first batch is compressed against the segment's LZ4 dictionary, which it is to give")
        }
        let read = try Self.read(bytes, path: path)
        let kept = loaded.withLock { current -> Loaded in
            if let current {
                UnsafeMutableRawPointer(mutating: read.dictionary.bytes.baseAddress)?.deallocate()
                return current
            }
            current = read
            return read
        }
        return kept.dictionary
    }

    /// Reads the first batch in `bytes` (its frame checksum verified,
    /// under the SIGBUS guard) and copies its dictionary out.
    private static func read(_ bytes: UnsafeRawBufferPointer, path: String) throws(EventLogError) -> Loaded {
        let offset = SegmentHeader.size
        let header = try BatchHeader.check(bytes, at: offset, end: bytes.count, previousCRC: nil, expectedBase: nil, guarded: true)
            .publishedBatch(file: path, offset: offset)
        guard !header.isSealed, !header.usesSegmentDictionary else {
            throw .corruption(
                file: path, offset: Int64(offset),
                reason: "the segment's first batch cannot give its LZ4 dictionary (it is \(header.isSealed ? "sealed" : "compressed against it"))")
        }
        guard bytes.count - offset >= Int(header.length), let base = bytes.baseAddress else {
            throw .corruption(file: path, offset: Int64(offset), reason: "batch runs past the end of the file")
        }
        let stored = UnsafeRawBufferPointer(start: base + offset + BatchHeader.size, count: header.storedLength)
        let storedBase = base + offset + BatchHeader.size
        let recordsLength = Int(header.recordsLength)
        let length = LZ4Dictionary.length(ofRecords: recordsLength)
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(length, 1), alignment: 16)
        if header.codecValue == 0 {
            // Read under the guard by the check (the frame's checksum).
            copy.copyMemory(from: storedBase, byteCount: length)
        } else {
            let area = UnsafeMutableRawPointer.allocate(byteCount: max(recordsLength, 1), alignment: 16)
            defer { area.deallocate() }
            do { try LZ4Units.decompress(stored, of: header, into: area) } catch {
                copy.deallocate()
                throw .corruption(file: path, offset: Int64(offset), reason: error.reason)
            }
            copy.copyMemory(from: area, byteCount: length)
        }
        return Loaded(dictionary: LZ4Dictionary(bytes: UnsafeRawBufferPointer(start: copy, count: length)))
    }
}

/// A copy of a segment's dictionary with room for one unit right after it,
/// so that the unit decompresses with the dictionary as its prefix (as in
/// `LZ4DictionaryStage`), made once by its segment's `SegmentDictionary`
/// and lent to one reader at a time.
///
/// Not thread-safe: the reader it is lent to alone uses its room.
final class StagedDictionaryCopy: @unchecked Sendable {
    /// The largest unit it has room for (a point read of a larger one stages its own copy).
    static let room = 16 << 10
    /// The copy, at the start of the allocation.
    let dictionary: LZ4Dictionary
    /// The room after it.
    let output: UnsafeMutableRawPointer

    fileprivate init(of original: LZ4Dictionary) {
        let length = original.bytes.count
        let base = UnsafeMutableRawPointer.allocate(byteCount: length + Self.room, alignment: 16)
        if let source = original.bytes.baseAddress, length > 0 { base.copyMemory(from: source, byteCount: length) }
        dictionary = LZ4Dictionary(bytes: UnsafeRawBufferPointer(start: base, count: length), checksum: original.checksum)
        output = base + length
    }

    deinit { UnsafeMutableRawPointer(mutating: dictionary.bytes.baseAddress)?.deallocate() }
}
