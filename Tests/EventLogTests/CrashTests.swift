import Foundation
import Synchronization
import Testing
@testable import EventLog

/// kill -9 of a real child process (`eventlog append --durability always`)
/// at random moments: after reopen every acknowledged event is there,
/// identical, in order, with no duplicates, and the log verifies.
@Suite struct CrashTests {
    /// One run of the child: feeds events whose data names their expected
    /// position, kills it after `delay`, returns the acknowledged positions.
    static func runAndKill(directory: String, firstPosition: Int, delayMicroseconds: UInt32, batch: Int) throws -> [Int] {
        let child = try CLIProcess.start([
            "append", directory, "--durability", "always", "--batch", String(batch), "--segment-bytes", "65536",
        ])
        let feeding = Atomic<Bool>(true)
        let feeder = Thread {
            var n = firstPosition
            while feeding.load(ordering: .relaxed) {
                var lines = ""
                for _ in 0..<7 {
                    lines += #"{"stream":"order-\#(n % 13)","type":"Placed","data":{"n":\#(n),"pad":"\#(String(repeating: "x", count: n % 50))"}}"#
                    lines += "\n"
                    n += 1
                }
                do { try child.write(lines) } catch { break }  // the child is gone
                usleep(200)
            }
        }
        feeder.start()
        usleep(delayMicroseconds)
        let output = child.kill()
        feeding.store(false, ordering: .relaxed)
        return (output?.lines ?? child.lines).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["position"] as? Int
        }
    }

    @Test func killNineAtRandomMoments() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory()
        let logPath = dir.sub("log")
        var rng = SplitMix64(seed: 2026)
        var end = 0
        var everAcknowledged = 0
        for round in 0..<24 {
            let delay = UInt32(20_000 + rng.next() % 150_000)
            let batch = Int(1 + rng.next() % 40)
            let acknowledged = try Self.runAndKill(directory: logPath, firstPosition: end, delayMicroseconds: delay, batch: batch)
            // Acknowledgements come in order, one per event, starting at the old end.
            #expect(acknowledged == Array(end..<(end + acknowledged.count)), "round \(round)")
            everAcknowledged += acknowledged.count
            let log = try Log.open(at: logPath, options: LogOptions(durability: .none))
            let events = try log.events(from: 0)
            #expect(events.count >= end + acknowledged.count, "round \(round): acknowledged events lost")
            for (i, e) in events.enumerated() {
                #expect(e.position == UInt64(i))
                let object = try JSONSerialization.jsonObject(with: Data(e.data)) as? [String: Any]
                #expect(object?["n"] as? Int == i, "round \(round): event \(i) is not the one written")
                #expect(e.stream == "order-\(i % 13)")
            }
            end = events.count
            try log.close()
            let report = try Log.verify(at: logPath)
            #expect(report.isSound, "round \(round): \(report.problems)")
        }
        #expect(everAcknowledged > 0)
    }

    /// A batch spanning three streams is all there or all gone after kill -9,
    /// and every stream's versions still run 0, 1, 2, … without gaps.
    @Test func multiStreamBatchesSurviveKillNineWhole() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory()
        let logPath = dir.sub("log")
        var rng = SplitMix64(seed: 77)
        var group = 0
        for round in 0..<10 {
            let child = try CLIProcess.start(["append", logPath, "--durability", "always", "--batch", "3"])
            let feeding = Atomic<Bool>(true)
            let firstGroup = group
            let feeder = Thread {
                var g = firstGroup
                while feeding.load(ordering: .relaxed) {
                    // One write per group (below PIPE_BUF): the three lines arrive together, so each batch is one group.
                    let lines = ["order", "payment", "outbox"].map { stream in
                        #"{"stream":"\#(stream)-\#(g % 5)","type":"Step","data":{"group":\#(g)}}"#
                    }.joined(separator: "\n") + "\n"
                    do { try child.write(lines) } catch { break }
                    g += 1
                    usleep(300)
                }
            }
            feeder.start()
            usleep(UInt32(20_000 + rng.next() % 100_000))
            _ = child.kill()
            feeding.store(false, ordering: .relaxed)

            let log = try Log.open(at: logPath, options: LogOptions(durability: .none))
            var perGroup: [Int: Int] = [:]
            var versions: [String: [UInt64]] = [:]
            for e in try log.events(from: 0) {
                let object = try JSONSerialization.jsonObject(with: Data(e.data)) as? [String: Any]
                let g = try #require(object?["group"] as? Int)
                perGroup[g, default: 0] += 1
                versions[e.stream, default: []].append(e.version)
            }
            for (g, count) in perGroup { #expect(count == 3, "round \(round): group \(g) has \(count) of its 3 events") }
            for (stream, list) in versions {
                #expect(list == (0..<UInt64(list.count)).map { $0 }, "round \(round): \(stream) versions \(list)")
                #expect(try log.streamInfo(stream)?.count == UInt64(list.count))
            }
            group = (perGroup.keys.max() ?? (group - 1)) + 1
            try log.close()
            #expect(try Log.verify(at: logPath).isSound)
        }
        #expect(group > 0)
    }
}
