import EventLog
import EventLogSourcing
import Foundation
import Testing

/// A projection runner in a child process (SourcingCrashChild) killed with
/// SIGKILL at a seeded moment while it applies and commits batches; a
/// second child catches up from the checkpoint it left. Every event must
/// be applied exactly once: the count and the sum of positions match the
/// log's, and no event arrives at or below one already applied.
@Suite(.serialized) struct ProjectionCrashTests {
    static func childURL() throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for directory in candidates {
            let url = directory.appendingPathComponent("SourcingCrashChild")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let url = directory.appendingPathComponent(".build/debug/SourcingCrashChild")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
            directory.deleteLastPathComponent()
        }
        throw CocoaError(.fileNoSuchFile)
    }

    static func child(_ dir: TempDir, _ mode: String, _ action: String) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = try childURL()
        process.arguments = [dir.path, mode, action]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, output)
    }

    @Test(arguments: ["log", "store"]) func aKilledRunnerResumesWithEveryEventAppliedOnce(mode: String) throws {
        var random = SeededRandom(seed: mode == "log" ? 0xC4A5_0001 : 0xC4A5_0002)
        var midway = 0
        for round in 0..<3 {
            let dir = TempDir()
            let log = try openLog(dir)
            let total = 60_000
            var sum: UInt64 = 0
            for chunk in 0..<(total / 1000) {
                try log.append((0..<1000).map { plain("s-\($0 % 5)", chunk * 1000 + $0) })
            }
            for p in 0..<UInt64(total) { sum &+= p }
            try log.close()

            let (running, output) = try Self.child(dir, mode, "run")
            // Wait until it runs, then kill it at a seeded moment while it works.
            _ = output.fileHandleForReading.availableData
            usleep(UInt32(20_000 + random.next() % 120_000))
            kill(running.processIdentifier, SIGKILL)
            running.waitUntilExit()
            #expect(running.terminationReason == .uncaughtSignal, "round \(round): the child ended before the kill")

            // Killed mid-way: some batches committed, not all (the cursor mirrors the checkpoint).
            let reopened = try openLog(dir)
            let committed = try reopened.cursorPosition(ReservedStreams.projection("tally")) ?? 0
            try reopened.close()
            if committed > 0 && committed < UInt64(total) { midway += 1 }

            // What the killed child committed is a prefix; the next one catches up from it.
            let (finishing, finished) = try Self.child(dir, mode, "finish")
            finishing.waitUntilExit()
            #expect(finishing.terminationStatus == 0)
            let line = String(decoding: finished.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(line == "\(total) \(sum) 0", "round \(round) (\(mode))")
        }
        #expect(midway > 0, "no kill landed while the runner was working")
    }
}
