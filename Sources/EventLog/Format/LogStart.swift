/// The log start position: the file `eventlog.start` (Format.md §3.1). The
/// first position still in the log; every segment from it on must be
/// present. Written when the log is created, and replaced atomically (before
/// any segment is deleted) whenever retention moves the start.
///
///     0   u64  magic "EVLOGSTA"
///     8   u16  format version
///     10  2    reserved (0)
///     12  u32  segment rewrites: how many times scavenging replaced a
///              segment file (version 4; 0 before), so that read-only
///              processes know to look for replaced files
///     16  u64  start position
///     24  i64  written at (timestamp)
///     32  u32  CRC32C of bytes [0, 32)
struct LogStart: Equatable, Sendable {
    static let size = 36

    var startPosition: UInt64
    var writtenAt: Timestamp
    /// Segment files scavenging replaced so far (wraps around).
    var rewrites: UInt32 = 0

    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.le(Magic.logStart)
        w.le(FormatVersion.current)
        w.zeros(2)
        w.le(rewrites)
        w.le(startPosition)
        w.le(writtenAt)
        w.appendChecksum()
        return w.bytes
    }

    /// The first format version with the file (Format.md §3.1, §12): a log
    /// of this version on has it from its creation, before any segment.
    static let firstVersion: UInt16 = 3

    /// The file in `directory`; nil when there is none. Throws `IOError`
    /// for a failed read and `EventLogError` (naming the file) for a
    /// damaged one.
    static func read(in directory: DirectoryOperations) throws -> LogStart? {
        guard let bytes = try directory.readWhole(FileNames.logStart, atMost: LogStart.size) else { return nil }
        return try decode(bytes, file: directory.file(FileNames.logStart))
    }

    /// Replaces the file in `directory` atomically (written, synced, renamed, directory synced).
    func write(in directory: DirectoryOperations) throws(IOError) {
        try directory.writeAtomically(FileNames.logStart, bytes: encode())
    }

    static func decode(_ bytes: [UInt8], file: String) throws(EventLogError) -> LogStart {
        let r = try FixedFile.reader(
            bytes, magic: Magic.logStart, size: size, file: file, what: "start file", reserved: [10..<12])
        return LogStart(startPosition: r.le(16, UInt64.self), writtenAt: r.le(24, Int64.self), rewrites: r.le(12, UInt32.self))
    }
}
