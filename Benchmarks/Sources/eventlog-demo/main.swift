// eventlog-demo DIR [N]: what a service does with EventLog, on the standard
// order-events workload (Benchmarks/WORKLOAD.md). Appends N events in durable
// batches of 100, closes, reopens, reads everything back and checks it
// against the generator's digest, then shows a point read and a time lookup.
// `scripts/demo.sh` runs it and then `eventlog inspect` on the log.
import EventLog
import Workload

#if canImport(Glibc)
import Glibc
#endif

func seconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func fail(_ message: String) -> Never {
    FileHandleStderr.write("eventlog-demo: \(message)\n")
    exit(1)
}

enum FileHandleStderr {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fail("usage: eventlog-demo DIR [N]") }
let directory = arguments[1]
guard let count = arguments.count >= 3 ? Int(arguments[2]) : 200_000, count > 0 else { fail("N must be a positive number") }

do {
    // 1. Append: every batch of 100 is durable when append returns.
    let log = try Log.open(at: directory, options: LogOptions(durability: .always))
    var generator = EventGenerator()
    var written = FNV1a64()
    let start = seconds()
    var done = 0
    while done < count {
        let n = min(100, count - done)
        try log.appendBatch { batch in
            for _ in 0..<n {
                generator.next()
                written.add(stream: generator.stream, version: UInt64(generator.version), type: generator.type, payload: generator.payload)
                try batch.append(stream: generator.stream, type: generator.type, data: generator.payload)
            }
        }
        done += n
    }
    let appendSeconds = seconds() - start
    try log.close()
    print("appended \(count) order events in durable batches of 100: \(Int(Double(count) / appendSeconds)) events/s")

    // 2. Reopen (a clean shutdown: no recovery) and read everything back, zero-copy.
    let reopened = try Log.open(at: directory, options: LogOptions(durability: .always))
    var read = FNV1a64()
    var events = 0
    let readStart = seconds()
    try reopened.read(from: 0) { event in
        read.add(stream: event.streamBytes, version: event.version, type: event.typeBytes, payload: event.data)
        events += 1
    }
    let readSeconds = seconds() - readStart
    guard events == count, read.value == written.value else {
        fail("read back \(events) events with digest \(read.hex); wrote \(count) with digest \(written.hex)")
    }
    print("read back \(events) events, every batch checksum verified: \(Int(Double(events) / readSeconds)) events/s, digest \(read.hex) matches")
    print("previous shutdown: \(reopened.recovery.previousShutdown)")

    // 3. A point read and a time lookup.
    let middle = UInt64(count / 2)
    let event = try reopened.event(at: middle)
    print("event \(middle): stream \(event.stream), version \(event.version), type \(event.type), \(event.data.count) bytes")
    let position = try reopened.position(atOrAfter: event.timestamp)
    print("first event at or after its timestamp: position \(position)")
    try reopened.close()
} catch {
    fail("\(error)")
}
