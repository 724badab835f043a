import Foundation
import Testing
@testable import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// Bounded input (issue 17): a small file of the log made huge (a sparse
/// file of 1 TiB, as a hostile or damaged file could be) is refused as the
/// wrong length, without reading (or allocating) more than its kind can
/// hold. Without the bound, reading it whole would allocate 1 TiB and the
/// process would die.
@Suite struct BoundedReadTests {
    static let huge: off_t = 1 << 40

    @Test(arguments: [FileNames.metadata, FileNames.logStart, FileNames.settings, FileNames.lastCompaction,
                      FileNames.cleanerCheckpoint, FileNames.cleanShutdown, FileNames.offsetIndex(0)])
    func aHugeSmallFileIsRefusedNotRead(name: String) throws {
        let dir = TemporaryDirectory()
        let log = try RetentionTests.filledLog(dir, count: 200)
        _ = try log.compact()
        try log.close()
        let path = dir.sub(name)
        let descriptor = open(path, O_WRONLY | O_CREAT, 0o600)
        try #require(descriptor >= 0)
        #expect(ftruncate(descriptor, Self.huge) == 0)
        close(descriptor)

        // verify reads the file and names it as a finding (a clean-shutdown
        // marker it cannot decode counts as absent: an unclean shutdown).
        let report = try Log.verify(at: dir.path)
        if name != FileNames.cleanShutdown {
            #expect(report.problems.contains { $0.file == path }, "\(report.problems)")
        }
        // A read-only open reads the events, or refuses with a typed error naming the file.
        do {
            let reader = try Log.open(at: dir.path, options: RetentionTests.options(readOnly: true))
            #expect(try reader.events(from: 0).count == 200)
            try reader.close()
        } catch let error as EventLogError {
            #expect("\(error)".contains(name), "\(error)")
        }
    }
}
