import CSystemCalls
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A thread that reads just ahead of a long scan (`Log.read(from:)`), so
/// that the scan finds its pages mapped and its bytes in the CPU's caches.
///
/// Why: the first scan through a mapping pays a page fault for every few
/// pages and a cache miss for every line; on the benchmark machine that is
/// about half a cold scan's time (R1: 18.6M events/s). This thread takes
/// both on another core, at most `window` bytes ahead, and the scan, which
/// still verifies every batch's checksum itself, runs at 32M events/s. It
/// reads nothing the scan would not: one byte of each cache line, under the
/// SIGBUS guard (a byte it cannot read stops it; the scan then reports the
/// damage where it meets it).
///
/// A mapping read ahead once is not read ahead again (`MappedRegion.readAheadEnd`):
/// once its pages are mapped, a second reader of the same lines only takes
/// them from the other core's cache, which made warm scans slower (22.7M
/// against 17.9M events/s).
///
/// Limits: started only for a scan that may lend `minimumEvents` or more
/// and has `minimumBytes` or more not yet read ahead; one thread per scan
/// (scans that start together may each start one), joined before the scan
/// returns. When no thread can be made, the scan reads alone.
///
/// Thread-safe: the scan and the thread share atomics only; the bytes read
/// are published batches, which never change.
final class ScanReadAhead: @unchecked Sendable {
    /// What a scan will read of one segment: bytes `start..<end` of its mapping.
    struct Region {
        let mapping: MappedRegion
        let start: Int
        let end: Int
    }

    /// A scan that may lend fewer events reads alone.
    static let minimumEvents = 1 << 16
    /// A scan with fewer bytes ahead of it not yet read ahead reads alone.
    static let minimumBytes = 8 << 20
    /// How far ahead of the scan the thread reads at most: beyond about
    /// this, lines it read were gone from the caches before the scan came
    /// (4 MiB: 29M events/s, 16 MiB: 24M, against 33M at 2 MiB).
    static let window = 2 << 20
    /// How much it reads between looks at the scan and at `stop`.
    static let chunk = 128 << 10

    private let regions: [Region]
    /// Where each region starts in the scan's running count of bytes.
    private let regionBases: [Int]
    /// How far the scan has come, in that running count.
    private let scanned = Atomic<Int>(0)
    private let stop = Atomic<Bool>(false)
    /// The thread: set by `start` before it can run, joined by `finish`.
    private var thread = pthread_t()

    private init(regions: [Region], regionBases: [Int]) {
        self.regions = regions
        self.regionBases = regionBases
    }

    /// Starts a thread reading ahead of a scan of `regions` (in the order
    /// the scan reads them) that may lend `maxCount` events; nil when the
    /// scan is too short for one to pay (see the limits).
    static func start(regions: [Region], maxCount: Int) -> ScanReadAhead? {
        guard maxCount >= minimumEvents else { return nil }
        var bases: [Int] = []
        bases.reserveCapacity(regions.count)
        var total = 0
        var unread = 0
        for region in regions {
            bases.append(total)
            total += region.end - region.start
            unread += max(0, region.end - max(region.start, region.mapping.readAheadEnd.load(ordering: .relaxed)))
        }
        guard unread >= minimumBytes else { return nil }
        let readAhead = ScanReadAhead(regions: regions, regionBases: bases)
        // No thread (the process's limit): the scan reads alone.
        guard let thread = OwnThread.start({ readAhead.run() }) else { return nil }
        readAhead.thread = thread
        return readAhead
    }

    /// The scan is at byte `offset` of region `index` (cheap: one relaxed store).
    @inline(__always)
    func scanReached(region index: Int, offset: Int) {
        scanned.store(regionBases[index] + offset - regions[index].start, ordering: .relaxed)
    }

    /// Stops the thread and waits for it (at most one chunk's reading).
    func finish() {
        stop.store(true, ordering: .relaxed)
        pthread_join(thread, nil)
    }

    /// The longest pause between two looks at a scan that is `window`
    /// behind (a caller slow with each event: a thousand looks a second at most).
    static let longestPauseMicroseconds: UInt32 = 1_000

    private func run() {
        var pause: UInt32 = 20
        for (index, region) in regions.enumerated() {
            var offset = max(region.start, region.mapping.readAheadEnd.load(ordering: .relaxed))
            guard offset < region.end, let base = region.mapping.base else { continue }
            while offset < region.end {
                if stop.load(ordering: .relaxed) { return }
                if regionBases[index] + offset - region.start - scanned.load(ordering: .relaxed) > Self.window {
                    usleep(pause)
                    pause = min(pause * 2, Self.longestPauseMicroseconds)
                    continue
                }
                pause = 20
                let count = min(Self.chunk, region.end - offset)
                if eventlog_guarded_read_lines(base + offset, Int64(count)) != 0 { return }
                offset += count
                _ = region.mapping.readAheadEnd.max(offset, ordering: .relaxed)
            }
        }
    }
}
