/// How a batch's records area is stored (Format.md, "Batch attributes").
public enum Compression: UInt8, Sendable, CaseIterable {
    /// Stored as is.
    case none = 0
    /// LZ4 (the system liblz4), in units of about 4 KiB that a point read
    /// decompresses one at a time (Format.md §5.2). A batch that LZ4 would
    /// not shrink is stored uncompressed.
    case lz4 = 1
}

/// The fixed 48-byte header of a batch frame (Format.md, "Batch frame").
///
/// A frame is this header followed by the records area (`storedLength` bytes,
/// possibly compressed). `crc` covers bytes `[0, 4)` and `[8, length)` of
/// the frame, that is every byte but itself.
struct BatchHeader: Equatable, Sendable {
    static let size = 48
    /// Attribute bits 0–2: the codec.
    static let codecMask: UInt16 = 0x0007
    /// Attribute bit 3: the batch is sealed (encrypted, Format.md §5.1): its
    /// records area ends with a seal table and its sealed records' payloads
    /// are ciphertext. Bit 4: the records area starts with a type table
    /// (`TypeTable`, Format.md §5.3), only when stored as is. Bits 5–15 are
    /// reserved (zero).
    static let sealedFlag: UInt16 = 0x0008

    /// Whole frame length, header included.
    var length: UInt32
    var crc: UInt32
    var basePosition: UInt64
    /// Timestamp of the first record; records store theirs as a delta to it.
    var firstTimestamp: Timestamp
    /// Largest timestamp of any record in the batch.
    var maxTimestamp: Timestamp
    var recordCount: UInt32
    /// `crc` of the batch before this one in the segment; for the first
    /// batch, the segment header's checksum.
    var previousCRC: UInt32
    /// Length of the records area once decompressed (equal to the stored length when uncompressed).
    var recordsLength: UInt32
    var attributes: UInt16
    /// How far behind this frame the synced data ended when it was written
    /// (Format.md §5, "synced lag"): 0 unknown; `n` ≥ 1 means every byte of
    /// the segment before `offset − 8·(n − 1)` was on disk. Evidence for
    /// recovery that damage before that offset is not a torn tail (§10).
    var syncedLag: UInt16 = 0

    var codecValue: UInt16 { attributes & Self.codecMask }
    /// True for a sealed (encrypted) batch (Format.md §5.1).
    var isSealed: Bool { attributes & Self.sealedFlag != 0 }
    /// True when the records area is stored as readers use it: neither
    /// compressed nor sealed, so a record can be read in place (the mapped
    /// bytes) and index entries may point at records inside it.
    var isStoredAsIs: Bool { attributes & (Self.codecMask | Self.sealedFlag) == 0 }
    /// True for a plain batch stored in LZ4 units (Format.md §5.2, and §5.4
    /// against its segment's dictionary): a point read decompresses the one
    /// unit holding its record. (A sealed batch in units is read whole: its
    /// seal groups cover every payload.)
    var holdsLZ4Units: Bool {
        let storage = attributes & (Self.codecMask | Self.sealedFlag)
        return storage == LZ4Units.codec || storage == LZ4Units.dictionaryCodec
    }
    /// True for a batch whose units were compressed against its segment's
    /// LZ4 dictionary (codec 3, Format.md §5.4).
    var usesSegmentDictionary: Bool { codecValue == LZ4Units.dictionaryCodec }
    /// True for a sealed batch stored uncompressed: a point read opens the
    /// one seal group holding its record (Format.md §5.1), in place in the
    /// mapping.
    var holdsSealGroups: Bool { attributes & (Self.codecMask | Self.sealedFlag) == Self.sealedFlag }
    var storedLength: Int { Int(length) - Self.size }
    /// The position after this batch's last record.
    var endPosition: UInt64 { basePosition &+ UInt64(recordCount) }

    /// Reads the fields from the first 48 bytes of `pointer` (no checks).
    @inline(__always) static func load(_ pointer: UnsafeRawPointer) -> BatchHeader {
        BatchHeader(
            length: pointer.loadLE(at: 0, as: UInt32.self),
            crc: pointer.loadLE(at: 4, as: UInt32.self),
            basePosition: pointer.loadLE(at: 8, as: UInt64.self),
            firstTimestamp: pointer.loadLE(at: 16, as: Int64.self),
            maxTimestamp: pointer.loadLE(at: 24, as: Int64.self),
            recordCount: pointer.loadLE(at: 32, as: UInt32.self),
            previousCRC: pointer.loadLE(at: 36, as: UInt32.self),
            recordsLength: pointer.loadLE(at: 40, as: UInt32.self),
            attributes: pointer.loadLE(at: 44, as: UInt16.self),
            syncedLag: pointer.loadLE(at: 46, as: UInt16.self))
    }

    /// Writes the fields into the first 48 bytes of `pointer`.
    @inline(__always) func store(_ pointer: UnsafeMutableRawPointer) {
        pointer.storeLE(length, at: 0)
        pointer.storeLE(crc, at: 4)
        pointer.storeLE(basePosition, at: 8)
        pointer.storeLE(firstTimestamp, at: 16)
        pointer.storeLE(maxTimestamp, at: 24)
        pointer.storeLE(recordCount, at: 32)
        pointer.storeLE(previousCRC, at: 36)
        pointer.storeLE(recordsLength, at: 40)
        pointer.storeLE(attributes, at: 44)
        pointer.storeLE(syncedLag, at: 46)
    }

    /// The synced lag of a frame written at `offset` when every byte before
    /// `syncedEnd` was on disk: rounded so that the claim it makes is never
    /// more than what was known (a lag beyond the field's range is capped,
    /// which claims less).
    @inline(__always) static func syncedLag(frameOffset offset: Int, syncedEnd: Int) -> UInt16 {
        let behind = max(0, offset - syncedEnd)
        return UInt16(min((behind + 7) / 8 + 1, Int(UInt16.max)))
    }

    /// The offset before which every byte was on disk when the frame at
    /// `offset` was written, by its synced lag; nil when it recorded none.
    @inline(__always) func syncedEnd(frameOffset offset: Int) -> Int? {
        syncedLag == 0 ? nil : offset - 8 * (Int(syncedLag) - 1)
    }

    /// The frame checksum of `frame` (the whole frame, header included):
    /// CRC32C over `[0, 4)` then `[8, count)`.
    @inline(__always) static func frameChecksum(_ frame: UnsafeRawPointer, count: Int) -> UInt32 {
        let head = CRC32C.checksum(frame, count: 4)
        return CRC32C.checksum(frame + 8, count: count - 8, continuing: head)
    }

    /// `frameChecksum` of a mapped frame under the SIGBUS guard
    /// (`MappedBytes`); nil when its bytes cannot be read.
    @inline(__always) static func guardedFrameChecksum(_ frame: UnsafeRawPointer, count: Int) -> UInt32? {
        guard let head = MappedBytes.checksum(frame, count: 4) else { return nil }
        return MappedBytes.checksum(frame + 8, count: count - 8, continuing: head)
    }
}

/// What a reader finds at a byte offset where a batch should start.
enum FrameCheck {
    /// A whole, valid batch.
    case valid(BatchHeader)
    /// Zeros: the end of the written data (segments are sparse past it).
    case endOfData
    /// Bytes that are not a valid batch; `reason` says why.
    case invalid(reason: String, header: BatchHeader?)
    /// The bytes cannot be read (a guarded check only: SIGBUS, the file was
    /// truncated under its mapping or the device failed). Not a verdict on
    /// the data: an error to report, never a tail to cut.
    case unreadable

    /// The batch, where a published batch must be (inside a segment's
    /// data, which holds only whole batches); any other verdict is
    /// `corruption` naming `file` and `offset`, with why.
    func publishedBatch(file: String, offset: Int) throws(EventLogError) -> BatchHeader {
        let reason: String
        switch self {
        case .valid(let batch): return batch
        case .invalid(let why, _): reason = why
        case .unreadable: reason = MappedBytes.unreadableReason
        case .endOfData: reason = "zeros where a published batch should be"
        }
        throw .corruption(file: file, offset: Int64(offset), reason: reason)
    }
}

extension BatchHeader {
    /// Checks the frame at `offset` of `bytes` (a mapped segment): length
    /// bounds, checksum, chain to `previousCRC` and `expectedBase` when given,
    /// the header's fields (record count, records length, codec, reserved
    /// attribute bits zero, an uncompressed area's length), in the order
    /// Format.md §5 lists them. Checks every byte of the frame: this is the
    /// scan's verification.
    ///
    /// `guarded`: the header and the checksum are read under the SIGBUS
    /// guard (`MappedBytes`), and bytes that cannot be read give
    /// `.unreadable` instead of ending the process.
    ///
    /// `declaredEnd`: the frame is in a rewritten segment (Format.md §4)
    /// that ends there: its base may lie past `expectedBase` (a gap left by
    /// removed records), and it must end at or before `declaredEnd`.
    static func check(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int, previousCRC: UInt32?, expectedBase: UInt64?,
        declaredEnd: UInt64? = nil, guarded: Bool = false
    ) -> FrameCheck {
        let available = end - offset
        if available <= 0 { return .endOfData }
        if guarded && !MappedBytes.touch(bytes, offset..<(offset + min(available, size))) { return .unreadable }
        if available < 8 {
            let tail = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
            return tail.allSatisfy({ $0 == 0 }) ? .endOfData : .invalid(reason: "\(available) stray bytes after the last batch", header: nil)
        }
        let base = bytes.baseAddress! + offset
        let length = base.loadLE(at: 0, as: UInt32.self)
        if length == 0 {
            // A zero length with a zero checksum is the zeroed space past the
            // written data. Anything else there is damage or garbage.
            let probe = min(available, size)
            let head = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + probe)])
            return head.allSatisfy({ $0 == 0 }) ? .endOfData : .invalid(reason: "batch length is 0", header: nil)
        }
        guard Int(length) >= size, Int(length) <= Limits.maxBatchBytes else {
            return .invalid(reason: "batch length \(length) is impossible", header: nil)
        }
        guard Int(length) <= available else {
            return .invalid(reason: "batch of \(length) bytes runs past the end of the data (\(available) bytes left)", header: nil)
        }
        let header = load(base)
        let crc: UInt32
        if guarded {
            guard let value = guardedFrameChecksum(base, count: Int(length)) else { return .unreadable }
            crc = value
        } else {
            crc = frameChecksum(base, count: Int(length))
        }
        guard crc == header.crc else {
            return .invalid(reason: "batch checksum mismatch", header: header)
        }
        if let previousCRC, header.previousCRC != previousCRC {
            return .invalid(reason: "batch does not follow the previous one (chain checksum differs)", header: header)
        }
        if let declaredEnd {
            if let expectedBase, header.basePosition < expectedBase {
                return .invalid(
                    reason: "batch base position \(header.basePosition), expected \(expectedBase) or after", header: header)
            }
            guard header.basePosition < declaredEnd, UInt64(header.recordCount) <= declaredEnd - header.basePosition else {
                return .invalid(
                    reason: "batch at position \(header.basePosition) of \(header.recordCount) records runs past the segment's declared end \(declaredEnd)",
                    header: header)
            }
        } else if let expectedBase, header.basePosition != expectedBase {
            return .invalid(reason: "batch base position \(header.basePosition), expected \(expectedBase)", header: header)
        }
        guard header.recordCount > 0, Int(header.recordCount) <= Limits.maxBatchRecords,
              header.basePosition <= UInt64.max - UInt64(header.recordCount),  // endPosition does not wrap
              Int(header.recordsLength) <= Limits.maxBatchBytes,
              header.codecValue <= LZ4Units.dictionaryCodec
        else { return .invalid(reason: "batch header fields out of range", header: header) }
        // Codec 3 (Format.md §5.4) only for a plain batch.
        if header.usesSegmentDictionary && header.isSealed {
            return .invalid(reason: "a sealed batch is compressed against its segment's dictionary", header: header)
        }
        guard header.attributes & ~(Self.codecMask | Self.sealedFlag | TypeTable.attribute) == 0 else {
            return .invalid(reason: "batch attributes have reserved bits set", header: header)
        }
        // A type table (Format.md §5.3) only in a batch stored as is.
        if header.attributes & TypeTable.attribute != 0 && header.attributes & (Self.codecMask | Self.sealedFlag) != 0 {
            return .invalid(reason: "a compressed or sealed batch has a type table", header: header)
        }
        if header.codecValue == 0 && Int(header.recordsLength) != header.storedLength {
            return .invalid(reason: "uncompressed records length differs from the frame", header: header)
        }
        return .valid(header)
    }
}
