@testable import EventLog

/// Recomputes the checksums a decoder checks first, over mutated bytes
/// (`FuzzTarget`). Never changes a byte a checksum does not cover, and never
/// reads out of bounds itself: bytes too short for a field are left alone.
enum Checksums {
    /// A CRC32C of bytes `0..<length - 4` stored little-endian at `length - 4`
    /// (the fixed and variable files, the index files, the segment header, a
    /// stream index's or stream table run's header).
    /// A key store's header checksum and each entry's, as far as entries can be walked.
    static func fixKeyStore(_ bytes: inout [UInt8]) {
        guard bytes.count >= KeyStoreFile.headerSize else { return }
        fixTrailing(&bytes, length: 64)
        var offset = KeyStoreFile.headerSize
        while bytes.count - offset >= KeyStoreFile.entryHeadBytes {
            let kind = bytes[offset]
            guard kind == KeyStoreFile.kindDataKey || kind == KeyStoreFile.kindForgetting else { return }
            let length = KeyStoreFile.Entry.length(kind: kind, nameLength: kind == KeyStoreFile.kindDataKey ? Int(bytes[offset + 1]) : 0)
            guard bytes.count - offset >= length else { return }
            let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + length - 4)])) }
            store(crc, in: &bytes, at: offset + length - 4)
            offset += length
        }
    }

    static func fixTrailing(_ bytes: inout [UInt8], length: Int) {
        guard length >= 4, length <= bytes.count else { return }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(length - 4)])) }
        store(crc, in: &bytes, at: length - 4)
    }

    /// Every batch frame from `offset` on whose length field fits: its chain
    /// field (when `previousCRC` is given) and its frame checksum. Returns
    /// where the walk stopped.
    @discardableResult
    static func fixFrames(_ bytes: inout [UInt8], from offset: Int, previousCRC: UInt32?) -> Int {
        var at = offset
        var previous = previousCRC
        while bytes.count - at >= BatchHeader.size {
            let length = Int(load(bytes, at: at))
            guard length >= BatchHeader.size, length <= bytes.count - at else { break }
            if let previous { store(previous, in: &bytes, at: at + 36) }
            let crc = bytes.withUnsafeBytes { BatchHeader.frameChecksum($0.baseAddress! + at, count: length) }
            store(crc, in: &bytes, at: at + 4)
            previous = crc
            at += length
        }
        return at
    }

    /// A segment file: its header's checksum, then its frames, chained from it.
    static func fixSegment(_ bytes: inout [UInt8]) {
        guard bytes.count >= SegmentHeader.size else { return }
        fixTrailing(&bytes, length: SegmentHeader.size)
        fixFrames(&bytes, from: SegmentHeader.size, previousCRC: load(bytes, at: SegmentHeader.size - 4))
    }

    /// A cursor journal record at `offset` whose length field fits (layout
    /// `layout`): its checksum (bytes 0–3 and 8 on).
    static func fixCursorRecord(_ bytes: inout [UInt8], at offset: Int, layout: CursorJournalLayout) {
        guard bytes.count - offset >= layout.fixedBytes else { return }
        let length = Int(load(bytes, at: offset))
        guard length >= layout.fixedBytes, length <= bytes.count - offset else { return }
        let crc = bytes.withUnsafeBytes { raw in
            let record = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)])
            let head = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[0..<4]))
            return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[8...]), continuing: head)
        }
        store(crc, in: &bytes, at: offset + 4)
    }

    /// A stream index (Format.md, stream index file): its header, and when
    /// the header's counts give the file's length, its fence and every group
    /// and entry block.
    static func fixStreamIndex(_ bytes: inout [UInt8]) {
        guard bytes.count >= StreamIndexFile.headerSize else { return }
        fixTrailing(&bytes, length: StreamIndexFile.headerSize)
        let layout = StreamIndexFile.Layout(groupCount: Int(load(bytes, at: 12)), entryCount: Int(load(bytes, at: 44)))
        guard layout.fileSize == bytes.count else { return }
        fixBlock(&bytes, at: StreamIndexFile.Layout.fenceStart, count: layout.groupBlockCount * 8)
        for b in 0..<layout.groupBlockCount {
            fixBlock(&bytes, at: layout.groupBlockOffset(b), count: layout.groupsIn(block: b) * StreamIndexFile.groupSize)
        }
        for b in 0..<layout.entryBlockCount {
            fixBlock(&bytes, at: layout.entryBlockOffset(b), count: layout.entriesIn(block: b) * StreamIndexFile.entrySize)
        }
    }

    /// A stream table run (Format.md §14.1): its header, then as far as the
    /// header's offsets lie inside the file, every block the fence places,
    /// the fence and the bloom filter.
    static func fixStreamTableRun(_ bytes: inout [UInt8]) {
        guard bytes.count >= StreamTableRun.headerSize else { return }
        fixTrailing(&bytes, length: StreamTableRun.headerSize)
        let blocks = Int(load(bytes, at: 12))
        let fence = load64(bytes, at: 40)
        let bloom = load64(bytes, at: 48)
        let bloomBlocks = Int(load(bytes, at: 56))
        guard fence <= UInt64(bytes.count), bloom <= UInt64(bytes.count) else { return }
        let fenceOffset = Int(fence)
        let fenceBytes = blocks * StreamTableRun.fenceEntrySize
        if fenceBytes + StreamTableRun.checksumSize <= bytes.count - fenceOffset {
            for i in 0..<blocks {
                let start = load64(bytes, at: fenceOffset + i * StreamTableRun.fenceEntrySize + 8)
                let end = i + 1 < blocks ? load64(bytes, at: fenceOffset + (i + 1) * StreamTableRun.fenceEntrySize + 8) : fence
                guard start >= UInt64(StreamTableRun.headerSize), end <= fence, end >= start,
                      end - start >= UInt64(StreamTableRun.checksumSize) else { continue }
                fixBlock(&bytes, at: Int(start), count: Int(end - start) - StreamTableRun.checksumSize)
            }
            fixBlock(&bytes, at: fenceOffset, count: fenceBytes)
        }
        let bloomBytes = bloomBlocks * BloomFilter.blockBytes
        if bloomBytes + StreamTableRun.checksumSize <= bytes.count - Int(bloom) {
            fixBlock(&bytes, at: Int(bloom), count: bloomBytes)
        }
    }

    /// A CRC32C of `count` bytes at `offset`, stored right after them.
    static func fixBlock(_ bytes: inout [UInt8], at offset: Int, count: Int) {
        guard offset >= 0, count >= 0, count + 4 <= bytes.count - offset else { return }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
        store(crc, in: &bytes, at: offset + count)
    }

    static func load64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }

    static func load(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    static func store(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
