/// One event of the active segment in the stream index (memory only; sealed
/// segments keep theirs in `.streamindex` files).
struct StreamEntry: Sendable, Equatable {
    var relativePosition: UInt32
    /// Where the record is: its byte offset in the segment, or, for a record
    /// inside an LZ4 batch, the batch's offset with bit 31 set.
    var offset: UInt32
    /// The previous entry in this segment whose stream has the same hash
    /// (index + 1; 0: none): see `SegmentStreamEntries`.
    var previous: UInt32
    var version: UInt64
    /// The stream's hash (a rebase copies entries into a new chain map).
    var hash: UInt64

    static let compressedFlag: UInt32 = 1 << 31
}

/// Append-only storage for the active segment's stream entries, in chunks
/// allocated as needed, shared by the writer and readers without a lock in
/// the same way as `IndexBuffer`: readers only read below the count in their
/// snapshot, and no entry (nor any pointer leading to one) moves once written.
///
/// **Capacity.** It is not derived from the segment's size: with LZ4 a
/// record can take far less than its own length on disk (a batch of tiny,
/// alike events compresses to about 9 bytes an event, and the LZ4 block
/// format allows up to 255 decompressed bytes per stored byte), so no
/// bytes-per-record bound holds. Instead it covers every index an entry can
/// have: entries are addressed by `UInt32` (the `previous` links store
/// index + 1; the stream index file stores u32 relative positions, entry
/// indexes and counts), so a segment holds at most `capacity` =
/// `UInt32.max` entries. The writer starts a new segment before a segment
/// would hold more events than that (`Log.rollIfNeeded`), so its `append`
/// cannot fail; a segment read from disk that holds more is refused as
/// corruption by the callers of `append`.
///
/// The storage is three levels deep so that only what is used is allocated:
/// a fixed root of 256 pointers, pages of 256 chunk pointers (2 KiB each,
/// allocated as needed), and chunks of 65,536 entries (allocated as needed,
/// each a mapped `PageBlock` of 2 MiB: only the pages its entries reach
/// become resident, and all go back to the kernel when the entries are
/// dropped, at each stream index file of the segment).
///
/// One of the few audited types that hold raw pointers.
final class StreamEntries: @unchecked Sendable {
    typealias Chunk = UnsafeMutablePointer<StreamEntry>
    typealias Page = UnsafeMutablePointer<Chunk?>

    static let chunkShift = 16
    static let chunkSize = 1 << chunkShift
    static let pageShift = 8
    static let pageSize = 1 << pageShift
    static let rootSize = 256
    /// Most entries: every index below it fits the `UInt32` links (index + 1).
    static let capacity = Limits.maxSegmentEvents

    private let root: UnsafeMutablePointer<Page?>
    /// The chunks' memory, in order (writer only; readers go through `root`).
    private var blocks: [PageBlock] = []
    /// Written by the writer only.
    private(set) var writtenCount = 0

    init() {
        // rootSize × pageSize × chunkSize = 2³² slots: room for `capacity`.
        root = .allocate(capacity: Self.rootSize)
        root.initialize(repeating: nil, count: Self.rootSize)
    }

    deinit {
        for r in 0..<Self.rootSize {
            guard let page = root[r] else { continue }
            page.deallocate()
        }
        root.deallocate()
    }

    /// Appends an entry (writer only); returns its index, or nil when the
    /// index already holds `capacity` entries (nothing is appended then).
    func append(_ entry: StreamEntry) -> Int? {
        let index = writtenCount
        guard index < Self.capacity else { return nil }
        let r = index >> (Self.chunkShift + Self.pageShift)
        let page: Page
        if let existing = root[r] {
            page = existing
        } else {
            page = .allocate(capacity: Self.pageSize)
            page.initialize(repeating: nil, count: Self.pageSize)
            root[r] = page
        }
        let c = (index >> Self.chunkShift) & (Self.pageSize - 1)
        let chunk: Chunk
        if let existing = page[c] {
            chunk = existing
        } else {
            let block = PageBlock(byteCount: Self.chunkSize * MemoryLayout<StreamEntry>.stride)
            blocks.append(block)
            chunk = block.base.bindMemory(to: StreamEntry.self, capacity: Self.chunkSize)
            page[c] = chunk
        }
        (chunk + (index & (Self.chunkSize - 1))).initialize(to: entry)
        writtenCount += 1
        return index
    }

    /// Entry `i`, for `i` below a count published after it was written (so
    /// its page and chunk exist).
    @inline(__always) subscript(i: Int) -> StreamEntry {
        root[i >> (Self.chunkShift + Self.pageShift)]![(i >> Self.chunkShift) & (Self.pageSize - 1)]![i & (Self.chunkSize - 1)]
    }
}
