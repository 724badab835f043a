/// Walks the batches of one mapped segment, checking every frame: the tool
/// behind recovery, index rebuilds, `verify` and `inspect`.
struct SegmentScanner {
    /// Where and why a walk stopped.
    enum Stop: Equatable {
        /// Zeros (or the end of the file) after the last batch.
        case endOfData
        /// Bytes at `offset` are not a valid next batch.
        case invalid(offset: Int, reason: String)
        /// Bytes at `offset` cannot be read (`MappedBytes.touch`): not a
        /// verdict on the data, an error to report.
        case unreadable(offset: Int)
    }

    struct Outcome {
        var stop: Stop
        /// Offset after the last valid batch.
        var dataEnd: Int
        var endPosition: UInt64
        var lastBatchOffset: Int
        var lastBatchCRC: UInt32
        var batches: Int
        var firstTimestamp: Timestamp?
        var maxTimestamp: Timestamp
        /// For an invalid stop: the header found there, when it was readable.
        var invalidHeader: BatchHeader?
    }

    /// Scans `bytes` from `offset` until the end of the data or the first
    /// invalid frame. `visit` sees each valid batch with its offset.
    ///
    /// With `readable` (a mapped file), no byte in a hole of the file is
    /// touched: a hole where a batch would start reads as zeros (the end of
    /// the data), and a frame that runs into one is invalid (never written).
    ///
    /// `declaredEnd`: the segment is a rewritten one (Format.md §4) that
    /// ends there: batches may leave gaps, and the outcome's end position
    /// is the end of the last batch found (the caller knows the segment's).
    static func scan(
        _ bytes: UnsafeRawBufferPointer, from offset: Int, end: Int, previousCRC: UInt32, expectedBase: UInt64,
        declaredEnd: UInt64? = nil, lastBatchOffset: Int = 0, readable: ReadableRegions? = nil,
        visit: (BatchHeader, Int) -> Void = { _, _ in }
    ) -> Outcome {
        var outcome = Outcome(
            stop: .endOfData, dataEnd: offset, endPosition: expectedBase, lastBatchOffset: lastBatchOffset,
            lastBatchCRC: previousCRC, batches: 0, firstTimestamp: nil, maxTimestamp: .min)
        var at = offset
        while true {
            // Holes read as zeros without being touched; the rest is read
            // under the SIGBUS guard: a frame that cannot be read is an
            // error, not a verdict.
            let check = readable.flatMap {
                checkAcrossHoles(
                    bytes, at: at, end: end, previousCRC: outcome.lastBatchCRC, expectedBase: outcome.endPosition,
                    declaredEnd: declaredEnd, readable: $0)
            } ?? BatchHeader.check(
                bytes, at: at, end: end, previousCRC: outcome.lastBatchCRC, expectedBase: outcome.endPosition,
                declaredEnd: declaredEnd, guarded: true)
            switch check {
            case .unreadable:
                outcome.stop = .unreadable(offset: at)
                return outcome
            case .endOfData:
                outcome.stop = .endOfData
                return outcome
            case .invalid(let reason, let header):
                outcome.stop = .invalid(offset: at, reason: reason)
                outcome.invalidHeader = header
                return outcome
            case .valid(let header):
                visit(header, at)
                if outcome.firstTimestamp == nil { outcome.firstTimestamp = header.firstTimestamp }
                outcome.maxTimestamp = max(outcome.maxTimestamp, header.maxTimestamp)
                outcome.lastBatchOffset = at
                outcome.lastBatchCRC = header.crc
                outcome.endPosition = header.endPosition
                outcome.batches += 1
                at += Int(header.length)
                outcome.dataEnd = at
            }
        }
    }
}

extension SegmentScanner {
    /// The check of the frame at `at` when it touches a hole of the file; nil
    /// when it lies wholly in data (check it in place). A hole reads as zeros
    /// (Format.md §10, "Holes"), but reading one through the mapping can raise
    /// SIGBUS (a full tmpfs), so the frame is checked on a copy in which the
    /// hole's bytes are zeros and only data regions were read. The checksum
    /// decides, as everywhere: a hole can hold a written, synced batch's bytes
    /// when they are zeros (file systems that store zero blocks as holes), and
    /// a torn write's unwritten pages fail the checksum.
    static func checkAcrossHoles(
        _ bytes: UnsafeRawBufferPointer, at: Int, end: Int, previousCRC: UInt32?, expectedBase: UInt64?,
        declaredEnd: UInt64? = nil, readable: ReadableRegions
    ) -> FrameCheck? {
        guard at < end else { return nil }
        let headerEnd = min(end, at + BatchHeader.size)
        var length = headerEnd - at
        if readable.contains(at..<headerEnd) {
            guard length == BatchHeader.size else { return nil }
            let claimed = Int(bytes.loadLE(at: at, as: UInt32.self))
            guard claimed >= BatchHeader.size, claimed <= Limits.maxBatchBytes, claimed <= end - at,
                  !readable.contains(at..<(at + claimed))
            else { return nil }
            length = claimed
        } else {
            guard let header = zeroFilledCopy(bytes, at..<headerEnd, readable: readable) else { return .unreadable }
            if header.count == BatchHeader.size {
                let claimed = Int(header.withUnsafeBytes { $0.loadLE(at: 0, as: UInt32.self) })
                // An impossible length is reported by the check on the header alone.
                if claimed >= BatchHeader.size, claimed <= Limits.maxBatchBytes { length = min(claimed, end - at) }
            }
        }
        guard let frame = zeroFilledCopy(bytes, at..<(at + length), readable: readable) else { return .unreadable }
        return frame.withUnsafeBytes {
            BatchHeader.check($0, at: 0, end: length, previousCRC: previousCRC, expectedBase: expectedBase, declaredEnd: declaredEnd)
        }
    }

    /// `bytes[range]` with the bytes in holes of the file as zeros, reading
    /// only data regions (under the SIGBUS guard); nil when one cannot be read.
    static func zeroFilledCopy(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, readable: ReadableRegions) -> [UInt8]? {
        var copy = [UInt8](repeating: 0, count: range.count)
        var at = range.lowerBound
        while at < range.upperBound, let region = readable.region(atOrAfter: at), region.lowerBound < range.upperBound {
            let piece = region.lowerBound..<min(region.upperBound, range.upperBound)
            guard MappedBytes.touch(bytes, piece) else { return nil }
            copy.withUnsafeMutableBytes { out in
                out.baseAddress!.advanced(by: piece.lowerBound - range.lowerBound)
                    .copyMemory(from: bytes.baseAddress!.advanced(by: piece.lowerBound), byteCount: piece.count)
            }
            at = piece.upperBound
        }
        return copy
    }
}

extension Segment {
    /// Takes in what a scan from this segment's data end found: its extent,
    /// last batch, timestamps and the index entries the scan added.
    mutating func extend(with outcome: SegmentScanner.Outcome) {
        endPosition = outcome.endPosition
        dataEnd = outcome.dataEnd
        lastBatchOffset = outcome.lastBatchOffset
        lastBatchCRC = outcome.lastBatchCRC
        if firstTimestamp == nil { firstTimestamp = outcome.firstTimestamp }
        maxTimestamp = max(maxTimestamp, outcome.maxTimestamp)
        offsetIndexCount = offsetIndex.writtenCount
        timeIndexCount = timeIndex.writtenCount
    }
}
