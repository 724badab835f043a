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
    static func scan(
        _ bytes: UnsafeRawBufferPointer, from offset: Int, end: Int, previousCRC: UInt32, expectedBase: UInt64,
        lastBatchOffset: Int = 0, readable: ReadableRegions? = nil, visit: (BatchHeader, Int) -> Void = { _, _ in }
    ) -> Outcome {
        var outcome = Outcome(
            stop: .endOfData, dataEnd: offset, endPosition: expectedBase, lastBatchOffset: lastBatchOffset,
            lastBatchCRC: previousCRC, batches: 0, firstTimestamp: nil, maxTimestamp: .min)
        var at = offset
        while true {
            if let readable, let stop = holeStop(bytes, at: at, end: end, readable: readable) {
                outcome.stop = stop
                return outcome
            }
            // Read under the SIGBUS guard: a frame that cannot be read is an error, not a verdict.
            switch BatchHeader.check(
                bytes, at: at, end: end, previousCRC: outcome.lastBatchCRC, expectedBase: outcome.endPosition, guarded: true) {
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
    /// Where a walk must stop, without reading, because of a hole of the file
    /// at `at`: a hole (or data that is all zeros up to one) where a header
    /// would be is the end of the data; a header or frame that runs into a
    /// hole is invalid. Nil when the frame at `at` lies in data (or runs past
    /// `end`, which `BatchHeader.check` reports).
    static func holeStop(_ bytes: UnsafeRawBufferPointer, at: Int, end: Int, readable: ReadableRegions) -> Stop? {
        guard at < end else { return nil }
        guard let region = readable.region(containing: at) else { return .endOfData }
        let headerEnd = min(end, at + BatchHeader.size)
        if region.upperBound < headerEnd {
            let present = UnsafeRawBufferPointer(rebasing: bytes[at..<region.upperBound])
            if present.allSatisfy({ $0 == 0 }) { return .endOfData }
            return .invalid(offset: at, reason: "a batch header runs into a hole of the file at byte \(region.upperBound) (never written)")
        }
        guard headerEnd - at == BatchHeader.size else { return nil }
        let length = Int(bytes.loadLE(at: at, as: UInt32.self))
        guard length >= BatchHeader.size, length <= end - at, at + length > region.upperBound else { return nil }
        return .invalid(
            offset: at, reason: "batch of \(length) bytes runs into a hole of the file at byte \(region.upperBound) (never written)")
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
