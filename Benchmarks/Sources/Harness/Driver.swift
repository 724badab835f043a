import Foundation
import Workload

/// Everything one invocation measured.
public struct Run: Sendable {
    public let machine: Machine
    public let source: SourceState?
    public let options: Options
    /// One `Results` per N (one unless `--scale`).
    public var results: [Results] = []
    /// The harness's own resident set before any store was opened (MB):
    /// part of every system's peak RSS.
    public var harnessRSSMB: Double = 0
    /// The harness's own anonymous resident memory then (`RssAnon`, MB):
    /// part of every system's `peak_rss_anon_mb`.
    public var harnessAnonymousMB: Double = 0
    public var seconds: Double = 0
    /// The command line that produced it.
    public var command: String = ""
    /// The 1-minute load average after each system round: above ~1 the
    /// shared machine was busy with something else too.
    public var loadAverages: [Double] = []
}

/// Runs the workload's phases for every N, round and system. Rounds are
/// interleaved: round 1 runs every system, then round 2, so that a noisy
/// moment of the shared machine touches every system alike.
///
/// - Parameters:
///   - directory: parent of all stores (each is deleted after use unless `options.keep`).
///   - executable: the `eventlog-bench` binary for open-kill9's child writer; nil skips that phase.
///   - progress: receives one line per finished system round.
public func runBenchmarks(
    _ options: Options, directory: String, executable: String?, progress: (String) -> Void = { _ in }
) throws -> Run {
    var run = Run(machine: .current(), source: SourceState.current(), options: options)
    let start = now()
    resetPeakRSS()
    run.harnessRSSMB = Double(peakRSSBytes()) / 1e6
    run.harnessAnonymousMB = Double(anonymousRSSBytes()) / 1e6
    for n in options.streamsScale.only ? [] : options.ns {
        let sizes = options.sizes(n: n)
        let expectationsStart = now()
        let expectations = Expectations(n: n)
        progress("N=\(n): expected values from the generator (\(String(format: "%.1f", now() - expectationsStart)) s)")
        var results = Results(n: n)
        for round in 1...options.rounds {
            for system in options.systems {
                let started = now()
                resetPeakRSS()
                let baseRSS = currentRSSBytes()
                let sampler = MemorySampler()
                sampler.begin()
                var outcomes: [RoundOutcome]
                do {
                    outcomes = try runSystem(
                        system, sizes: sizes, expectations: expectations, directory: directory, options: options,
                        executable: executable, memory: sampler)
                } catch {
                    _ = sampler.end()
                    throw error
                }
                outcomes[0].residentPeak = sampler.end()
                for i in outcomes.indices { outcomes[i].residentAtStart = sampler.start }
                outcomes[0].peakRSS = peakRSSBytes()
                outcomes[0].rssGrowth = outcomes[0].peakRSS! - min(baseRSS, outcomes[0].peakRSS!)
                for outcome in outcomes { results.record(outcome, sizes: sizes) }
                let load = loadAverage()
                run.loadAverages.append(load)
                progress(
                    "N=\(n) round \(round)/\(options.rounds): \(system.name) done (\(String(format: "%.1f", now() - started)) s, "
                        + "peak RSS \(outcomes[0].peakRSS! >> 20) MiB (anonymous \(outcomes[0].residentPeak!.anonymous >> 20), "
                        + "file \(outcomes[0].residentPeak!.file >> 20)), RSS now \(currentRSSBytes() >> 20) MiB, load \(load))")
            }
        }
        run.results.append(results)
    }
    if !options.streamsScale.counts.isEmpty {
        if run.results.isEmpty { run.results.append(Results(n: options.ns.last ?? options.sizes.n)) }
        let last = run.results.count - 1
        for streams in options.streamsScale.counts {
            let workloadStart = now()
            let workload = AggregateWorkload(streams: streams)
            let phase = StreamsScale.phaseName(streams)
            progress("\(phase): \(workload.loadEvents) events, \(workload.loadBytes) logical bytes (\(String(format: "%.1f", now() - workloadStart)) s)")
            for round in 1...options.rounds {
                for system in options.systems {
                    let started = now()
                    guard let outcome = try StreamsScale.run(
                        system, workload: workload, sizes: options.streamsScale, directory: directory, keep: options.keep,
                        executable: executable)
                    else {
                        run.results[last].notMeasured(system, phase, "open_clean_ms", reason: "the streams-scale group does not drive \(system.name)")
                        continue
                    }
                    run.results[last].record(outcome)
                    progress(
                        "\(phase) round \(round)/\(options.rounds): \(system.name) done (\(String(format: "%.1f", now() - started)) s, "
                            + "RSS now \(currentRSSBytes() >> 20) MiB, load \(loadAverage())): "
                            + outcome.figures.map { "\($0.metric) \(compact($0.value))" }.joined(separator: ", "))
                }
            }
        }
    }
    run.seconds = now() - start
    return run
}

/// One round of one system: the common phases, and for EventLog its extra
/// ones. The switch picks the concrete store type; everything below it is
/// generic code specialized for that type. With `memory` (the round's
/// sampler, begun), each phase's peaks of resident memory go into the
/// outcomes' `phaseMemory`.
public func runSystem(
    _ system: SystemID, sizes: PhaseSizes, expectations: Expectations, directory: String, options: Options,
    executable: String?, memory: MemorySampler? = nil
) throws -> [RoundOutcome] {
    /// Ends an extra phase of `outcome` in the sampler.
    func endPhase(_ phase: String, _ outcome: inout RoundOutcome) {
        if let memory { outcome.phaseMemory.append((phase, memory.endPhase())) }
    }
    switch system {
    case .eventlog:
        var main = SystemRound<EventLogStore>(system: system, sizes: sizes, expectations: expectations, directory: directory)
        main.keep = options.keep
        main.memory = memory
        if !options.skip.contains("open") {
            main.afterBulkClose = { path in
                try EventLogPhases.openAfterCleanShutdown(path: path, expectedEvents: sizes.n)
            }
        }
        var outcome = try main.run()
        var outcomes: [RoundOutcome] = []
        if !options.skip.contains("lz4") {
            var lz4 = SystemRound<EventLogStore>(system: system, sizes: sizes, expectations: expectations, directory: directory)
            lz4.config.lz4 = true
            lz4.config.compressionUnitBytes = options.compressionUnitBytes
            lz4.config.dictionaryUnitBytes = options.dictionaryUnitBytes
            lz4.suffix = "-lz4"
            lz4.durablePhases = false
            lz4.keep = options.keep
            lz4.memory = memory
            outcomes.append(try lz4.run())
        }
        if !options.skip.contains("enc") {
            var encrypted = SystemRound<EventLogStore>(system: system, sizes: sizes, expectations: expectations, directory: directory)
            encrypted.config.encrypted = true
            encrypted.config.batchCacheBytes = options.batchCacheBytes
            encrypted.suffix = "-enc"
            encrypted.durablePhases = false
            encrypted.keep = options.keep
            encrypted.memory = memory
            outcomes.append(try encrypted.run())
        }
        for threads in options.skip.contains("concurrent") ? [] : sizes.threads {
            let (figures, latency) = try EventLogPhases.concurrentAppenders(
                threads: threads, appendsPerThread: sizes.appendsPerThread, directory: directory, keep: options.keep)
            outcome.extra += figures
            outcome.concurrentLatency["C\(threads)"] = latency
            endPhase("C\(threads)", &outcome)
        }
        if !options.skip.contains("scavenge") {
            outcome.extra += try EventLogPhases.scavenge(events: sizes.n, directory: directory, keep: options.keep)
            endPhase("scavenge", &outcome)
        }
        if sizes.crashEvents > 0, !options.skip.contains("open"), let executable {
            outcome.extra += try EventLogPhases.openAfterKill(
                events: sizes.crashEvents, directory: directory, executable: executable, keep: options.keep)
            endPhase("open-kill9", &outcome)
        }
        return [outcome] + outcomes
    case .sqlite, .sqliteTuned:
        return [try runPeer(SQLitePeer.self, system, sizes: sizes, expectations: expectations, directory: directory, options: options, memory: memory)]
    case .lmdb:
        return [try runPeer(LMDBPeer.self, system, sizes: sizes, expectations: expectations, directory: directory, options: options, memory: memory)]
    case .rocksdb, .rocksdbTuned:
        return [try runPeer(RocksDBPeer.self, system, sizes: sizes, expectations: expectations, directory: directory, options: options, memory: memory)]
    }
}

/// A peer's round: the common phases, then its C phases (the same threads,
/// events and durability as EventLog's; see each peer's `ConcurrentStore`).
func runPeer<S: Store & ConcurrentStore>(
    _: S.Type, _ system: SystemID, sizes: PhaseSizes, expectations: Expectations, directory: String, options: Options,
    memory: MemorySampler? = nil
) throws -> RoundOutcome {
    var round = SystemRound<S>(system: system, sizes: sizes, expectations: expectations, directory: directory)
    round.keep = options.keep
    round.memory = memory
    var outcome = try round.run()
    for threads in options.skip.contains("concurrent") ? [] : sizes.threads {
        let (figures, latency) = try ConcurrentPhase.run(
            S.self, threads: threads, appendsPerThread: sizes.appendsPerThread, directory: directory, name: system.name,
            config: system.config, keep: options.keep)
        outcome.extra += figures
        outcome.concurrentLatency["C\(threads)"] = latency
        if let memory { outcome.phaseMemory.append(("C\(threads)", memory.endPhase())) }
    }
    return outcome
}
