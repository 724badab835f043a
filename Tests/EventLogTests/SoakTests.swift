import Foundation
import Testing

@testable import EventLog

/// The soak of issue 16 (`scripts/soak.sh`, never in CI: it runs only when
/// `EVENTLOG_SOAK_MINUTES` is set). Round after round until the time is up,
/// each round one of the existing fault runs, with a seed drawn from the
/// soak's seed:
/// - `load`: `ConcurrentLoad`, everything at once on one log (appends of
///   every shape from several threads, readers, a subscription, a consumer
///   group, cursor commits, compaction, metrics, the service);
/// - `simulation`: seeds of the deterministic simulation (appends, reads,
///   commits, groups, retention, process crashes, power losses);
/// - `kill -9`: a real `eventlog append` child killed at a random moment,
///   then the log reopened and checked (CrashTests);
/// - `full disk`: one of the full-disk moments on a size-limited tmpfs
///   (when this process may mount one);
/// - `failed sync`: EIO on the sync of one kind of file (FailedSyncTests).
///
/// Prints each round, then the figures: events acknowledged and verified,
/// faults injected by kind, and every violation with the seed that replays
/// its round (`scripts/soak.sh --round SEED`). The reused test helpers
/// report with `#expect`: such an issue prints where it happens, between
/// its round's start and end lines, and `scripts/soak.sh` counts it as a
/// violation of that round.
@Suite(.serialized, .enabled(if: SoakPlan.current != nil, "a soak runs only from scripts/soak.sh"))
struct SoakTests {
    @Test func soak() async throws {
        let plan = try #require(SoakPlan.current)
        var figures = SoakFigures()
        let deadline = Date().addingTimeInterval(plan.minutes * 60)
        var master = SplitMix64(seed: plan.seed)
        var round = 0
        repeat {
            let seed = plan.round ?? master.next()
            round += 1
            await Self.runRound(seed: seed, index: round, into: &figures)
        } while plan.round == nil && Date() < deadline
        print(figures.summary(seed: plan.seed, rounds: round))
        #expect(figures.violations.isEmpty, "\(figures.violations.count) violations; replay each round with its seed")
    }

    static let kinds = ["load", "simulation", "kill -9", "full disk", "failed sync"]

    /// One round: its kind and everything in it come from `seed`.
    static func runRound(seed: UInt64, index: Int, into figures: inout SoakFigures) async {
        var random = SplitMix64(seed: seed)
        let kind = kinds[Int(random.next() % UInt64(kinds.count))]
        let started = Date()
        print("soak round \(index) begins: \(kind), seed \(seed)")
        fflush(nil)  // every stream: the round lines interleave with the tests' own output
        var violations: [String] = []
        do {
            switch kind {
            case "load":
                let report = try await ConcurrentLoad(seed: random.next(), rounds: 40 + Int(random.next() % 200)).run()
                figures.acknowledged += report.acknowledged
                figures.verified += report.verified
                violations += report.violations
                figures.faults["compaction runs beside appends", default: 0] += 1
            case "simulation":
                for _ in 0..<20 {
                    let simulationSeed = random.next() % 1_000_000_000
                    let simulation = try Simulation(seed: simulationSeed, verbose: false)
                    do {
                        try simulation.run()
                        // The events the model still holds were all read back as acknowledged.
                        figures.verified += simulation.events.count
                    } catch {
                        violations.append("simulation seed \(simulationSeed): \(error) (replay: EVENTLOG_SIM_SEED=\(simulationSeed) swift test --filter SimulationTests)")
                    }
                    figures.acknowledged += simulation.events.count
                    // Acknowledged under .interval or .none, never synced, and taken by a power loss: allowed.
                    figures.faults["(acknowledged, unsynced events a power loss took under .interval/.none)", default: 0] +=
                        simulation.acknowledgedCount - simulation.events.count
                    for (fault, count) in simulation.faults { figures.faults[fault, default: 0] += count }
                }
            case "kill -9":
                let (acknowledged, verified, kills, found) = try killNine(&random)
                figures.acknowledged += acknowledged
                figures.verified += verified
                figures.faults["kill -9", default: 0] += kills
                violations += found
            case "full disk":
                guard SmallTmpfs.available else {
                    figures.skipped["full disk (cannot mount a tmpfs)", default: 0] += 1
                    break
                }
                let moment = Int(random.next() % 5)
                let momentSeed = random.next()
                let durability: Durability = random.next() % 2 == 0 ? .always : .none
                let failures: Int
                switch moment {
                case 0: failures = try FullDiskMomentTests.fillMidAppend(durability: durability, reserving: random.next() % 2 == 0, seed: momentSeed)
                case 1: failures = try FullDiskMomentTests.fillMidRoll(durability: durability, seed: momentSeed)
                case 2: failures = try FullDiskMomentTests.fillMidCheckpoint(seed: momentSeed)
                case 3: failures = try FullDiskMomentTests.fillMidCursorCommit(durability: durability, seed: momentSeed)
                default: failures = try FullDiskMomentTests.fillMidCompaction(seed: momentSeed)
                }
                let name = ["append", "roll", "checkpoint", "cursor commit", "compaction"][moment]
                figures.faults["ENOSPC mid-\(name)", default: 0] += failures
            default:
                let syncKinds = FailedSyncTests.kinds
                let chosen = syncKinds[Int(random.next() % UInt64(syncKinds.count))]
                try FailedSyncTests().aFailedSyncStopsTheWriter(kind: chosen)
                figures.faults["EIO on sync: \(chosen.name)", default: 0] += 1
            }
        } catch {
            violations.append("\(kind): \(error)")
        }
        for v in violations { figures.violations.append("round \(index) (\(kind), seed \(seed)): \(v)") }
        let took = Date().timeIntervalSince(started)
        print("soak round \(index): \(kind), seed \(seed), \(String(format: "%.1f", took)) s, \(violations.isEmpty ? "ok" : "VIOLATION")")
        fflush(nil)  // every stream: the round lines interleave with the tests' own output
    }

    /// A few rounds of CrashTests' child writer killed at a random moment:
    /// acknowledged, verified after each reopen, kills, violations.
    static func killNine(_ random: inout SplitMix64) throws -> (Int, Int, Int, [String]) {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory()
        let path = dir.sub("log")
        var end = 0
        var acknowledgedTotal = 0
        var verified = 0
        var violations: [String] = []
        let rounds = 3 + Int(random.next() % 4)
        for round in 0..<rounds {
            let delay = UInt32(20_000 + random.next() % 200_000)
            let batch = Int(1 + random.next() % 40)
            let acknowledged = try CrashTests.runAndKill(directory: path, firstPosition: end, delayMicroseconds: delay, batch: batch)
            acknowledgedTotal += acknowledged.count
            if acknowledged != Array(end..<(end + acknowledged.count)) {
                violations.append("kill \(round): acknowledgements out of order")
            }
            let log = try Log.open(at: path, options: LogOptions(durability: .none))
            let events = try log.events(from: 0)
            if events.count < end + acknowledged.count { violations.append("kill \(round): acknowledged events lost") }
            for (i, e) in events.enumerated() {
                let object = try? JSONSerialization.jsonObject(with: Data(e.data)) as? [String: Any]
                if e.position != UInt64(i) || object?["n"] as? Int != i {
                    violations.append("kill \(round): event \(i) is not the one written")
                    break
                }
            }
            verified += min(events.count, end + acknowledged.count) - end
            end = events.count
            try log.close()
            let report = try Log.verify(at: path)
            if !report.isSound { violations.append("kill \(round): verify: \(report.problems)") }
        }
        return (acknowledgedTotal, verified, rounds, violations)
    }
}

/// What `scripts/soak.sh` asked for, from the environment.
struct SoakPlan {
    var minutes: Double
    var seed: UInt64
    /// One round alone, by its seed (a replay).
    var round: UInt64?

    static var current: SoakPlan? {
        let env = ProcessInfo.processInfo.environment
        guard let minutes = env["EVENTLOG_SOAK_MINUTES"].flatMap(Double.init) else { return nil }
        return SoakPlan(
            minutes: minutes, seed: env["EVENTLOG_SOAK_SEED"].flatMap(UInt64.init) ?? 1,
            round: env["EVENTLOG_SOAK_ROUND"].flatMap(UInt64.init))
    }
}

/// The soak's figures.
struct SoakFigures {
    var acknowledged = 0
    var verified = 0
    var faults: [String: Int] = [:]
    var skipped: [String: Int] = [:]
    var violations: [String] = []

    func summary(seed: UInt64, rounds: Int) -> String {
        var lines = ["soak (seed \(seed)): \(rounds) rounds", "events acknowledged: \(acknowledged)", "events verified after the faults: \(verified)"]
        lines.append("faults injected:")
        for (fault, count) in faults.sorted(by: { $0.key < $1.key }) { lines.append("  \(fault): \(count)") }
        for (what, count) in skipped.sorted(by: { $0.key < $1.key }) { lines.append("skipped: \(what): \(count)") }
        lines.append("violations: \(violations.count)")
        for v in violations { lines.append("  \(v)") }
        for v in violations.prefix(5) {
            if let range = v.range(of: "seed "), let seed = v[range.upperBound...].split(whereSeparator: { !$0.isNumber }).first {
                lines.append("  replay: bash scripts/soak.sh --round \(seed)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
