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

    init() {}

    deinit {
        loaded.withLock { UnsafeMutableRawPointer(mutating: $0?.dictionary.bytes.baseAddress)?.deallocate() }
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
