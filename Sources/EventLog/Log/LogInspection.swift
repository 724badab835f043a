import struct Foundation.UUID
#if canImport(Glibc)
import Glibc
#endif

/// How the last session of a log ended, as `inspect` sees it.
public enum ShutdownState: Sendable, Equatable {
    /// Created and never closed, with nothing in it.
    case new
    /// Closed cleanly at this time.
    case clean(at: Timestamp)
    /// Not closed (crash, kill, power loss): the next open recovers the tail.
    case unclean
    /// A writer has it open right now.
    case open
}

/// One segment as `inspect` describes it.
public struct SegmentInspection: Sendable {
    /// The segment file's name.
    public var file: String
    /// The position of the segment's first event (its name).
    public var basePosition: UInt64
    /// The position after its last event (its declared end for a rewritten segment).
    public var endPosition: UInt64
    /// Its batches; nil when they were not counted: only a walk of every
    /// batch header counts them (`Log.inspect(at:scan:)` with `scan`, a
    /// rewritten segment, or a segment whose index files could not be used;
    /// see `scanned`). No file records a segment's batch count.
    public var batches: Int?
    /// Its events (markers included).
    public var events: UInt64
    /// Bytes of data (header and batches).
    public var bytes: Int64
    /// Bytes the file system allocated for the file.
    public var allocatedBytes: Int64
    /// The timestamp of its first batch (nil when it has none).
    public var firstTimestamp: Timestamp?
    /// The largest timestamp in the segment.
    public var lastTimestamp: Timestamp?
    /// True for every segment but the last, which appends go to.
    public var isSealed: Bool
    /// Batches stored LZ4-compressed; nil when the batches were not counted (as `batches`).
    public var compressedBatches: Int?
    /// Scavenging rewrote the segment without its dead records (Format.md
    /// §4): `events` counts the survivors, and positions between
    /// `basePosition` and `endPosition` may be missing.
    public var isRewritten = false
    /// Why every batch header of the segment was walked; nil when its index
    /// files described it (Format.md §7, "When an index is trusted"), and
    /// only the batches after what they describe were walked.
    public var scanned: ScanReason?

    /// Why `inspect` walked every batch header of a segment instead of
    /// reading its extent from its index files.
    public enum ScanReason: Sendable, Equatable, CustomStringConvertible {
        /// A scan was asked for (`Log.inspect(at:scan:)`).
        case asked
        /// A rewritten segment (Format.md §4.1): its index files do not
        /// count the events that survived in it.
        case rewritten
        /// Its index files could not be used: missing, damaged, or
        /// describing what the segment does not hold (the reason).
        case indexUnusable(String)

        /// "asked", "rewritten", or the reason the index files could not be used ("index missing", …).
        public var description: String {
            switch self {
            case .asked: return "asked"
            case .rewritten: return "rewritten"
            case .indexUnusable(let reason): return reason
            }
        }
    }
}

/// A description of a log's files (`Log.inspect(at:)`).
public struct LogInspection: Sendable {
    /// The log directory.
    public var path: String
    /// The format version in `eventlog.meta` (Format.md §12).
    public var formatVersion: Int
    /// The log's id, which every segment header repeats.
    public var logID: UUID
    /// When the log was created (microseconds since 1970).
    public var createdAt: Timestamp
    /// How the last writer left the log.
    public var lastShutdown: ShutdownState
    /// Every segment, in position order.
    public var segments: [SegmentInspection]
    /// The log start position `eventlog.start` records (Format.md §3.1).
    public var startPosition: UInt64
    /// The position the next appended event would get.
    public var endPosition: UInt64
    /// Bytes allocated to every file of the log (segments, indexes, metadata).
    public var allocatedBytes: Int64
    /// Positions no segment holds between the start and the end: missing
    /// segments (`eventlog verify` says more; the log will not open).
    public var missingPositions: [Range<UInt64>] = []
    /// Files found damaged that the events do not need (Format.md §10.2):
    /// a damaged or missing `eventlog.meta` (then the log id, version and
    /// creation time above are the segment headers'), a damaged or missing
    /// cursor journal or `eventlog.start`, a damaged settings file,
    /// clean-shutdown marker, last compaction file or compaction manifest.
    /// `verify` checks the rest.
    public var damagedFiles: [RecoveryReport.DamagedFile] = []
    /// The permission bits of the log directory (`0o700` as created by
    /// default; `LogOptions.fileMode`).
    public var directoryMode: UInt32 = 0
    /// The permission bits of every file and directory in the log directory,
    /// by name (symbolic links left out). A log whose directory or any of
    /// these the group or others can write does not open
    /// (`EventLogError.insecurePermissions`); files `0o644` of older builds
    /// do, but every local user can read them.
    public var fileModes: [String: UInt32] = [:]
    /// The log's encryption at rest as its key store (`eventlog.keys`)
    /// describes it, read without the master key; nil when it has none (a
    /// plain log; or an encrypted one whose key store was lost: `verify`
    /// tells them apart). A damaged entry is in `damagedFiles`.
    public var encryption: EncryptionInspection? = nil

    /// The directory or a file in it that the group or others can write (sorted by name; the directory first).
    public var writableByOthers: [String] {
        (CreateModes.isWritableByOthers(directoryMode) ? ["."] : [])
            + fileModes.filter { CreateModes.isWritableByOthers($0.value) }.keys.sorted()
    }
}

/// An encrypted log's key store, as `Log.inspect(at:)` reads it (no key needed).
public struct EncryptionInspection: Sendable, Equatable {
    /// How events are assigned data keys (chosen when the log was created).
    public var scope: DataKeyScope
    /// Data keys in the key store, forgotten ones included.
    public var dataKeys: Int
    /// Data keys forgotten (`Log.forgetStream(_:)`): the events they sealed read as forgotten.
    public var forgottenKeys: Int
    /// The key store's length in bytes.
    public var keyStoreBytes: Int

    public init(scope: DataKeyScope, dataKeys: Int, forgottenKeys: Int, keyStoreBytes: Int) {
        self.scope = scope
        self.dataKeys = dataKeys
        self.forgottenKeys = forgottenKeys
        self.keyStoreBytes = keyStoreBytes
    }

    init(_ contents: KeyStoreContents) {
        scope = DataKeyScope(scope: contents.header.scope, separator: contents.header.separator)
        var ids = Set<UInt32>()
        for (_, entry) in contents.entries where entry.kind == KeyStoreFile.kindDataKey { ids.insert(entry.keyID) }
        for damaged in contents.damaged where damaged.kind == KeyStoreFile.kindDataKey && damaged.offset < contents.lastValidEnd {
            ids.insert(damaged.keyID)
        }
        dataKeys = ids.count
        forgottenKeys = contents.forgottenKeyIDs.count
        keyStoreBytes = contents.length
    }
}

extension LogInspection {
    /// `Log.inspect(at:scan:)`: reads the log in `path` without changing it.
    /// `scan`: walk every batch header of every segment (counting batches)
    /// instead of reading each segment's extent from its index files.
    static func read(at path: String, scan: Bool) throws(EventLogError) -> LogInspection {
        let directory = DirectoryOperations(path: path, faults: nil)
        guard DirectoryOperations.isDirectory(path) else { throw .notFound(path: path) }
        do {
            let names = try directory.list()
            // A damaged or missing metadata file: the identity of the segment headers, as a reader's open does (Format.md §10.2).
            let metadataFile = directory.file(FileNames.metadata)
            let metadata: LogMetadata
            var damagedFiles: [RecoveryReport.DamagedFile] = []
            let found = try LogMetadata.read(in: directory, writing: false)
            if case .success(let read?) = found {
                metadata = read
            } else {
                let damage: RecoveryReport.DamagedFile
                switch found {
                case .failure(let found): damage = .init(file: metadataFile, offset: found.offset, reason: found.reason)
                default: damage = .init(file: metadataFile, offset: 0, reason: "the log metadata file is missing")
                }
                guard let first = SegmentSet.bases(in: names).first else { throw EventLogError.notFound(path: path) }
                let defaults = LogOptions()
                metadata = try LogMetadata.rebuilt(
                    fromSegment: directory.file(FileNames.segment(first)), segmentBytes: defaults.segmentBytes,
                    indexInterval: defaults.indexInterval, compression: .none)
                damagedFiles.append(damage)
            }
            var segments: [SegmentInspection] = []
            var allocated: Int64 = 0
            for name in names {
                if let handle = try? FileHandle.open(directory.file(name), readOnly: true, faults: nil) {
                    allocated += (try? handle.allocatedBytes()) ?? 0
                }
            }
            // Without the files a committed segment merge replaced (Format.md §4.2), as an open reads the set.
            var mergedAway: Set<UInt64> = []
            do { mergedAway = try MergeSwap.mergedAway(in: directory) } catch let error as EventLogError {
                // Every open refuses it (Format.md §4.2); the segments are described as they are.
                let damage = FileDamage(error)
                damagedFiles.append(.init(
                    file: directory.file(FileNames.compactionManifest), offset: damage?.offset ?? 0, reason: damage?.reason ?? "\(error)"))
            } catch {
                damagedFiles.append(.init(file: directory.file(FileNames.compactionManifest), offset: 0, reason: "\(error)"))
            }
            let bases = SegmentSet.bases(in: names).filter { !mergedAway.contains($0) }
            for (i, base) in bases.enumerated() {
                segments.append(try inspectSegment(
                    base: base, isLast: i == bases.count - 1, directory: directory, logID: metadata.logID,
                    interval: Int(metadata.indexInterval), scan: scan))
            }
            let marker = try CleanShutdownMarker.read(in: directory)
            var shutdown: ShutdownState
            if isLockedByWriter(directory) {
                shutdown = .open
            } else if let marker {
                shutdown = .clean(at: marker.closedAt)
            } else if segments.allSatisfy({ $0.events == 0 }) {
                shutdown = .new
            } else {
                shutdown = .unclean
            }
            // A damaged or lost start file: the first segment's base, as a reader's open takes it (Format.md §10.2).
            var start: UInt64 = 0
            do {
                if let found = try LogStart.read(in: directory) {
                    start = found.startPosition
                } else if let first = segments.first?.basePosition, first > 0, metadata.readVersion >= LogStart.firstVersion {
                    start = first
                    damagedFiles.append(.init(
                        file: directory.file(FileNames.logStart), offset: 0, reason: Opener.missingStartReason(firstSegment: first)))
                }
            } catch let error as EventLogError {
                guard let damage = FileDamage(error), let first = segments.first?.basePosition else { throw error }
                start = first
                damagedFiles.append(.init(file: directory.file(FileNames.logStart), offset: damage.offset, reason: damage.reason))
            }
            var missing: [Range<UInt64>] = []
            var expected = start
            for segment in segments {
                if case .missing(let gap) = SegmentSet.succession(of: segment.basePosition, after: expected) { missing.append(gap) }
                expected = max(expected, segment.endPosition)
            }
            var inspection = LogInspection(
                path: path, formatVersion: Int(metadata.readVersion),
                logID: UUID(uuid: metadata.logID.withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) }),
                createdAt: metadata.createdAt, lastShutdown: shutdown, segments: segments,
                startPosition: start, endPosition: segments.last?.endPosition ?? start,
                allocatedBytes: allocated)
            inspection.missingPositions = missing
            do {
                if let keys = try KeyStoreContents.read(in: directory) {
                    inspection.encryption = EncryptionInspection(keys)
                    for damage in keys.unexplainedDamage {
                        damagedFiles.append(.init(
                            file: directory.file(FileNames.keyStore), offset: Int64(damage.offset),
                            reason: KeyStoreContents.damageReason(keyID: damage.keyID)))
                    }
                }
            } catch {
                damagedFiles.append(.init(file: directory.file(FileNames.keyStore), offset: 0, reason: "\(error)"))
            }
            inspection.damagedFiles = damagedFiles + ConfinedFiles.damage(in: directory)
            inspection.directoryMode = CreateModes.permissions(of: path).map { UInt32($0.mode) } ?? 0
            for name in names {
                guard let (mode, counts) = CreateModes.permissions(of: directory.file(name)), counts else { continue }
                inspection.fileModes[name] = UInt32(mode)
            }
            return inspection
        } catch {
            throw .wrapping(error)
        }
    }

    private typealias uuid_t = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    /// One segment's extent: from its index files when they can be used
    /// (reading those files, the last batch they name and the batch headers
    /// after it), else by walking every batch header.
    private static func inspectSegment(
        base: UInt64, isLast: Bool, directory: DirectoryOperations, logID: [UInt8], interval: Int, scan: Bool
    ) throws -> SegmentInspection {
        let path = directory.file(FileNames.segment(base))
        let file = try FileHandle.open(path, readOnly: true, faults: nil)
        let mapping = try MappedRegion.map(file, length: Int(try file.length()))
        // The header and the last batch the index files name are read alone, not the device's read-ahead around each.
        mapping.advise(.random)
        let bytes = mapping.bytes(at: 0, count: mapping.length) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let segmentHeader = try SegmentHeader.decode(bytes, file: path, logID: logID, expectedBase: base)
        var info = SegmentInspection(
            file: FileNames.segment(base), basePosition: base, endPosition: base, batches: 0, events: 0,
            bytes: Int64(SegmentHeader.size), allocatedBytes: try file.allocatedBytes(), firstTimestamp: nil,
            lastTimestamp: nil, isSealed: !isLast, compressedBatches: 0)
        // No byte is read in a hole of the file (Format.md §10, "Holes").
        let readable = ReadableRegions(file: file, length: bytes.count)
        var from = SegmentHeader.size
        if scan {
            info.scanned = .asked
        } else if segmentHeader.declaredEnd != nil {
            info.scanned = .rewritten
        } else {
            switch IndexCheckpoint.load(
                base: base, declaredEnd: nil, bytes: bytes, length: bytes.count, headerCRC: segmentHeader.checksum,
                readable: readable, directory: directory, interval: interval)
            {
            case .success(let checkpoint):
                // Positions are consecutive in a segment written by appends: its events are its extent.
                let described = checkpoint.header
                info.endPosition = described.endPosition
                info.events = described.endPosition - base
                from = Int(described.dataEnd)
                if from > SegmentHeader.size {
                    info.firstTimestamp = described.firstTimestamp
                    info.lastTimestamp = described.maxTimestamp
                }
                info.batches = nil
                info.compressedBatches = nil
            case .failure(let unusable):
                info.scanned = .indexUnusable(unusable.reason)
            }
        }
        // A sealed segment's walk after its index files ends at once; any other walks the data.
        if from == SegmentHeader.size || isLast { mapping.advise(.normal) }
        info.bytes = Int64(walkBatchHeaders(bytes, from: from, readable: readable, declaredEnd: segmentHeader.declaredEnd, into: &info))
        if let declaredEnd = segmentHeader.declaredEnd {
            info.endPosition = declaredEnd
            info.isRewritten = true
        }
        return info
    }

    /// Walks the batch headers from byte `from` (where the batch of position
    /// `info.endPosition` should start), adding each batch to `info`, until
    /// one does not follow; returns the offset after the last. Headers only:
    /// lengths and positions must chain; checksums are verify's job.
    private static func walkBatchHeaders(
        _ bytes: UnsafeRawBufferPointer, from: Int, readable: ReadableRegions, declaredEnd: UInt64?, into info: inout SegmentInspection
    ) -> Int {
        var offset = from
        while offset + BatchHeader.size <= bytes.count, readable.contains(offset..<(offset + BatchHeader.size)),
              let base = bytes.baseAddress {
            let header = BatchHeader.load(base + offset)
            guard header.length >= UInt32(BatchHeader.size), Int(header.length) <= bytes.count - offset,
                  declaredEnd == nil ? header.basePosition == info.endPosition : header.basePosition >= info.endPosition,
                  header.recordCount > 0
            else { break }
            info.batches? += 1
            info.events += UInt64(header.recordCount)
            info.endPosition = header.endPosition
            if info.firstTimestamp == nil { info.firstTimestamp = header.firstTimestamp }
            info.lastTimestamp = max(info.lastTimestamp ?? .min, header.maxTimestamp)
            if header.codecValue != 0 { info.compressedBatches? += 1 }
            offset += Int(header.length)
        }
        return offset
    }

    /// True when another process holds the writer lock (`flock` in shared mode fails).
    private static func isLockedByWriter(_ directory: DirectoryOperations) -> Bool {
        let fd = Glibc.open(directory.file(FileNames.lock), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { _ = Glibc.close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }
}
