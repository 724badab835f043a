// eventlog-nats-bench: the relay's and the inbox's speed against a running
// nats-server -js (scripts/nats-bench.sh starts one and runs this):
//
//   1. relay throughput: N events already in a log, relayed to a new JetStream
//      stream until every one is acknowledged and the cursor committed;
//   2. end-to-end latency at a steady rate: an appender thread appends at
//      --rate events/s (batches of --latency-batch every batch/rate seconds, durability
//      .always) while the relay runs in the same process; for each event, the
//      time from its append returning to JetStream's acknowledgement reaching
//      the relay; percentiles;
//   3. inbox throughput: the N messages of step 1 consumed by a durable pull
//      consumer and appended (durably, .always) to a new log.
//
// Release build: swift build -c release --package-path Benchmarks --product eventlog-nats-bench
import EventLog
import EventLogNATS
import Foundation
import NATSClient
import Synchronization

struct Arguments {
    var url = "nats://127.0.0.1:4222"
    var directory = NSTemporaryDirectory() + "eventlog-nats-bench-\(getpid())"
    var events = 500_000
    var dataBytes = 100
    var window = RelayOptions.defaultWindow
    var rate = 10_000
    var seconds = 5.0
    var latencyBatch = 10
    var inboxBatch = 1000
    var serverPID: Int32?

    init() {
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let arg = args.next() {
            let value = args.next() ?? ""
            switch arg {
            case "--nats": url = value
            case "--dir": directory = value
            case "--events": events = Int(value) ?? events
            case "--data-bytes": dataBytes = Int(value) ?? dataBytes
            case "--window": window = Int(value) ?? window
            case "--rate": rate = Int(value) ?? rate
            case "--seconds": seconds = Double(value) ?? seconds
            case "--latency-batch": latencyBatch = Int(value) ?? latencyBatch
            case "--inbox-batch": inboxBatch = Int(value) ?? inboxBatch
            case "--server-pid": serverPID = Int32(value)
            default:
                FileHandle.standardError.write("unknown argument \(arg)\n".data(using: .utf8)!)
                exit(2)
            }
        }
    }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func event(_ i: Int, dataBytes: Int) -> NewEvent {
    var data = Array(#"{"order":\#(i),"pad":""#.utf8)
    while data.count < dataBytes - 2 { data.append(UInt8(ascii: "x")) }
    data += Array(#""}"#.utf8)
    return NewEvent(
        stream: "order-\(i % 1000)", type: "OrderPlaced", data: data,
        metadata: EventMetadata(schemaVersion: 1, contentType: "application/json", correlationID: "checkout-\(i % 97)"))
}

/// CPU seconds (user + system) of this process, and of the server when its pid is known
/// (the machine is shared: CPU per event says more than wall time when others load it).
func cpuSeconds(server: Int32?) -> (own: Double, server: Double) {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let own = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    var serverSeconds = 0.0
    if let server, let stat = try? String(contentsOfFile: "/proc/\(server)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    {
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // utime and stime are fields 14 and 15 of the line: 12 and 13 after the command name.
        if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
            serverSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
    }
    return (own, serverSeconds)
}

func cpuLine(_ before: (own: Double, server: Double), _ count: Int, server: Int32?) -> String {
    let after = cpuSeconds(server: server)
    let own = (after.own - before.own) / Double(count) * 1e6
    let srv = (after.server - before.server) / Double(count) * 1e6
    return server == nil ? String(format: "CPU %.1f µs/event here", own)
        : String(format: "CPU %.1f µs/event here + %.1f µs/event in nats-server", own, srv)
}

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * p / 100).rounded(.up)) - 1)
    return Double(sorted[max(0, index)]) / 1000
}

let arguments = Arguments()
let url = try NATSURL(parsing: arguments.url)
try? FileManager.default.removeItem(atPath: arguments.directory)
try FileManager.default.createDirectory(atPath: arguments.directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: arguments.directory) }
print("eventlog-nats-bench: \(arguments.events) events of \(arguments.dataBytes) bytes, window \(arguments.window), \(url)")

// 1. Relay throughput.
do {
    let log = try Log.open(at: arguments.directory + "/relay", options: LogOptions(durability: .none))
    var i = 0
    while i < arguments.events {
        let n = min(1000, arguments.events - i)
        try log.append((i..<(i + n)).map { event($0, dataBytes: arguments.dataBytes) })
        i += n
    }
    try log.sync()
    let relay = Relay(
        log: log, url: url,
        options: RelayOptions(
            subjectPrefix: "bench.", cursor: "relay", window: arguments.window, createStream: "BENCH", stopWhenIdle: true))
    let start = now()
    let cpu = cpuSeconds(server: arguments.serverPID)
    let stats = try relay.run { false }
    let seconds = Double(now() - start) / 1e9
    print(String(format: "relay: %d events in %.2f s = %.0f events/s (max in flight %d, %.0f events a write, %d duplicates); ",
                 stats.acknowledged, seconds, Double(stats.acknowledged) / seconds, stats.maxInFlight,
                 Double(stats.acknowledged) / Double(max(1, stats.writes)), stats.duplicates)
          + cpuLine(cpu, stats.acknowledged, server: arguments.serverPID))
    try log.close()
}

// 2. Latency at a steady rate.
do {
    let log = try Log.open(at: arguments.directory + "/latency", options: LogOptions(durability: .always))
    let total = Int(Double(arguments.rate) * arguments.seconds)
    let appended = Mutex<[UInt64: UInt64]>([:])
    let latencies = Mutex<[UInt64]>([])
    var options = RelayOptions(subjectPrefix: "lat.", cursor: "relay", window: arguments.window, createStream: "LAT", maxEvents: total)
    options.onAcknowledged = { position in
        let t = now()
        if let a = appended.withLock({ $0.removeValue(forKey: position) }) { latencies.withLock { $0.append(t - a) } }
    }
    let relay = Relay(log: log, url: url, options: options)
    let relayThread = Thread {
        do { _ = try relay.run { false } } catch { print("relay failed: \(error)") }
    }
    relayThread.start()
    usleep(200_000)  // connected, stream created
    let batch = arguments.latencyBatch
    let interval = UInt64(Double(batch) / Double(arguments.rate) * 1e9)
    let begin = now()
    var sent = 0
    var next = begin
    while sent < total {
        let n = min(batch, total - sent)
        let range = try log.append((sent..<(sent + n)).map { event($0, dataBytes: arguments.dataBytes) })
        let t = now()
        appended.withLock { map in for p in range { map[p] = t } }
        sent += n
        next += interval
        let wait = Int64(next) - Int64(now())
        if wait > 0 { usleep(UInt32(wait / 1000)) }
    }
    let appendSeconds = Double(now() - begin) / 1e9
    let deadline = Date(timeIntervalSinceNow: 30)
    while relay.statistics.acknowledged < total && Date() < deadline { usleep(10_000) }
    let sorted = latencies.withLock { $0 }.sorted()
    print(String(format: "latency at %.0f events/s (%d events, batches of %d, .always): p50 %.0f µs, p90 %.0f µs, p99 %.0f µs, p99.9 %.0f µs, max %.0f µs",
                 Double(total) / appendSeconds, sorted.count, batch, percentile(sorted, 50), percentile(sorted, 90), percentile(sorted, 99),
                 percentile(sorted, 99.9), percentile(sorted, 100)))
    try log.close()
}

// 3. Inbox throughput.
do {
    let log = try Log.open(at: arguments.directory + "/inbox", options: LogOptions(durability: .always))
    let inbox = Inbox(
        log: log, url: url,
        options: InboxOptions(stream: "BENCH", durable: "bench", batch: arguments.inboxBatch, maxMessages: arguments.events))
    let start = now()
    let cpu = cpuSeconds(server: arguments.serverPID)
    let stats = try inbox.run { false }
    let seconds = Double(now() - start) / 1e9
    print(String(format: "inbox: %d messages in %.2f s = %.0f messages/s (batches of %d, .always); ",
                 stats.appended, seconds, Double(stats.appended) / seconds, arguments.inboxBatch)
          + cpuLine(cpu, stats.appended, server: arguments.serverPID))
    try log.close()
}
