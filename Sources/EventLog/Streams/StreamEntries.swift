/// One event of the active segment in the stream index (memory only; sealed
/// segments keep theirs in `.streamindex` files).
struct StreamEntry: Sendable, Equatable {
    var relativePosition: UInt32
    /// Where the record is: its byte offset in the segment, or, for a record
    /// inside an LZ4 batch, the batch's offset with bit 31 set.
    var offset: UInt32
    var stream: UInt32
    /// The same stream's previous entry in this segment (index + 1; 0: none).
    var previous: UInt32
    var version: UInt64

    static let compressedFlag: UInt32 = 1 << 31
}

/// Append-only storage for the active segment's stream entries, in chunks
/// allocated as needed, shared by the writer and readers without a lock in
/// the same way as `IndexBuffer`: readers only read below the count in their
/// snapshot, and no entry moves once written.
///
/// One of the few audited types that hold raw pointers.
final class StreamEntries: @unchecked Sendable {
    static let chunkShift = 16
    static let chunkSize = 1 << chunkShift

    private let chunks: UnsafeMutablePointer<UnsafeMutablePointer<StreamEntry>?>
    private let chunkSlots: Int
    /// Written by the writer only.
    private(set) var writtenCount = 0

    /// Room for the entries of a segment of `segmentBytes` (every record is at least 10 bytes).
    init(segmentBytes: Int) {
        chunkSlots = max(1, segmentBytes / 10 / Self.chunkSize + 1)
        chunks = .allocate(capacity: chunkSlots)
        chunks.initialize(repeating: nil, count: chunkSlots)
    }

    deinit {
        for i in 0..<chunkSlots { chunks[i]?.deallocate() }
        chunks.deallocate()
    }

    /// Appends an entry (writer only); returns its index, or nil when full.
    @discardableResult
    func append(_ entry: StreamEntry) -> Int? {
        let index = writtenCount
        let slot = index >> Self.chunkShift
        guard slot < chunkSlots else { return nil }
        if chunks[slot] == nil {
            let chunk = UnsafeMutablePointer<StreamEntry>.allocate(capacity: Self.chunkSize)
            chunks[slot] = chunk
        }
        (chunks[slot]! + (index & (Self.chunkSize - 1))).initialize(to: entry)
        writtenCount += 1
        return index
    }

    /// Drops entries at or after `count` (writer only, before publishing a smaller count).
    func removeAll(from count: Int) {
        if count < writtenCount { writtenCount = count }
    }

    @inline(__always) subscript(i: Int) -> StreamEntry {
        chunks[i >> Self.chunkShift]![i & (Self.chunkSize - 1)]
    }
}
