// A projection runner to kill (EventLogSourcingTests.ProjectionCrashTests).
//
//     SourcingCrashChild DIR log|store run      runs the projection until killed
//     SourcingCrashChild DIR log|store finish   catches up, prints "count sum disorder", exits 0
//
// `log`: a `ProjectionRunner` (state and checkpoint in the log). `store`: a
// `StoreProjectionRunner` over a file written whole and renamed (one
// transaction per commit). The projection counts events and sums their
// positions: an event applied twice or lost changes both; `disorder` counts
// events that came at or below a position already applied.
import EventLog
import EventLogSourcing
import Foundation

struct Tally: Projection {
    var count = 0
    var sum: UInt64 = 0
    var last: UInt64?
    var disorder = 0

    init() {}

    mutating func apply(_ event: EventView) throws {
        if let last, event.position <= last { disorder += 1 }
        last = event.position
        count += 1
        sum &+= event.position
        // Slow enough that a kill lands while batches are applied and committed.
        if count % 100 == 0 { usleep(200) }
    }
}

/// A store whose transaction is a whole-file write, fsync and rename.
final class FileStore: ProjectionStore, @unchecked Sendable {
    struct Contents: Codable {
        var tally = Tally()
        var checkpoint: UInt64?
    }

    let path: String
    var contents: Contents

    init(path: String) throws {
        self.path = path
        if let data = FileManager.default.contents(atPath: path) {
            contents = try JSONDecoder().decode(Contents.self, from: data)
        } else {
            contents = Contents()
        }
    }

    func checkpoint() throws -> UInt64? { contents.checkpoint }

    func commit(_ events: [Event], checkpoint: UInt64) throws {
        var next = contents
        for event in events {
            if let last = next.tally.last, event.position <= last { next.tally.disorder += 1 }
            next.tally.last = event.position
            next.tally.count += 1
            next.tally.sum &+= event.position
        }
        next.checkpoint = checkpoint
        try write(next)
        contents = next
    }

    func reset(checkpoint: UInt64) throws {
        let next = Contents(tally: Tally(), checkpoint: checkpoint)
        try write(next)
        contents = next
    }

    private func write(_ next: Contents) throws {
        let temporary = path + ".tmp"
        let data = try JSONEncoder().encode(next)
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { throw CocoaError(.fileWriteUnknown) }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: SourcingCrashChild DIR log|store run|finish\n".utf8))
    exit(2)
}
let directory = arguments[1]
let mode = arguments[2]
let finish = arguments[3] == "finish"
do {
    let log = try Log.open(at: directory + "/log", options: LogOptions(durability: .none))
    let options = ProjectionOptions(batchSize: 97, commitEvery: 500, commitInterval: .milliseconds(5))
    if mode == "log" {
        let runner = try ProjectionRunner<Tally>(log: log, name: "tally", options: options)
        if finish {
            try runner.catchUp()
            let tally = runner.state
            print("\(tally.count) \(tally.sum) \(tally.disorder)")
        } else {
            FileHandle.standardOutput.write(Data("running\n".utf8))
            try runner.run(shouldStop: { false })
        }
    } else {
        let store = try FileStore(path: directory + "/store.json")
        let runner = try StoreProjectionRunner(log: log, name: "tally", store: store, options: options)
        if finish {
            try runner.catchUp()
            let tally = store.contents.tally
            print("\(tally.count) \(tally.sum) \(tally.disorder)")
        } else {
            FileHandle.standardOutput.write(Data("running\n".utf8))
            try runner.run(shouldStop: { false })
        }
    }
    try log.close()
} catch {
    FileHandle.standardError.write(Data("SourcingCrashChild: \(error)\n".utf8))
    exit(1)
}
