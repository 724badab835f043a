/// Where the data of the last segment stops after a crash, and whether what
/// lies there is a torn tail (never acknowledged: cut it) or damage to data
/// that was on disk (an error). The rule is Format.md §10.
///
/// Power loss can leave any mixture of the writes made since the last sync:
/// a later batch kept while an earlier one is lost or torn. So a valid batch
/// after the stop does not by itself make the stop corruption. What does is
/// *evidence that the bytes at the stop had been synced*: a sync covering a
/// batch covers everything before it in the file, and a synced batch survives
/// a power loss, so damage there cannot be a crash's doing.
struct DataAfterStop: Sendable, Equatable {
    /// The first byte at or after the stop that is not zero; nil when all are.
    var firstNonZero: Int?
    /// Valid batches found after the stop (by trying every byte offset, then
    /// following their chain), with the positions they hold.
    var batches = 0
    var firstBatchOffset: Int?
    var positions: Range<UInt64>?
    /// The highest synced end those batches recorded (Format.md §5, synced
    /// lag), and the offset of the batch that recorded it.
    var syncedEnd: Int?
    var syncedEndWitness = 0
}

/// "Every byte of the segment before `bound` was on disk", and who says so.
struct SyncEvidence: Sendable {
    var bound: Int
    var source: String
}

/// What recovery does where the last segment's data stops.
enum StopVerdict: Equatable {
    /// Zeros to the end of the file: the data ends here.
    case endOfData
    /// A torn tail: cut from the stop to the end of the file.
    case tornTail(reason: String)
    /// Damage to data that was on disk: refuse, naming the offset.
    case corruption(reason: String)

    /// How `verify` reports it: nil at a plain end of the data.
    var problemText: String? {
        switch self {
        case .endOfData: return nil
        case .tornTail(let text): return text + " (a torn tail: the next open cuts it)"
        case .corruption(let text): return text + " (damage to data that was on disk, not a torn tail: nothing is cut)"
        }
    }
}

extension SegmentScanner.Stop {
    /// Why the frame at the stop is invalid; nil at zeros or unreadable bytes.
    var invalidReason: String? {
        if case .invalid(_, let reason) = self { return reason }
        return nil
    }
}

extension SegmentScanner {
    /// Examines `[stop, end)` of a mapped segment: the first non-zero byte,
    /// and every valid batch that continues the positions after
    /// `nextPosition` (frames are found at any byte offset; holes of the file,
    /// as `dataRegion` reports them, are skipped without being read).
    static func examine(
        _ bytes: UnsafeRawBufferPointer, after stop: Int, end: Int, nextPosition: UInt64, readable: ReadableRegions
    ) -> DataAfterStop {
        var result = DataAfterStop()
        var expected = nextPosition
        var at = stop
        // Positions a frame this far on could plausibly start at: no record
        // is smaller than 1/32 byte once compressed (LZ4 shrinks at most 255:1).
        let plausiblePositions = UInt64(max(0, end - stop)) &* 32 &+ UInt64(Limits.maxBatchRecords)
        while at < end, let region = readable.region(atOrAfter: at) {
            var x = max(at, region.lowerBound)
            // Nothing is read past the region: the next one may be a hole.
            let regionEnd = min(end, region.upperBound)
            while x < regionEnd {
                // Zeros (preallocated space, a cut tail) go by 64 bytes at a time.
                while x + 64 <= regionEnd, bytes.isZero64(at: x) { x += 60 }
                if x + 8 <= regionEnd, bytes.loadLE(at: x, as: UInt64.self) == 0 {
                    // No frame starts in [x, x+5): its length field would be zero.
                    x += 5
                    continue
                }
                if result.firstNonZero == nil, bytes[x] != 0 { result.firstNonZero = x }
                if x + BatchHeader.size <= regionEnd {
                    let length = bytes.loadLE(at: x, as: UInt32.self)
                    let base = bytes.loadLE(at: x + 8, as: UInt64.self)
                    // A frame that runs into a hole was never written whole.
                    if length >= UInt32(BatchHeader.size), Int(length) <= regionEnd - x,
                       base >= expected, base - expected <= plausiblePositions,
                       case .valid(let first) = BatchHeader.check(bytes, at: x, end: regionEnd, previousCRC: nil, expectedBase: nil) {
                        note(first, at: x, in: &result)
                        let chain = scan(
                            bytes, from: x + Int(first.length), end: end, previousCRC: first.crc,
                            expectedBase: first.endPosition, readable: readable
                        ) { batch, offset in note(batch, at: offset, in: &result) }
                        expected = chain.endPosition
                        x = chain.dataEnd
                        continue
                    }
                }
                x += 1
            }
            at = max(x, regionEnd)
        }
        return result
    }

    private static func note(_ batch: BatchHeader, at offset: Int, in result: inout DataAfterStop) {
        if result.firstBatchOffset == nil {
            result.firstBatchOffset = offset
            result.firstNonZero = min(result.firstNonZero ?? offset, offset)
        }
        let lower = result.positions?.lowerBound ?? batch.basePosition
        result.positions = lower..<batch.endPosition
        result.batches += 1
        if let synced = batch.syncedEnd(frameOffset: offset), synced > (result.syncedEnd ?? .min) {
            result.syncedEnd = synced
            result.syncedEndWitness = offset
        }
    }

    /// Judges the place `stop` where the last segment's scan stopped
    /// (`reason` nil: zeros there), from what follows it and the evidence
    /// of how far the data was synced (Format.md §10):
    /// - with `writerMayBeLive` (a read-only open, `verify`: no lock), a
    ///   valid batch continuing the chain (`previousCRC`, `nextPosition`) at
    ///   the stop now: the end of the data known. The bytes changed since the
    ///   scan, which only a live writer in another process does: the reader
    ///   read the stop before the writer's batch there, and whatever the look
    ///   past it saw was written after the scan. The next refresh reads on
    ///   from the stop;
    /// - evidence that bytes past the stop were on disk: corruption;
    /// - a valid batch later, and every sector-sized piece between the stop
    ///   and it holds data: corruption (a power loss leaves unsynced sectors
    ///   at their old contents, zeros past the data);
    /// - otherwise any non-zero byte from the stop on: a torn tail;
    /// - otherwise the end of the data.
    ///
    /// With `readable`, a hole between the stop and the later batch counts
    /// as a zero sector without being read.
    static func judge(
        _ bytes: UnsafeRawBufferPointer, stop: Int, reason: String?, previousCRC: UInt32, nextPosition: UInt64,
        after: DataAfterStop, evidence: [SyncEvidence], readable: ReadableRegions? = nil, writerMayBeLive: Bool
    ) -> StopVerdict {
        if writerMayBeLive, case .valid = BatchHeader.check(
            bytes, at: stop, end: bytes.count, previousCRC: previousCRC, expectedBase: nextPosition, guarded: true) {
            return .endOfData
        }
        var all = evidence.filter { $0.bound < .max }
        if let synced = after.syncedEnd {
            all.append(SyncEvidence(
                bound: synced, source: "the valid batch at byte \(after.syncedEndWitness) records that every byte before \(synced) was on disk"))
        }
        all += evidence.filter { $0.bound == .max }
        let what = reason ?? "zeros where the batch of position \(nextPosition) should start"
        // The first that applies, in the order: marker, checkpoint, later batch, position-wide claims.
        if let first = all.first(where: { $0.bound > stop }) {
            var text = what + "; " + first.source
            if let positions = after.positions { text += " (positions \(positions.lowerBound)..<\(positions.upperBound) follow)" }
            return .corruption(reason: text)
        }
        if let next = after.firstBatchOffset, readable?.contains(stop..<next) ?? true,
           !bytes.hasZeroSectorPiece(from: stop, to: next) {
            // A power loss leaves each unsynced sector as it was before (zeros,
            // past the data) or as written: damage with no such sector between
            // it and the next valid batch is not a crash's doing.
            return .corruption(reason: what + "; every sector up to the valid batch at byte \(next) was written, "
                + "so this is damage to written data, not a torn write")
        }
        guard reason != nil || after.firstNonZero != nil else { return .endOfData }
        var text = what
        if let positions = after.positions {
            text += "; \(after.batches) later batch(es), positions \(positions.lowerBound)..<\(positions.upperBound), "
                + "were never known to be on disk and go with it"
        }
        return .tornTail(reason: text)
    }
}

extension UnsafeRawBufferPointer {
    /// True when the 64 bytes at `offset` are zero (eight unaligned loads).
    @inline(__always) func isZero64(at offset: Int) -> Bool {
        var bits: UInt64 = 0
        for k in stride(from: 0, to: 64, by: 8) { bits |= loadLE(at: offset + k, as: UInt64.self) }
        return bits == 0
    }

    /// True when some piece of `[from, to)` cut at 512-byte sector boundaries
    /// of the file is all zeros: what a write a power loss did not keep leaves.
    func hasZeroSectorPiece(from: Int, to: Int) -> Bool {
        let sector = 512
        var start = from
        while start < to {
            let end = Swift.min(to, (start / sector + 1) * sector)
            if UnsafeRawBufferPointer(rebasing: self[start..<end]).allSatisfy({ $0 == 0 }) { return true }
            start = end
        }
        return false
    }
}

extension SyncEvidence {
    /// A stream table run reaches `covered`, past the log's end `logEnd`:
    /// runs are written after their data was synced (Format.md §14.3), so
    /// every byte of the last segment was on disk.
    static func streamTable(covering covered: UInt64, logEnd: UInt64) -> SyncEvidence {
        SyncEvidence(
            bound: .max,
            source: "a stream table run, written after its data was synced, covers positions up to \(covered) (the log ends at \(logEnd))")
    }

    /// The evidence files give of how far segment `base` was synced: the
    /// clean-shutdown marker's data end (when it names this segment) and an
    /// intact offset index file's data end, trusted or not (index files are
    /// written only after their data is synced: Format.md §7).
    static func recorded(base: UInt64, indexFileLimit: Int, markerDataEnd: Int?, directory: DirectoryOperations) -> [SyncEvidence] {
        var evidence: [SyncEvidence] = []
        if let markerDataEnd {
            evidence.append(SyncEvidence(
                bound: markerDataEnd, source: "the clean-shutdown marker records data up to byte \(markerDataEnd)"))
        }
        let name = FileNames.offsetIndex(base)
        if let bytes = try? directory.readWhole(name, atMost: indexFileLimit), let (header, _) = try? IndexFile.decodeOffsetIndex(bytes),
           header.basePosition == base {
            evidence.append(SyncEvidence(
                bound: Int(header.dataEnd),
                source: "the index checkpoint \(name), written after its data was synced, describes data up to byte \(header.dataEnd)"))
        }
        return evidence
    }
}
