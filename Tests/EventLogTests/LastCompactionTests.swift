import Foundation
import Testing
@testable import EventLog

/// The last compaction file `eventlog.compaction` (Format.md §3.3): how the
/// writer's last compaction went, for other processes and the next session.
@Suite struct LastCompactionTests {
    static let result = CompactionResult(
        dryRun: false, segmentsBefore: 9, segmentsAfter: 4, bytesBefore: 1 << 40, bytesAfter: 12_345, eventsRemoved: 600,
        segmentsRewritten: 2, eventsScavenged: 17, segmentsMerged: 3, startPositionBefore: 100, startPosition: 583,
        heldBackBy: "cursor relay at position 583", finishedAt: 1_790_000_000_123_456)

    // MARK: The file

    @Test func theLayoutIsTheDocumentedOne() throws {
        let status = MaintenanceStatus(lastResult: Self.result, lastFailure: "disk é full", lastFailureAt: 1_790_000_000_999_999)
        let bytes = LastCompactionFile.encode(status)
        let reason = Array("cursor relay at position 583".utf8)
        let failure = Array("disk é full".utf8)
        #expect(bytes.count == 108 + reason.count + failure.count + 4)
        func le<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T { bytes.withUnsafeBytes { $0.loadLE(at: offset, as: T.self) } }
        #expect(Array(bytes[0..<8]) == Array("EVLOGCMP".utf8))
        #expect(le(8, UInt16.self) == FormatVersion.current)
        #expect(le(12, UInt32.self) == UInt32(bytes.count))
        #expect(bytes[16] == 1 && bytes[17] == 1)
        #expect(le(24, Int64.self) == 1_790_000_000_123_456)
        #expect(le(32, UInt32.self) == 9 && le(36, UInt32.self) == 4)
        #expect(le(40, UInt64.self) == 1 << 40 && le(48, UInt64.self) == 12_345)
        #expect(le(56, UInt64.self) == 600 && le(64, UInt32.self) == 2 && le(68, UInt32.self) == 3 && le(72, UInt64.self) == 17)
        #expect(le(80, UInt64.self) == 100 && le(88, UInt64.self) == 583)
        #expect(le(96, Int64.self) == 1_790_000_000_999_999)
        #expect(le(104, UInt16.self) == UInt16(reason.count) && le(106, UInt16.self) == UInt16(failure.count))
        #expect(Array(bytes[108..<(108 + reason.count)]) == reason)
        #expect(Array(bytes[(108 + reason.count)..<(bytes.count - 4)]) == failure)
        #expect(le(bytes.count - 4, UInt32.self) == CRC32C.checksum(Array(bytes[0..<(bytes.count - 4)])))
        #expect(try LastCompactionFile.decode(bytes, file: "f") == status)
    }

    @Test func eachShapeRoundTrips() throws {
        var withoutReason = Self.result
        withoutReason.heldBackBy = nil
        let shapes = [
            MaintenanceStatus(),
            MaintenanceStatus(lastResult: Self.result),
            MaintenanceStatus(lastResult: withoutReason),
            MaintenanceStatus(lastResult: nil, lastFailure: "", lastFailureAt: 5),
            MaintenanceStatus(lastResult: withoutReason, lastFailure: "it failed", lastFailureAt: 7),
        ]
        for status in shapes {
            #expect(try LastCompactionFile.decode(LastCompactionFile.encode(status), file: "f") == status)
        }
        // A long message is cut at a character, within the limit.
        let long = String(repeating: "日", count: 2000)
        let decoded = try LastCompactionFile.decode(
            LastCompactionFile.encode(MaintenanceStatus(lastResult: nil, lastFailure: long, lastFailureAt: 1)), file: "f")
        let kept = try #require(decoded.lastFailure)
        #expect(kept.utf8.count <= LastCompactionFile.maxFailureBytes && kept.utf8.count > LastCompactionFile.maxFailureBytes - 3)
        #expect(long.hasPrefix(kept))
    }

    /// Every flipped byte, every cut, and reserved or absent fields that are
    /// not zero (checksum made right again) are refused, naming the file.
    @Test func damageIsRefusedWithTheFileAndOffset() throws {
        let bytes = LastCompactionFile.encode(MaintenanceStatus(lastResult: Self.result, lastFailure: "x", lastFailureAt: 3))
        for i in bytes.indices {
            var damaged = bytes
            damaged[i] ^= 0x20
            #expect(throws: EventLogError.self) { try LastCompactionFile.decode(damaged, file: "f") }
        }
        for length in [0, 50, 111, bytes.count - 1] {
            #expect(throws: EventLogError.self) { try LastCompactionFile.decode(Array(bytes.prefix(length)), file: "f") }
        }
        func resealed(_ edit: (inout [UInt8]) -> Void, of original: [UInt8]) -> [UInt8] {
            var b = original
            edit(&b)
            let crc = CRC32C.checksum(Array(b[0..<(b.count - 4)]))
            withUnsafeBytes(of: crc.littleEndian) { for (k, x) in $0.enumerated() { b[b.count - 4 + k] = x } }
            return b
        }
        for at in [10, 11, 18, 23] {
            let edited = resealed({ $0[at] = 1 }, of: bytes)
            #expect(Self.offset(of: edited) == Int64(at), "reserved byte \(at)")
        }
        // Bytes 68–71 (segments merged) were reserved before format version 6.
        let version5 = resealed({ $0[8] = 5; $0[68] = 0; $0[69] = 0 }, of: bytes)
        #expect(try LastCompactionFile.decode(version5, file: "f").lastResult?.segmentsMerged == 0)
        for at in [68, 71] {
            let edited = resealed({ $0[at] = 1 }, of: version5)
            #expect(Self.offset(of: edited) == Int64(at), "reserved byte \(at) of a version 5 file")
        }
        #expect(Self.offset(of: resealed({ $0[16] = 2 }, of: bytes)) == 16)
        // No result, but a result field set; no failure, but its time set.
        let empty = LastCompactionFile.encode(MaintenanceStatus())
        #expect(Self.offset(of: resealed({ $0[40] = 1 }, of: empty)) == 40)
        #expect(Self.offset(of: resealed({ $0[97] = 1 }, of: empty)) == 97)
    }

    static func offset(of bytes: [UInt8]) -> Int64? {
        do {
            _ = try LastCompactionFile.decode(bytes, file: "f")
            return nil
        } catch {
            if case .corruption(let file, let offset, _) = error, file == "f" { return offset }
            return -1
        }
    }

    // MARK: A real log

    /// A writer's compaction that removed something, and one that failed,
    /// are seen by a read-only process and by the writer's next session; a
    /// run with nothing to do leaves the file alone.
    @Test func theLastCompactionReachesOtherProcessesAndTheNextSession() throws {
        let dir = TemporaryDirectory()
        let writer = try RetentionTests.filledLog(dir)
        let file = dir.sub("eventlog.compaction")
        _ = try writer.compact()
        #expect(!FileManager.default.fileExists(atPath: file), "a run that removed nothing wrote the file")
        #expect(writer.maintenanceStatus == MaintenanceStatus())

        try writer.updateSettings(LogSettings(retainBytes: 4 * 4096))
        let result = try writer.compact()
        #expect(result.eventsRemoved > 0)
        #expect(writer.maintenanceStatus.lastResult == result)
        let reader = try Log.open(at: dir.path, options: RetentionTests.options(readOnly: true))
        #expect(reader.maintenanceStatus.lastResult == result)
        #expect(reader.maintenanceStatus.lastFailure == nil)

        // A failing run (its settings file damaged): the reader sees the failure, the result stays.
        var settings = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.sub("eventlog.settings"))))
        settings[20] ^= 0xFF
        try Data(settings).write(to: URL(fileURLWithPath: dir.sub("eventlog.settings")))
        #expect(throws: EventLogError.self) { _ = try writer.compact() }
        let failed = reader.maintenanceStatus
        #expect(failed.lastFailure?.contains("eventlog.settings") == true, "\(failed)")
        #expect(failed.lastFailureAt != nil)
        #expect(failed.lastResult == result)

        // The next session starts from the file.
        try writer.close()
        let next = try Log.open(at: dir.path, options: RetentionTests.options())
        #expect(next.maintenanceStatus == failed)
        // Repaired: a run that finds nothing more to do still clears the failure.
        try next.updateSettings(LogSettings(retainBytes: 4 * 4096))
        _ = try next.compact()
        #expect(reader.maintenanceStatus.lastFailure == nil)
        #expect(reader.maintenanceStatus.lastResult != nil)
        try next.close()
        try reader.close()
    }

    /// A damaged last compaction file loses only the report: the log opens,
    /// reads and compacts, and the next compaction replaces the file.
    @Test func aDamagedFileIsIgnoredAndReplaced() throws {
        let dir = TemporaryDirectory()
        let writer = try RetentionTests.filledLog(dir)
        try writer.updateSettings(LogSettings(retainBytes: 8 * 4096))
        _ = try writer.compact()
        try writer.close()
        let path = dir.sub("eventlog.compaction")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[30] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == path && $0.offset == Int64(bytes.count - 4) }, "\(report.problems)")
        let reopened = try Log.open(at: dir.path, options: RetentionTests.options())
        #expect(reopened.maintenanceStatus.lastResult == nil)
        #expect(reopened.maintenanceStatus.unreadableReport?.contains("eventlog.compaction") == true)
        #expect(try reopened.events(from: reopened.startPosition).count == Int(reopened.endPosition - reopened.startPosition))
        try reopened.updateSettings(LogSettings(retainBytes: 4 * 4096))
        let result = try reopened.compact()
        #expect(result.eventsRemoved > 0)
        #expect(try LastCompactionFile.decode([UInt8](Data(contentsOf: URL(fileURLWithPath: path))), file: path).lastResult == result)
        #expect(reopened.maintenanceStatus.unreadableReport == nil)
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
