import Foundation
import Synchronization
import Testing

@testable import EventLog

/// The zeroing thread under `.always` (`Preallocator`): woken by the writer
/// only when it has work, it still keeps ahead of the writer.
@Suite struct PreallocatorTests {
    final class ChunkCount: Sendable {
        let syncs = Atomic<Int>(0)
    }

    /// At open it zeroes `lowWater` (4 MiB) ahead, one chunk (1 MiB, one
    /// sync each) at a time; as the writer passes 3 MiB, it must be woken
    /// to zero on, up to 7 MiB.
    @Test func itKeepsZeroingAheadOfTheWriter() throws {
        let dir = TemporaryDirectory()
        let chunks = ChunkCount()
        // This thread opens the log and leads every sync of its appends:
        // the segment's other syncs are the zeroing thread's, one per chunk.
        let appender = UInt(pthread_self())
        var options = LogOptions(durability: .always)
        options.storageFaults = StorageFaults { op, path in
            if op == .datasync, path.hasSuffix(".segment"), UInt(pthread_self()) != appender {
                chunks.syncs.add(1, ordering: .sequentiallyConsistent)
            }
            return nil
        }
        let log = try Log.open(at: dir.path, options: options)
        defer { try? log.close() }
        func zeroed() -> Int { chunks.syncs.load(ordering: .sequentiallyConsistent) }
        for _ in 0..<3_000 where zeroed() < 4 { usleep(1000) }
        #expect(zeroed() == 4)
        let batch = (0..<1000).map { _ in NewEvent(stream: "s", type: "E", data: [UInt8](repeating: 7, count: 1000)) }
        for _ in 0..<3 { try log.append(batch) }
        for _ in 0..<10_000 where zeroed() < 7 { usleep(1000) }
        #expect(zeroed() >= 7)
    }
}
