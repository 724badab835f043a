import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Tells a read-only follower (`tail -f`) whether another process may have
/// appended since it last opened the log, so it opens the log again only
/// then: a read-only `Log` sees the log as it was when opened, and opening
/// one costs work in proportion to the active segment.
///
/// Appends write the newest segment with `pwrite`, which sets its
/// modification time; a segment roll adds a file. So the log may hold new
/// events when the newest segment's name or modification time differ from
/// what they were before the last open. File times are coarse (a clock tick,
/// up to 2 s on some file systems), so a time taken less than
/// `trustedAgeSeconds` before that open proves nothing: the follower opens
/// again until the segment has been quiet that long. And it opens again at
/// least every `forcedRefreshSeconds` whatever the files say.
///
/// Not thread-safe: one follower owns it.
struct SegmentWatch {
    /// A modification time at least this much older than an open is trusted to change on the next append.
    static let trustedAgeSeconds: Int64 = 3
    /// The longest a follower goes without opening the log again.
    static let forcedRefreshSeconds: Int64 = 5

    struct Fingerprint: Equatable {
        var newestSegment: String
        var modifiedNanoseconds: Int64
    }

    let directory: String
    private var atLastOpen: Fingerprint?
    private var lastOpenNanoseconds: Int64 = 0

    init(directory: String) {
        self.directory = directory
    }

    /// Records the files' state right before the log is opened.
    mutating func noteOpening() {
        lastOpenNanoseconds = Self.now()
        atLastOpen = fingerprint()
    }

    /// True when the log should be opened again to see appends of other processes.
    func mayHaveChanged() -> Bool {
        let now = Self.now()
        guard let before = atLastOpen, now - lastOpenNanoseconds < Self.forcedRefreshSeconds * 1_000_000_000 else { return true }
        if before.modifiedNanoseconds >= lastOpenNanoseconds - Self.trustedAgeSeconds * 1_000_000_000 { return true }
        return fingerprint() != before
    }

    /// The newest segment's name and modification time; nil when they cannot be read.
    func fingerprint() -> Fingerprint? {
        guard let newest = Self.newestSegment(in: directory) else { return nil }
        var info = stat()
        guard stat(directory + "/" + newest, &info) == 0 else { return nil }
        return Fingerprint(
            newestSegment: newest, modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// The segment file with the highest base position: its name is the
    /// zero-padded base position, so the greatest name.
    static func newestSegment(in directory: String) -> String? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var newest: String?
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasSuffix(".segment"), name > (newest ?? "") { newest = name }
        }
        return newest
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
