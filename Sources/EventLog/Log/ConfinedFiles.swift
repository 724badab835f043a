/// The small files that no open needs and none refuses when they are damaged
/// (Format.md §10.2): `eventlog.settings` (retention and compaction read it,
/// and fail naming it; reads and appends go on), the clean-shutdown marker
/// (a damaged one counts as an unclean shutdown), `eventlog.compaction`
/// (a report) and the cleaner checkpoint `eventlog.cleaner` (derived: every
/// segment is judged again). Each is written atomically, so a file that does not decode
/// is damage, never a torn write. A missing one is no finding: absent, each
/// has a meaning (the default settings, an unclean shutdown, no compaction
/// to report).
enum ConfinedFiles {
    /// Each such file that exists and does not decode, with the offset its
    /// check names: what an open reports (`RecoveryReport.damagedFiles`),
    /// `inspect` shows and `verify` counts as a problem.
    static func damage(in directory: DirectoryOperations) -> [RecoveryReport.DamagedFile] {
        var found: [RecoveryReport.DamagedFile] = []
        func check(_ name: String, atMost limit: Int, _ decode: ([UInt8], String) throws(EventLogError) -> Void) {
            let path = directory.file(name)
            let bytes: [UInt8]
            do {
                guard let read = try directory.readWhole(name, atMost: limit) else { return }
                bytes = read
            } catch {
                found.append(.init(file: path, offset: 0, reason: error.description))
                return
            }
            do { try decode(bytes, path) } catch {
                if let damage = FileDamage(error) {
                    found.append(.init(file: path, offset: damage.offset, reason: damage.reason))
                } else if case .unsupportedFormatVersion = error {
                    found.append(.init(file: path, offset: 8, reason: error.description))
                } else {
                    found.append(.init(file: path, offset: 0, reason: error.description))
                }
            }
        }
        check(FileNames.settings, atMost: LogSettingsFile.maxSize) { bytes, file throws(EventLogError) in _ = try LogSettingsFile.decode(bytes, file: file) }
        check(FileNames.cleanShutdown, atMost: CleanShutdownMarker.size) { bytes, file throws(EventLogError) in
            if let (offset, reason) = CleanShutdownMarker.check(bytes) { throw .corruption(file: file, offset: offset, reason: reason) }
        }
        check(FileNames.lastCompaction, atMost: LastCompactionFile.maxSize) { bytes, file throws(EventLogError) in
            _ = try LastCompactionFile.decode(bytes, file: file)
        }
        check(FileNames.cleanerCheckpoint, atMost: CleanerCheckpoint.maxSize) { bytes, file throws(EventLogError) in
            _ = try CleanerCheckpoint.decode(bytes, file: file)
        }
        return found
    }
}
