import Foundation
import Logging
@testable import EventLog

/// The test process's swift-log backend: stderr from `warning` up, so that
/// the thousands of opens of the simulation do not each print their `info`
/// summary (LoggingTests give their logs a handler of their own). Made once,
/// by the first temporary directory, before any test opens a log.
enum TestLogging {
    static let bootstrapped: Void = LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
}

/// A fresh directory under the system temporary directory, removed when the test ends.
final class TemporaryDirectory {
    let path: String

    /// With `preferMemory`, under `/dev/shm` when it is there (a tmpfs: no
    /// real syncs, for tests that simulate the disk's behaviour themselves).
    init(_ label: String = "eventlog", preferMemory: Bool = false) {
        TestLogging.bootstrapped
        let memory = "/dev/shm"
        let base = preferMemory && access(memory, W_OK) == 0 ? memory : FileManager.default.temporaryDirectory.path
        path = "\(base)/\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A path inside the directory (not created).
    func sub(_ name: String) -> String { path + "/" + name }

    func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }
}

/// splitmix64: the seeded generator of every randomized test (the power-loss
/// simulator's own).
typealias SplitMix64 = PowerLossRandom

/// File helpers for damaging logs on purpose.
enum Damage {
    static func read(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

    static func write(_ path: String, _ bytes: [UInt8]) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

    static func flipBit(_ path: String, at offset: Int, bit: Int = 0) {
        var bytes = read(path)
        bytes[offset] ^= UInt8(1 << bit)
        write(path, bytes)
    }

    static func truncate(_ path: String, to length: Int) {
        let handle = FileHandle(forWritingAtPath: path)!
        handle.truncateFile(atOffset: UInt64(length))
        handle.closeFile()
    }

    static func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) {
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seek(toFileOffset: UInt64(offset))
        handle.write(Data(bytes))
        handle.closeFile()
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
