/// Walks the batches of one mapped segment, checking every frame: the tool
/// behind recovery, index rebuilds, `verify` and `inspect`.
struct SegmentScanner {
    /// Where and why a walk stopped.
    enum Stop: Equatable {
        /// Zeros (or the end of the file) after the last batch.
        case endOfData
        /// Bytes at `offset` are not a valid next batch.
        case invalid(offset: Int, reason: String)
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
    static func scan(
        _ bytes: UnsafeRawBufferPointer, from offset: Int, end: Int, previousCRC: UInt32, expectedBase: UInt64,
        lastBatchOffset: Int = 0, visit: (BatchHeader, Int) -> Void = { _, _ in }
    ) -> Outcome {
        var outcome = Outcome(
            stop: .endOfData, dataEnd: offset, endPosition: expectedBase, lastBatchOffset: lastBatchOffset,
            lastBatchCRC: previousCRC, batches: 0, firstTimestamp: nil, maxTimestamp: .min)
        var at = offset
        while true {
            switch BatchHeader.check(bytes, at: at, end: end, previousCRC: outcome.lastBatchCRC, expectedBase: outcome.endPosition) {
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

    /// After an invalid frame at `offset`: is there valid data beyond it? If
    /// so the damage is in the middle of the log (corruption), not a torn tail.
    /// Looks at the frame boundary the damaged header claims, and at every
    /// 8-byte-aligned offset for a valid frame continuing the positions.
    static func hasValidDataAfter(
        _ bytes: UnsafeRawBufferPointer, invalidAt offset: Int, header: BatchHeader?, end: Int, nextPosition: UInt64
    ) -> Bool {
        if let header, Int(header.length) >= BatchHeader.size {
            let next = offset + Int(header.length)
            if next < end, case .valid = BatchHeader.check(bytes, at: next, end: end, previousCRC: nil, expectedBase: nil) {
                return true
            }
        }
        // A bounded search for any later frame whose base position is ahead
        // of the damaged one: a valid batch there proves the damage is not
        // the tail. Limited to the damaged region's plausible extent.
        let limit = min(end, offset + Limits.maxBatchBytes + BatchHeader.size)
        var at = offset + 1
        while at + BatchHeader.size <= limit {
            let length = bytes.loadLE(at: at, as: UInt32.self)
            if length >= UInt32(BatchHeader.size), Int(length) <= end - at {
                let base = bytes.loadLE(at: at + 8, as: UInt64.self)
                if base >= nextPosition, base < nextPosition &+ UInt64(Limits.maxBatchRecords) * 64,
                   case .valid = BatchHeader.check(bytes, at: at, end: end, previousCRC: nil, expectedBase: nil) {
                    return true
                }
            }
            at += 1
        }
        return false
    }
}

extension SegmentSnapshot {
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
