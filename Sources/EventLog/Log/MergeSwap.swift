#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The swap of a segment merge (Format.md §4.2): how the merged file takes
/// the place of the segments it replaces, so that a crash at any step
/// (recovery included) leaves exactly the old set of segments or the new
/// one.
///
/// The compaction manifest `eventlog.swap` commits the swap: before its
/// rename nothing of the old set has changed; after it, every step is
/// repeatable, and `finish` repeats them all, in this order:
/// 1. the old segments' `.index`, `.timeindex` and `.streamindex` files are
///    unlinked (rebuilt from whichever file is in place);
/// 2. the merged file, at `NNNN.segment.tmp` (written and synced before the
///    manifest), is renamed over the first old segment, the directory synced;
/// 3. the other old segment files are unlinked, the directory synced;
/// 4. `eventlog.start`'s count of segment rewrites goes up by one, so that
///    read-only processes look for replaced files (§3.1);
/// 5. the manifest is removed, the directory synced.
///
/// A manifest whose merged file is neither at its temporary name nor in
/// place (its header checksum tells the new file from the old one) is one
/// whose swap never reached step 2, so no old segment file was touched
/// (step 1's index files are rebuilt by the open): the manifest alone goes
/// (rolled back). Every call blocks on the disk;
/// only a writer (holding the writer lock) calls `commit` and `finish`.
enum MergeSwap {
    /// Where the merged file of a merge starting at `base` is written before the swap.
    static func temporary(_ base: UInt64) -> String { FileNames.segment(base) + ".tmp" }

    /// What `finish` did.
    enum Outcome: Equatable {
        case rolledForward
        case rolledBack
    }

    /// Commits the swap described by `manifest` (its merged file already
    /// written and synced at `temporary(manifest.newBase)`): writes the
    /// manifest atomically, then finishes the swap.
    static func commit(_ manifest: CompactionManifest, in directory: DirectoryOperations) throws {
        try directory.writeAtomically(FileNames.compactionManifest, bytes: manifest.encode())
        _ = try finish(manifest, in: directory)
    }

    /// Rolls the committed swap of `manifest` forward (steps 1–5), or back
    /// when it never reached its rename. Idempotent: a crash inside it is
    /// finished by the next call. Returns what it did and the files it removed.
    static func finish(_ manifest: CompactionManifest, in directory: DirectoryOperations) throws -> (Outcome, [String]) {
        let names = Set(try directory.list())
        let temporary = temporary(manifest.newBase)
        let fromTemporary = try names.contains(temporary) && headerChecksum(of: temporary, in: directory) == manifest.newHeaderChecksum
        guard try fromTemporary || headerChecksum(of: FileNames.segment(manifest.newBase), in: directory) == manifest.newHeaderChecksum else {
            // Never renamed: the old set is whole. (A leftover temporary file goes with the open's `.tmp` files.)
            try directory.remove(FileNames.compactionManifest)
            return (.rolledBack, [FileNames.compactionManifest])
        }
        var removed: [String] = []
        for base in manifest.oldBases {
            for name in [FileNames.offsetIndex(base), FileNames.timeIndex(base), FileNames.streamIndex(base)] where names.contains(name) {
                try directory.remove(name)
                removed.append(name)
            }
        }
        if fromTemporary { try directory.rename(temporary, to: FileNames.segment(manifest.newBase)) }
        for base in manifest.oldBases.dropFirst() where names.contains(FileNames.segment(base)) {
            try directory.remove(FileNames.segment(base))
            removed.append(FileNames.segment(base))
        }
        try directory.sync()
        if var start = try LogStart.read(in: directory) {
            start.rewrites &+= 1
            start.writtenAt = currentTimestamp()
            try start.write(in: directory)
        }
        try directory.remove(FileNames.compactionManifest)
        removed.append(FileNames.compactionManifest)
        return (.rolledForward, removed)
    }

    /// For a writer's open, before anything else changes: finishes or
    /// undoes a swap under way. Nil when there is no manifest. Throws
    /// `unsupportedFormatVersion` or `corruption` (naming the manifest and
    /// the offset) for a manifest it cannot read: nothing is changed then.
    static func recover(in directory: DirectoryOperations) throws -> (RecoveryReport.PendingMerge, [String])? {
        guard let manifest = try CompactionManifest.read(in: directory) else { return nil }
        let (outcome, removed) = try finish(manifest, in: directory)
        switch outcome {
        case .rolledForward: return (.rolledForward(base: manifest.newBase, end: manifest.newDeclaredEnd), removed)
        case .rolledBack: return (.rolledBack(base: manifest.newBase, end: manifest.newDeclaredEnd), removed)
        }
    }

    /// For a reader that changes nothing (a read-only open, `verify`,
    /// `inspect`, a repair's plan): the base positions of segment files a
    /// committed swap has merged away, to be left out of the set. Empty
    /// when there is no manifest, or when the merged file is not in place
    /// yet (the old set is then whole and is the log). Throws as `recover`.
    static func mergedAway(in directory: DirectoryOperations) throws -> Set<UInt64> {
        guard let manifest = try CompactionManifest.read(in: directory) else { return [] }
        guard try headerChecksum(of: FileNames.segment(manifest.newBase), in: directory) == manifest.newHeaderChecksum else { return [] }
        return Set(manifest.oldBases.dropFirst())
    }

    /// The header checksum (bytes 60–63) of the file `name`; nil when it is
    /// missing or shorter than a header. Any other failure to read it is
    /// thrown: a swap is never rolled back on a file it could not look at.
    private static func headerChecksum(of name: String, in directory: DirectoryOperations) throws(IOError) -> UInt32? {
        let file: FileHandle
        do { file = try FileHandle.open(directory.file(name), readOnly: true, faults: directory.faults) } catch {
            if error.errno == ENOENT { return nil }
            throw error
        }
        var header = [UInt8](repeating: 0, count: SegmentHeader.size)
        var read: Result<Int, IOError> = .success(0)
        header.withUnsafeMutableBytes { raw in
            do throws(IOError) { read = .success(try file.read(into: raw, at: 0)) } catch { read = .failure(error) }
        }
        guard try read.get() == SegmentHeader.size else { return nil }
        return ByteReader(bytes: header).le(SegmentHeader.size - 4, UInt32.self)
    }
}
