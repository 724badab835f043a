/// Which bytes of a mapped segment file may be touched: its data regions,
/// not its holes (Format.md §10, "Holes").
///
/// A segment file is created sparse and written from the front, so past the
/// data it is mostly a hole. Reading a hole through a shared mapping makes
/// the kernel supply a page; on a full tmpfs it cannot, and the read raises
/// SIGBUS, which kills the process. Code that looks at bytes nobody has
/// confirmed to be data (a scan past the published end, recovery's look past
/// a stop, `inspect`'s walk of headers, an index file's claim) asks here
/// first and treats bytes in a hole as zeros without touching them.
///
/// The current data region is remembered, so a walk through contiguous data
/// costs one `lseek` pair in all. Not thread-safe: one per walk.
final class ReadableRegions {
    private let file: FileHandle?
    private let length: Int
    /// A region known to be data.
    private var known: Range<Int> = 0..<0

    /// The regions of `file`, `length` bytes long. Without a file (bytes in
    /// memory) everything below `length` counts as readable.
    init(file: FileHandle?, length: Int) {
        self.file = file
        self.length = length
    }

    /// True when every byte of `range` lies in a data region (an empty range: true).
    func contains(_ range: Range<Int>) -> Bool {
        guard range.lowerBound >= 0, range.upperBound <= length else { return false }
        if range.isEmpty || (known.lowerBound <= range.lowerBound && range.upperBound <= known.upperBound) { return true }
        guard let region = region(containing: range.lowerBound) else { return false }
        return range.upperBound <= region.upperBound
    }

    /// The data region holding `offset`, nil when `offset` is in a hole.
    func region(containing offset: Int) -> Range<Int>? {
        guard let next = region(atOrAfter: offset), next.lowerBound <= offset else { return nil }
        return next
    }

    /// The first data region at or after `offset` (clipped to start there), nil when only holes follow.
    func region(atOrAfter offset: Int) -> Range<Int>? {
        guard offset < length else { return nil }
        if known.contains(offset) { return offset..<known.upperBound }
        guard let file else { return offset..<length }
        guard let found = file.dataRegion(atOrAfter: Int64(offset), fileLength: Int64(length)) else { return nil }
        known = Int(found.lowerBound)..<Int(found.upperBound)
        return max(offset, known.lowerBound)..<known.upperBound
    }
}
