@testable import EventLog

/// Recomputes the checksums a decoder checks first, over mutated bytes
/// (`FuzzTarget`). Never changes a byte a checksum does not cover, and never
/// reads out of bounds itself: bytes too short for a field are left alone.
enum Checksums {
    /// A CRC32C of bytes `0..<length - 4` stored little-endian at `length - 4`
    /// (the fixed and variable files, the index files, the segment header, a
    /// stream index's or stream table run's header).
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

    static func load(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    static func store(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
