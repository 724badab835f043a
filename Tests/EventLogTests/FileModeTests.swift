import Foundation
import Testing
@testable import EventLog

/// Least privilege on disk (issue 17): a log's directory is created 0700 and
/// every file 0600 (or what `LogOptions.fileMode` says, never writable by
/// others), after every way files are made; a log the group or others can
/// write is refused.
@Suite struct FileModeTests {
    /// The permission bits of everything under `path`, by relative name ("." for `path`).
    static func modes(_ path: String, prefix: String = "") -> [String: UInt32] {
        var result: [String: UInt32] = [:]
        if prefix.isEmpty, let (mode, _) = CreateModes.permissions(of: path) { result["."] = UInt32(mode) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            let file = path + "/" + name
            guard let (mode, _) = CreateModes.permissions(of: file) else { continue }
            result[prefix + name] = UInt32(mode)
            if DirectoryOperations.isDirectory(file) { result.merge(modes(file, prefix: prefix + name + "/")) { a, _ in a } }
        }
        return result
    }

    /// Every directory has `directory`, every file `file`.
    static func expectModes(_ path: String, file: UInt32 = 0o600, directory: UInt32 = 0o700, _ context: String) {
        let found = modes(path)
        #expect(found.count > 1, "\(context): nothing under \(path)")
        for (name, mode) in found {
            let isDirectory = DirectoryOperations.isDirectory(name == "." ? path : path + "/" + name)
            let expected = isDirectory ? directory : file
            #expect(mode == expected, "\(context): \(name) has mode \(String(mode, radix: 8)), expected \(String(expected, radix: 8))")
        }
    }

    static func fill(_ log: Log, _ range: Range<Int>) throws {
        for first in stride(from: range.lowerBound, to: range.upperBound, by: 10) {
            try log.append((first..<min(first + 10, range.upperBound)).map {
                NewEvent(stream: "order-\($0 % 7)", type: "Placed", data: Array(repeating: UInt8($0 % 251), count: 200))
            })
        }
    }

    @Test func createRollAndCloseMakeOwnerOnlyFiles() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        let log = try Log.open(at: path, options: LogOptions(segmentBytes: 64 << 10, durability: .none))
        try Self.fill(log, 0..<50)
        try log.createCursor("relay")
        Self.expectModes(path, "after create")
        try Self.fill(log, 50..<1500)
        #expect(log.batches.snapshot().count > 3, "segments rolled")
        try log.commitCursor("relay", position: 700)
        try log.sync()
        Self.expectModes(path, "after segment rolls")
        try log.close()
        Self.expectModes(path, "after close")
    }

    /// Retention, scavenging and merging write new files (rewritten and
    /// merged segments, stream table runs, the compaction file): 0600 too.
    @Test func compactionMakesOwnerOnlyFiles() throws {
        let dir = TemporaryDirectory("modes")
        let log = try ScavengingTests.prepared(dir)
        let result = try log.compact()
        #expect(result.segmentsRewritten > 0)
        try log.close()
        // The fixture's directory was made by the test (0755); its files by the log.
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.path)
        Self.expectModes(dir.path, "after compaction")
    }

    /// A repair's moved-aside directory and files, and the replacement segment.
    @Test func repairMakesOwnerOnlyFiles() throws {
        let dir = TemporaryDirectory("modes")
        try RepairTests.crashedOneSegment(dir)
        let segment = Fixtures.segments(dir)[0]
        Damage.flipBit(segment, at: Fixtures.batches(in: segment)[3].offset + 70)
        let applied = try Log.repair(at: dir.path, options: RepairTests.options(), apply: true)
        let damaged = try #require(applied.damagedDirectory)
        #expect(Self.modes(damaged).count == 2, "the damaged directory and the bytes cut off")
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.path)
        Self.expectModes(dir.path, "after repair")
    }

    /// `fileMode` 0o640: the group reads files, and lists and enters the directory.
    @Test func theFileModeOptionIsHonoured() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        var options = LogOptions(segmentBytes: 64 << 10, durability: .none)
        options.fileMode = 0o640
        let log = try Log.open(at: path, options: options)
        try Self.fill(log, 0..<1000)
        try log.close()
        Self.expectModes(path, file: 0o640, directory: 0o750, "with fileMode 0o640")

        options.fileMode = 0o644
        let other = dir.sub("world")
        try Log.open(at: other, options: options).close()
        Self.expectModes(other, file: 0o644, directory: 0o755, "with fileMode 0o644")

        for bad: UInt32 in [0o660, 0o666, 0o400, 0o700, 0o1600] {
            options.fileMode = bad
            #expect(throws: EventLogError.self, "fileMode \(String(bad, radix: 8))") { try Log.open(at: dir.sub("bad"), options: options) }
        }
    }

    @Test func aWorldWritableDirectoryIsRefused() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        try Log.open(at: path).close()
        chmod(path, 0o757)
        #expect(throws: EventLogError.insecurePermissions(path: path, mode: 0o757)) { try Log.open(at: path) }
        #expect(throws: EventLogError.insecurePermissions(path: path, mode: 0o757)) {
            try Log.open(at: path, options: LogOptions(createIfMissing: false, readOnly: true))
        }
        #expect(throws: EventLogError.insecurePermissions(path: path, mode: 0o757)) { try Log.repair(at: path) }
        chmod(path, 0o700)
        try Log.open(at: path).close()
    }

    @Test func aGroupWritableSegmentIsRefused() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        try Self.fill(log, 0..<10)
        try log.close()
        let segment = path + "/" + FileNames.segment(0)
        chmod(segment, 0o620)
        #expect(throws: EventLogError.insecurePermissions(path: segment, mode: 0o620)) { try Log.open(at: path) }
        let message = EventLogError.insecurePermissions(path: segment, mode: 0o620).description
        #expect(message.contains(segment) && message.contains("0620"), "\(message)")
        chmod(segment, 0o600)
        try Log.open(at: path).close()
    }

    /// A symbolic link planted in the log directory is never written
    /// through: not as the lock file, not as the active segment, not as the
    /// temporary file of an atomic replace. The file it points to stays as it was.
    @Test func aSymbolicLinkInTheLogDirectoryIsNeverWrittenThrough() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        let outside = dir.sub("outside")
        let original = Array("not the log's\n".utf8)
        func plantOutside() throws { try Data(original).write(to: URL(fileURLWithPath: outside)) }
        func outsideIsUntouched() throws -> Bool { try Array(Data(contentsOf: URL(fileURLWithPath: outside))) == original }
        func isLoopError(_ error: any Error, _ path: String) -> Bool {
            guard case .io(let io)? = error as? EventLogError else { return false }
            return io.errno == ELOOP && io.path == path
        }
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        try Self.fill(log, 0..<10)
        try log.close()
        try plantOutside()

        // The lock file.
        let lock = path + "/" + FileNames.lock
        try FileManager.default.removeItem(atPath: lock)
        try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: outside)
        #expect { try Log.open(at: path) } throws: { isLoopError($0, lock) }
        try FileManager.default.removeItem(atPath: lock)

        // The active segment (the writer opens it to write).
        let segment = path + "/" + FileNames.segment(0)
        let moved = dir.sub("segment")
        try FileManager.default.moveItem(atPath: segment, toPath: moved)
        try FileManager.default.createSymbolicLink(atPath: segment, withDestinationPath: outside)
        #expect(throws: (any Error).self) { try Log.open(at: path) }
        #expect(try outsideIsUntouched())
        try FileManager.default.removeItem(atPath: segment)
        try FileManager.default.moveItem(atPath: moved, toPath: segment)

        // The temporary file of the settings' atomic replace.
        let reopened = try Log.open(at: path, options: LogOptions(durability: .none))
        let temporary = path + "/" + FileNames.settings + ".tmp"
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: outside)
        #expect { try reopened.updateSettings(LogSettings(retainAge: .seconds(3600))) } throws: { isLoopError($0, temporary) }
        try reopened.close()
        #expect(try outsideIsUntouched())
    }

    /// Files 0644 and a directory 0755, as older builds made them: not
    /// writable by others, so the log opens; inspect shows the modes.
    @Test func logsOfOlderBuildsStillOpen() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        try Self.fill(log, 0..<10)
        try log.close()
        chmod(path, 0o755)
        for name in try FileManager.default.contentsOfDirectory(atPath: path) { chmod(path + "/" + name, 0o644) }
        let reopened = try Log.open(at: path)
        #expect(reopened.endPosition == 10)
        try reopened.close()
        let inspection = try Log.inspect(at: path)
        #expect(inspection.directoryMode == 0o755)
        #expect(inspection.fileModes[FileNames.segment(0)] == 0o644)
        #expect(inspection.writableByOthers.isEmpty)
    }

    /// `eventlog inspect` shows the modes (text and JSON); a command on a
    /// log others can write exits 2 naming the path and mode.
    @Test func theToolShowsModesAndRefusesWritableLogs() throws {
        let dir = TemporaryDirectory("modes")
        let path = dir.sub("log")
        let log = try Log.open(at: path, options: LogOptions(durability: .none))
        try Self.fill(log, 0..<10)
        try log.close()

        let text = try CLIProcess.run(["inspect", path])
        #expect(text.status == 0 && text.stdout.contains("directory 0700, files 0600"), "\(text)")
        let json = try CLIProcess.run(["inspect", path, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
        #expect(object["directory_mode"] as? String == "0700")
        let files = try #require(object["file_modes"] as? [String: String])
        #expect(files[FileNames.segment(0)] == "0600" && files.values.allSatisfy { $0 == "0600" }, "\(files)")

        let segment = path + "/" + FileNames.segment(0)
        chmod(segment, 0o606)
        let refused = try CLIProcess.run(["dump", path])
        #expect(refused.status == 2 && refused.stderr.contains(segment) && refused.stderr.contains("0606"), "\(refused)")
        let described = try CLIProcess.run(["inspect", path])
        #expect(described.stdout.contains("the group or others can write \(FileNames.segment(0))"), "\(described)")
    }
}
