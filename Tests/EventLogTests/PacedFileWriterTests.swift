import Foundation
import Synchronization
import Testing
@testable import EventLog

/// The background copy's writer (`PacedFileWriter`) and what decides its
/// pacing (`BatchLog.backgroundCopyPaces`).
@Suite struct PacedFileWriterTests {
    /// Appends of odd sizes, paced and not by turns: the file holds every
    /// byte in order, and the pacing is asked once per chunk written.
    @Test func writesEveryByteInOrderAndAsksOncePerChunk() throws {
        let dir = TemporaryDirectory()
        var random = SplitMix64(seed: 11)
        let bytes = (0..<(3 * PacedFileWriter.chunkBytes + 12_345)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let asked = Mutex(0)
        let file = try FileHandle.open(dir.sub("copy"), create: .ownerOnly, faults: nil)
        var writer = PacedFileWriter(file: file) { asked.withLock { $0 += 1; return $0 % 2 == 0 } }
        var at = 0
        while at < bytes.count {
            let step = min(bytes.count - at, 1 + Int(random.next() % 70_000))
            try bytes[at..<(at + step)].withUnsafeBytes { try writer.append($0) }
            at += step
        }
        #expect(writer.count == bytes.count)
        try writer.finish()
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.sub("copy"))) == Data(bytes))
        // Each flush writes at least a chunk, the last one the rest.
        let chunks = asked.withLock { $0 }
        #expect(chunks >= 3 && chunks <= bytes.count / PacedFileWriter.chunkBytes + 1)
    }

    /// A copy paces while appends sync (a sync led within the window), not on an idle log.
    @Test func aCopyPacesOnlyWhileAppendsSync() throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .none))
        defer { try? log.close() }
        let paces = log.batches.backgroundCopyPaces
        #expect(!paces())  // nothing synced yet
        try log.append(NewEvent(stream: "s", type: "t", data: [1]))
        try log.sync()
        #expect(paces())
        usleep(UInt32(BatchLog.syncingWindow.wholeMicroseconds) + 30_000)
        #expect(!paces())
        // A sync with nothing to make durable leads none.
        try log.sync()
        #expect(!paces())
    }
}
