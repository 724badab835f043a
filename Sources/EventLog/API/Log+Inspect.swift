extension Log {
    /// Checks a log without changing it: every batch checksum and chain link,
    /// every record checksum, the segment headers, that no segment is
    /// missing, every index file (offset, time and stream index) against
    /// indexes rebuilt from the log, the stream table runs, and the cursor
    /// journal's header and records. Works beside a live writer (it takes no
    /// lock) and on a log that will not open. Blocks on the disk; reads
    /// every byte of the log.
    ///
    /// - Throws: only when `path` holds no log at all; damage is reported in
    ///   the returned report.
    public static func verify(at path: String) throws -> VerificationReport {
        try verify(at: path, progress: nil)
    }

    /// `verify(at:)`, telling `progress` after each segment how far it has
    /// come (on the calling thread; for a progress bar).
    public static func verify(
        at path: String, progress: ((VerificationProgress) -> Void)?
    ) throws -> VerificationReport {
        try verify(at: path, progress: progress, faults: nil)
    }

    /// `verify(at:progress:)` through a fault plan (tests).
    static func verify(
        at path: String, progress: ((VerificationProgress) -> Void)?, faults: StorageFaults?
    ) throws -> VerificationReport {
        var report = try LogVerifier.verify(at: path, progress: progress, faults: faults) { segment, directory, report in
            StreamIndexBuilder.verifyFile(of: segment, directory: directory, report: &report)
        }
        let directory = DirectoryOperations(path: path, faults: faults)
        StreamIndexBuilder.verifyRuns(in: directory, report: &report)
        ConsumerStore.verifyJournal(in: directory, report: &report)
        return report
    }

    /// The on-disk format version this build writes (Format.md §12); it
    /// reads this one and the older ones it can upgrade.
    public static var formatVersion: Int { Int(FormatVersion.current) }

    /// Describes the log in `path` without changing it: its identity and
    /// format version, how its last session ended, and each segment's extent.
    /// Works beside a live writer. Blocks on the disk.
    ///
    /// Each segment's extent comes from its index files, when the segment
    /// confirms them (Format.md §7), and a walk of the batch headers after
    /// what they describe (the active segment's since its last checkpoint):
    /// a bounded read per segment, whatever its size. A segment whose index
    /// files are missing or cannot be used, and a rewritten one, is walked
    /// whole (`SegmentInspection.scanned` says why). Batches are counted
    /// only where every batch header is walked. `verify` checks the checksums.
    ///
    /// - Parameters:
    ///   - path: the log's directory.
    ///   - scan: walk every batch header of every segment, which counts the
    ///     batches but reads about the whole log.
    /// - Throws: `EventLogError.io` when the directory or a file cannot be
    ///   read; `foreignFile` or `unsupportedFormatVersion` for files that are
    ///   not this log's or of a format this build does not read.
    public static func inspect(at path: String, scan: Bool = false) throws -> LogInspection {
        var inspection = try LogInspection.read(at: path, scan: scan)
        // The cursor journal, as a reader's open finds it (Format.md §10.2, §15).
        inspection.damagedFiles += ConsumerStore.findDamage(in: DirectoryOperations(path: path, faults: nil))
        return inspection
    }
}
