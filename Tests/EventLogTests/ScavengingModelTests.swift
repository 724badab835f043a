import Foundation
import Testing
@testable import EventLog

/// Scavenging against a reference model: seeded random appends (with
/// expected versions and event ids, timestamped now or two hours ago), soft
/// and hard deletions, truncations, stream limits (max count, and a max age
/// of one hour), explicit keys and tombstones with key compaction on for
/// half the seeds (tombstone retention 0 or 3 hours), compactions (which merge the small segments scavenging leaves, Format.md §4.2), idempotent retries, reopens and power losses (under
/// `.none`, through `PowerLossSimulator`: what survives is a prefix at
/// least as long as what was synced, and the markers that made a removed
/// event dead always survive with it). After every step the log,
/// every stream and every removed position read exactly as the model says:
/// only dead events ever go, once gone they stay gone, survivors are
/// unchanged, versions go on, and lag counts the events still there.
///
/// Budget: `EVENTLOG_SCAVENGE_SEEDS` seeds (default 150); `EVENTLOG_SCAVENGE_SEED=N`
/// runs seed N alone and prints its trace.
@Suite struct ScavengingModelTests {
    static var seeds: [UInt64] {
        let env = ProcessInfo.processInfo.environment
        if let one = env["EVENTLOG_SCAVENGE_SEED"].flatMap(UInt64.init) { return [one] }
        return (1...UInt64(env["EVENTLOG_SCAVENGE_SEEDS"].flatMap(Int.init) ?? 150)).map { $0 }
    }

    @Test func randomRunsMatchTheModel() throws {
        var failures = 0
        var merged = 0
        defer {
            // Small segments (4 KiB) that scavenging empties are merged (Format.md §4.2): the model sees that too.
            if Self.seeds.count >= 20 { #expect(merged > 0, "no seed merged segments") }
        }
        for seed in Self.seeds {
            let run = try ScavengingModelRun(seed: seed, verbose: Self.seeds.count == 1)
            defer { merged += run.segmentsMerged }
            do {
                try run.run()
            } catch {
                failures += 1
                Issue.record("seed \(seed): \(error)\n\(run.trace.suffix(20).joined(separator: "\n"))\nreplay: EVENTLOG_SCAVENGE_SEED=\(seed)")
                if failures >= 3 { return }
            }
        }
    }
}

final class ScavengingModelRun {
    struct Record {
        var stream: String
        var version: UInt64
        var isMarker: Bool
        var data: [UInt8]
        /// An event's timestamp is two hours old (else now).
        var isOld = false
        /// The event's key (its explicit key, else its stream) and tombstone flag.
        var key = ""
        var isTombstone = false
        /// A marker's effect.
        var marker: StreamMarker?
    }

    struct StreamModel {
        var nextVersion: UInt64 = 0
        var truncateBefore: UInt64 = 0
        var deletion: StreamDeletion = .none
        /// The stream's limits: max count (0: none), and a max age of one hour or none.
        var maxCount: UInt64 = 0
        var maxAgeHour = false
        /// The stream was deleted or truncated since the last append to it.
        var touched = false

        var readableFrom: UInt64 {
            maxCount > 0 && nextVersion > maxCount ? max(truncateBefore, nextVersion - maxCount) : truncateBefore
        }
        var limits: StreamLimits { StreamLimits(maxAge: maxAgeHour ? .seconds(3600) : nil, maxCount: maxCount == 0 ? nil : maxCount) }
    }

    let seed: UInt64
    let verbose: Bool
    var rng: SplitMix64
    let directory = TemporaryDirectory("eventlog-scavenge-model", preferMemory: true)
    let simulator: PowerLossSimulator
    var baseOptions: LogOptions
    var options: LogOptions {
        var options = baseOptions
        options.storageFaults = simulator.faults
        return options
    }
    /// `records[0..<durableCount]` survive a power loss (synced by a close or a scavenging swap).
    var durableCount = 0
    var log: Log?
    var records: [Record] = []
    /// Positions scavenging removed (each was dead when it went).
    var gone: Set<UInt64> = []
    var streams: [String: StreamModel] = [:]
    var lastAppend: (events: [NewEvent], expecting: [String: ExpectedVersion], result: AppendResult)?
    var trace: [String] = []
    static let names = (0..<7).map { "agg-\($0)" }
    static let keys = (0..<3).map { "key-\($0)" }
    /// Key compaction for this seed, and its tombstone retention (0: a tombstone that is its key's latest may go at once).
    var keyCompaction = false
    var tombstoneRetentionZero = false
    /// Segments merged by this run's compactions (Format.md §4.2).
    var segmentsMerged = 0

    init(seed: UInt64, verbose: Bool) throws {
        self.seed = seed
        self.verbose = verbose
        rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ 7)
        simulator = try PowerLossSimulator(directory: directory.path, seed: seed)
        baseOptions = LogOptions(segmentBytes: 4096, durability: .none)
        baseOptions.maintenanceInterval = nil
        baseOptions.checkpointBytes = 4096
        baseOptions.preallocates = false
        baseOptions.compression = Int.random(in: 0..<2, using: &rng) == 0 ? .none : .lz4
    }

    func random(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
    func note(_ line: String) {
        trace.append(line)
        if verbose { print("[\(seed)] \(line)") }
    }

    var current: Log {
        get throws {
            guard let log else { throw SimulationFailure("no open log") }
            return log
        }
    }

    func run() throws {
        keyCompaction = random(0..<2) == 0
        tombstoneRetentionZero = random(0..<2) == 0
        // Half the seeds with key compaction give its map room for 1 or 2 keys only: passes go window by window.
        if keyCompaction && random(0..<2) == 0 { baseOptions.keyMapKeyLimit = random(1..<3) }
        // A third of the seeds give a pass's cache of stream floors room for 1 to 3 streams: it empties and fills again.
        if random(0..<3) == 0 {
            baseOptions.floorsCacheLimit = random(1..<4)
            note("floors cache of \(baseOptions.floorsCacheLimit ?? 0) streams")
        }
        log = try Log.open(at: directory.path, options: options)
        if keyCompaction {
            try current.updateSettings(LogSettings(keyCompaction: true, tombstoneRetention: .seconds(tombstoneRetentionZero ? 0 : 3 * 3600)))
            note("key compaction, tombstone retention \(tombstoneRetentionZero ? "0" : "3h"), key map of \(baseOptions.keyMapKeyLimit.map(String.init) ?? "any number of") keys")
        }
        for _ in 0..<random(40..<90) {
            switch random(0..<100) {
            case 0..<45: try append()
            case 45..<51: try delete()
            case 51..<57: try truncate()
            case 57..<63: try setLimits()
            case 63..<78: try compact()
            case 78..<86: try retry()
            case 86..<93: try powerLoss()
            default: try reopen()
            }
            try check()
        }
        try compact()
        try check()
        try current.close()
        log = nil
        durableCount = records.count
        let report = try Log.verify(at: directory.path)
        guard report.isSound else { throw SimulationFailure("verify: \(report.problems)") }
        log = try Log.open(at: directory.path, options: options)
        try check()
        try current.close()
    }

    // MARK: Steps

    func append() throws {
        var events: [NewEvent] = []
        var expecting: [String: ExpectedVersion] = [:]
        let now = Timestamp(Date().timeIntervalSince1970 * 1_000_000)
        for _ in 0..<random(1..<12) {
            let name = Self.names[random(0..<Self.names.count)]
            if streams[name]?.deletion == .hard { continue }
            let body = (0..<random(10..<120)).map { _ in UInt8(random(0..<256)) }
            var event = NewEvent(stream: name, type: "T\(random(0..<3))", data: body, metadata: EventMetadata(eventID: UUID()))
            if random(0..<3) == 0 { event.timestamp = now - 7_200_000_000 }
            if random(0..<3) == 0 { event.key = Self.keys[random(0..<Self.keys.count)] }
            event.isTombstone = random(0..<8) == 0
            events.append(event)
            if expecting[name] == nil, random(0..<2) == 0 {
                let model = streams[name] ?? StreamModel()
                let current = model.deletion == .soft || model.nextVersion == 0 ? nil : model.nextVersion - 1
                expecting[name] = current.map { .exact($0) } ?? .noStream
            }
        }
        guard !events.isEmpty else { return }
        let result = try current.append(events, expecting: expecting)
        guard !result.wasRetry, result.positions.count == events.count, result.positions.lowerBound == UInt64(records.count) else {
            throw SimulationFailure("append of \(events.count) got \(result)")
        }
        for event in events {
            var model = streams[event.stream] ?? StreamModel()
            records.append(Record(
                stream: event.stream, version: model.nextVersion, isMarker: false, data: event.data, isOld: event.timestamp != nil,
                key: event.key ?? event.stream, isTombstone: event.isTombstone))
            model.nextVersion += 1
            model.deletion = .none
            model.touched = false
            streams[event.stream] = model
        }
        lastAppend = (events, expecting, result)
        note("append \(events.count) at \(result.positions)")
    }

    func delete() throws {
        let name = Self.names[random(0..<Self.names.count)]
        guard var model = streams[name], model.deletion != .hard else { return }
        let hard = random(0..<3) == 0
        let position = try current.deleteStream(name, hard: hard)
        guard position == UInt64(records.count) else { throw SimulationFailure("delete marker at \(position), expected \(records.count)") }
        records.append(Record(stream: name, version: model.nextVersion, isMarker: true, data: [], marker: .delete(hard: hard)))
        model.deletion = hard ? .hard : .soft
        model.truncateBefore = max(model.truncateBefore, model.nextVersion)
        model.touched = true
        streams[name] = model
        note("delete \(name)\(hard ? " hard" : "") at \(position)")
    }

    func truncate() throws {
        let name = Self.names[random(0..<Self.names.count)]
        guard var model = streams[name], model.deletion != .hard, model.nextVersion > 0 else { return }
        let before = UInt64(random(0..<(Int(model.nextVersion) + 1)))
        let position = try current.truncateStream(name, before: before)
        records.append(Record(stream: name, version: model.nextVersion, isMarker: true, data: [], marker: .truncate(before: before)))
        model.truncateBefore = max(model.truncateBefore, before)
        model.touched = true
        streams[name] = model
        note("truncate \(name) before \(before) at \(position)")
    }

    func setLimits() throws {
        let name = Self.names[random(0..<Self.names.count)]
        guard var model = streams[name], model.deletion != .hard else { return }
        model.maxCount = random(0..<2) == 0 ? 0 : UInt64(random(1..<5))
        model.maxAgeHour = random(0..<2) == 0
        let position = try current.setStreamLimits(name, model.limits)
        guard position == UInt64(records.count) else { throw SimulationFailure("limits marker at \(position), expected \(records.count)") }
        records.append(Record(
            stream: name, version: model.nextVersion, isMarker: true, data: [],
            marker: .limits(maxAgeMicroseconds: model.maxAgeHour ? 3_600_000_000 : 0, maxCount: model.maxCount)))
        model.touched = true
        streams[name] = model
        note("limits \(name) max-count \(model.maxCount) max-age \(model.maxAgeHour ? "1h" : "none") at \(position)")
    }

    func compact() throws {
        let result = try current.compact()
        note("compact: rewrote \(result.segmentsRewritten), merged \(result.segmentsMerged), removed \(result.eventsRemoved)")
        segmentsMerged += result.segmentsMerged
        let segments = try current.batches.segments.snapshot().count
        guard result.segmentsAfter == segments else {
            throw SimulationFailure("compact says \(result.segmentsAfter) segments after, the log has \(segments)")
        }
        // A swap syncs everything appended before it.
        if result.segmentsRewritten > 0 { durableCount = records.count }
        guard result.startPosition == 0, result.eventsRemoved == result.eventsScavenged else {
            throw SimulationFailure("compact without retention settings moved the start: \(result)")
        }
    }

    /// The last append again, when none of its streams was deleted or
    /// truncated since: recognised, nothing written.
    func retry() throws {
        guard let last = lastAppend, Set(last.events.map(\.stream)).allSatisfy({ streams[$0]?.touched == false }) else { return }
        let end = try current.endPosition
        let result = try current.append(last.events, expecting: last.expecting)
        note("retry of \(last.result.positions)")
        guard result.wasRetry, result.positions == last.result.positions, result.streams == last.result.streams else {
            throw SimulationFailure("retry of \(last.result) gave \(result)")
        }
        guard try current.endPosition == end else { throw SimulationFailure("a retry wrote something") }
    }

    func reopen() throws {
        try current.close()
        durableCount = records.count
        log = try Log.open(at: directory.path, options: options)
        note("reopen")
    }

    /// The power fails with the log open: it is abandoned (its background
    /// work let finish first, as a dead process does nothing afterwards),
    /// the disk keeps what was synced and maybe more, and the log reopens
    /// with a prefix of the records; the model keeps the same prefix.
    func powerLoss() throws {
        log?.batches.segments.waitForIndexWrites()
        guard CrashFixtures.abandon(&log) else { throw SimulationFailure("the abandoned log was still alive after 10 s") }
        _ = try simulator.powerLoss()
        log = try Log.open(at: directory.path, options: options)
        let end = Int(try current.endPosition)
        guard end >= durableCount, end <= records.count else {
            throw SimulationFailure("after a power loss the log ends at \(end); \(durableCount) were synced, \(records.count) appended")
        }
        note("power loss: \(records.count - end) of \(records.count) records lost")
        records.removeLast(records.count - end)
        gone = gone.filter { $0 < UInt64(end) }
        durableCount = end
        lastAppend = nil
        // The streams as the surviving records make them.
        streams = [:]
        for record in records {
            var model = streams[record.stream] ?? StreamModel()
            switch record.marker {
            case .delete(let hard)?:
                model.deletion = hard ? .hard : .soft
                model.truncateBefore = max(model.truncateBefore, model.nextVersion)
            case .truncate(let before)?:
                model.truncateBefore = max(model.truncateBefore, before)
            case .limits(let maxAge, let maxCount)?:
                model.maxAgeHour = maxAge > 0
                model.maxCount = maxCount
            case nil:
                model.nextVersion = record.version + 1
                model.deletion = .none
            }
            model.touched = true
            streams[record.stream] = model
        }
    }

    // MARK: The check

    /// May be dead now: below the stream's readable floor, or, unless it is
    /// its stream's last event, older than its max age, or (key compaction)
    /// followed by a later event of its key, or a tombstone that is its
    /// key's latest under a retention of 0 (Format.md §4.1). With keys this
    /// is necessary, not sufficient: a compaction only sees the sealed segments.
    func isDead(_ position: UInt64) -> Bool {
        let record = records[Int(position)]
        guard !record.isMarker, let model = streams[record.stream] else { return false }
        if record.version < model.readableFrom { return true }
        guard record.version + 1 < model.nextVersion else { return false }
        if model.maxAgeHour && record.isOld { return true }
        guard keyCompaction else { return false }
        let later = records[(Int(position) + 1)...].contains { !$0.isMarker && $0.key == record.key }
        return later || (record.isTombstone && tombstoneRetentionZero)
    }

    func check() throws {
        let log = try current
        // The whole log: survivors unchanged, only dead positions missing, the gone ones still gone.
        var present: Set<UInt64> = []
        try log.read(from: 0) { view in
            let p = view.position
            guard p < UInt64(records.count) else { throw SimulationFailure("read position \(p) past the end \(records.count)") }
            let r = records[Int(p)]
            guard view.stream == r.stream, view.isMarker == r.isMarker, r.isMarker || (view.version == r.version && Array(view.data) == r.data)
            else { throw SimulationFailure("position \(p) reads as \(view.stream) v\(view.version), expected \(r.stream) v\(r.version)") }
            present.insert(p)
        }
        // (A position removed earlier stays removed when a limit is raised since.)
        for p in 0..<UInt64(records.count) where !present.contains(p) {
            guard isDead(p) || gone.contains(p) else { throw SimulationFailure("live position \(p) (\(records[Int(p)])) is missing") }
        }
        guard gone.isSubset(of: Set(0..<UInt64(records.count)).subtracting(present)) else {
            throw SimulationFailure("a removed position came back: \(gone.intersection(present).sorted())")
        }
        gone = Set(0..<UInt64(records.count)).subtracting(present)
        // Lag counts the events still there, from any position, gone or not.
        let from = UInt64(random(0..<(records.count + 1)))
        let lag = try log.lag(from: from)
        let behind = present.filter { $0 >= from }.count
        guard lag.events == UInt64(behind), (lag.oldestUnconsumedAgeMicroseconds == nil) == (behind == 0) else {
            throw SimulationFailure("lag from \(from): \(lag), expected \(behind) events")
        }
        // A removed position, read alone, says so.
        if let p = gone.first {
            do {
                _ = try log.event(at: p)
                throw SimulationFailure("event(at: \(p)) of a removed position succeeded")
            } catch let error as EventLogError {
                guard case .positionRemoved = error else { throw SimulationFailure("event(at: \(p)) threw \(error)") }
            }
        }
        // Every stream: its state, and a read of it.
        for name in Self.names {
            let model = streams[name]
            let info = try log.streamInfo(name)
            guard info?.currentVersion == model.flatMap({ $0.nextVersion == 0 ? nil : $0.nextVersion - 1 }),
                  (info?.truncateBefore ?? 0) == (model?.truncateBefore ?? 0), (info?.deletion ?? .none) == (model?.deletion ?? .none),
                  (info?.limits ?? StreamLimits()) == (model?.limits ?? StreamLimits())
            else { throw SimulationFailure("stream \(name): \(String(describing: info)), model \(String(describing: model))") }
            guard let model, model.deletion == .none else { continue }
            let versions = try log.events(inStream: name).map(\.version)
            // Readable: from the floor, less what the max age hides and what an earlier limit removed.
            let byVersion = Dictionary(
                records.indices.filter { !records[$0].isMarker && records[$0].stream == name }.map { (records[$0].version, $0) },
                uniquingKeysWith: { _, last in last })
            let expected = Array(model.readableFrom..<model.nextVersion).filter { version in
                guard let p = byVersion[version] else { return false }
                return !(model.maxAgeHour && records[p].isOld) && !gone.contains(UInt64(p))
            }
            guard versions == expected else { throw SimulationFailure("stream \(name) reads versions \(versions), expected \(expected)") }
        }
    }
}
