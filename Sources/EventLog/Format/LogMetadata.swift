/// The log's identity and creation settings: the file `eventlog.meta`
/// (Format.md, "Log metadata file"). Written once, atomically, when the log is created.
///
/// The format version at byte 8 is the log's read version; bytes 10–11 hold
/// its write version (0: equal to the read version, what this build writes).
/// Segment bytes and compression are informational (what the log was
/// created with); the index interval is the log's, whatever the options say.
struct LogMetadata: Equatable, Sendable {
    static let size = 60
    /// Bytes that must be zero (Format.md §3, §12).
    static let reserved: [Range<Int>] = [12..<16, 49..<56]

    var logID: [UInt8]  // 16 bytes
    var createdAt: Timestamp
    var segmentBytes: UInt32
    var indexInterval: UInt32
    var compression: Compression
    /// The write version as stored: 0 means equal to the read version.
    var storedWriteVersion: UInt16 = 0
    /// The log's read version (byte 8): what this build writes for a new
    /// log; a log of an older version keeps its own until a writer upgrades it.
    var readVersion: UInt16 = FormatVersion.current

    /// The write version the log asks of a writer.
    var writeVersion: UInt16 { FormatVersion.effectiveWrite(stored: storedWriteVersion, read: readVersion) }

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.logMetadata)
        w.le(readVersion)
        w.le(storedWriteVersion)
        w.zeros(4)
        w.raw(logID)
        w.le(createdAt)
        w.le(segmentBytes)
        w.le(indexInterval)
        w.le(compression.rawValue)
        w.zeros(7)
        w.appendChecksum()
        return w.bytes
    }

    /// Decodes and checks the file. With `writing` (an open that may write
    /// any file of the log), a write version this build does not know is
    /// refused with `unsupportedFormatVersion` (found: the write version);
    /// a read-only open reads such a log.
    static func decode(_ bytes: [UInt8], file: String, writing: Bool = false) throws(EventLogError) -> LogMetadata {
        let r = try FixedFile.reader(
            bytes, magic: Magic.logMetadata, size: size, file: file, what: "metadata file", reserved: reserved)
        let readVersion = r.le(8, UInt16.self)
        let storedWrite = r.le(10, UInt16.self)
        guard storedWrite == 0 || storedWrite >= readVersion else {
            throw .corruption(
                file: file, offset: 10,
                reason: "write version \(storedWrite) is below the read version \(readVersion)")
        }
        guard let compression = Compression(rawValue: r.le(48, UInt8.self)) else {
            throw .corruption(file: file, offset: 48, reason: "unknown compression code")
        }
        let interval = r.le(44, UInt32.self)
        guard interval >= LogMetadata.minIndexInterval, interval <= LogMetadata.maxIndexInterval else {
            throw .corruption(
                file: file, offset: 44,
                reason: "index interval \(interval) is outside \(LogMetadata.minIndexInterval)...\(LogMetadata.maxIndexInterval)")
        }
        let metadata = LogMetadata(
            logID: r.slice(16, 16), createdAt: r.le(32, Int64.self), segmentBytes: r.le(40, UInt32.self),
            indexInterval: interval, compression: compression, storedWriteVersion: storedWrite, readVersion: readVersion)
        if writing && metadata.writeVersion > FormatVersion.write {
            throw .unsupportedFormatVersion(file: file, found: Int(metadata.writeVersion), supported: Int(FormatVersion.write))
        }
        return metadata
    }

    /// Reads `eventlog.meta` in `directory`: the metadata, nil when the file
    /// is missing, or its damage (corruption or a foreign file). Other errors
    /// (I/O, a version this build does not know) are thrown.
    static func read(in directory: DirectoryOperations, writing: Bool) throws(EventLogError) -> Result<LogMetadata?, FileDamage> {
        let bytes: [UInt8]?
        do { bytes = try directory.readWhole(FileNames.metadata, atMost: LogMetadata.size) } catch { throw .io(error) }
        guard let bytes else { return .success(nil) }
        do {
            return .success(try decode(bytes, file: directory.file(FileNames.metadata), writing: writing))
        } catch {
            guard let damage = FileDamage(error) else { throw error }
            return .failure(damage)
        }
    }

    /// The metadata of a log whose `eventlog.meta` is damaged or missing,
    /// rebuilt from the header of its segment `segment` (Format.md §3,
    /// "Rebuilt from the segments"): the log id, creation time and read
    /// version are the segment's; the settings, which no other file keeps,
    /// are `segmentBytes`, `indexInterval` and `compression` as given (a
    /// caller's defaults).
    static func rebuilt(
        fromSegment segment: String, segmentBytes: Int, indexInterval: Int, compression: Compression
    ) throws(EventLogError) -> LogMetadata {
        var header = [UInt8](repeating: 0, count: SegmentHeader.size)
        var read: Result<Int, IOError> = .success(0)
        do {
            let file = try FileHandle.open(segment, readOnly: true, faults: nil)
            header.withUnsafeMutableBytes { raw in
                do throws(IOError) { read = .success(try file.read(into: raw, at: 0)) } catch { read = .failure(error) }
            }
            let count = try read.get()
            header.removeLast(header.count - count)
        } catch {
            throw .wrapping(error)
        }
        var decoding: Result<SegmentHeader, EventLogError> = .failure(.notFound(path: segment))
        header.withUnsafeBytes { raw in
            do throws(EventLogError) {
                decoding = .success(try SegmentHeader.decode(raw, file: segment, logID: nil, expectedBase: nil))
            } catch {
                decoding = .failure(error)
            }
        }
        let decoded = try decoding.get()
        return LogMetadata(
            logID: decoded.logID, createdAt: decoded.createdAt,
            segmentBytes: UInt32(clamping: segmentBytes), indexInterval: UInt32(clamping: indexInterval), compression: compression,
            readVersion: header.withUnsafeBytes { $0.loadLE(at: 8, as: UInt16.self) })
    }

    /// The index intervals a log may have (the range `LogOptions` accepts).
    static let minIndexInterval: UInt32 = 64
    static let maxIndexInterval: UInt32 = 1 << 24
}
