import Foundation
import Synchronization
import Testing

@testable import EventLog

/// Issue 16, "EIO": for every kind of file the writer syncs, a failed
/// `fdatasync` or `fsync` of that file (EIO, through the storage seam)
/// stops the writer: the operation that needed the sync is not
/// acknowledged, and every later append and cursor commit fails with
/// `writerStopped` until the log is reopened, which then finds everything
/// acknowledged before and works again (Format.md §11, "Durability": a
/// failed sync is never retried as if nothing happened; the kernel reports
/// a write error once, to whichever sync comes first).
@Suite struct FailedSyncTests {
    /// Fails every `fdatasync` and `fsync` of files whose name matches, once armed; counts them.
    final class Plan: Sendable {
        let matches: @Sendable (String) -> Bool
        private let state = Mutex<(armed: Bool, failed: Int)>((false, 0))

        init(_ matches: @escaping @Sendable (String) -> Bool) { self.matches = matches }

        var faults: StorageFaults {
            StorageFaults { [self] operation, path in
                guard operation == .datasync || operation == .sync else { return nil }
                let name = String(path.split(separator: "/").last ?? "")
                return self.state.withLock { state -> StorageFault? in
                    guard state.armed, self.matches(name) else { return nil }
                    state.failed += 1
                    return .fail(errno: EIO)
                }
            }
        }

        func arm() { state.withLock { $0.armed = true } }
        var failed: Int { state.withLock { $0.failed } }
    }

    /// A file kind: which names it covers, and an operation that syncs one.
    struct Kind: CustomTestStringConvertible, Sendable {
        var name: String
        var matches: @Sendable (String) -> Bool
        /// Options for the log (small segments where a roll is needed).
        var options: @Sendable (inout LogOptions) -> Void = { _ in }
        /// Runs what syncs a file of this kind (several times if need be);
        /// what it returns without throwing is acknowledged.
        var trigger: @Sendable (Log, inout Ledger) throws -> Void
        var testDescription: String { name }
    }

    /// What was acknowledged: events by position, cursors by name.
    struct Ledger {
        var events: [UInt64: [UInt8]] = [:]
        var cursors: [String: UInt64] = [:]
        var next = 0

        mutating func append(_ log: Log, count: Int = 5, size: Int = 200) throws {
            let batch = (0..<count).map { k in
                NewEvent(stream: "s\((next + k) % 11)", type: "T", data: Array("event \(next + k) ".utf8) + [UInt8](repeating: UInt8((next + k) & 0xFF), count: size))
            }
            let positions = try log.append(batch)
            for (p, e) in zip(positions, batch) { events[p] = e.data }
            next += count
        }

        mutating func commit(_ log: Log, _ name: String) throws {
            let position = log.endPosition
            try log.commitCursor(name, position: position)
            cursors[name] = position
        }
    }

    static func suffixed(_ suffixes: String...) -> @Sendable (String) -> Bool {
        { name in suffixes.contains { name.hasSuffix($0) || name.hasSuffix($0 + ".tmp") } }
    }

    /// Appends until a segment rolls (the sealed one's index files are written in the background).
    static func appendUntilRolled(_ log: Log, _ ledger: inout Ledger) throws {
        let segments = log.batches.snapshot().count
        for _ in 0..<200 where log.batches.snapshot().count == segments { try ledger.append(log) }
        log.batches.segments.waitForIndexWrites()
    }

    static let kinds: [Kind] = [
        Kind(name: "segment", matches: suffixed(".segment")) { log, ledger in try ledger.append(log) },
        Kind(name: "offset index", matches: suffixed(".index"), options: { $0.segmentBytes = 8192 }) { log, ledger in
            try appendUntilRolled(log, &ledger)
        },
        Kind(name: "time index", matches: suffixed(".timeindex"), options: { $0.segmentBytes = 8192 }) { log, ledger in
            try appendUntilRolled(log, &ledger)
        },
        Kind(name: "stream index", matches: suffixed(".streamindex"), options: { $0.segmentBytes = 8192 }) { log, ledger in
            try appendUntilRolled(log, &ledger)
        },
        Kind(name: "stream table", matches: suffixed(".streamtable")) { log, ledger in
            try ledger.append(log)
            try log.batches.checkpointNow()
        },
        Kind(name: "cursor journal", matches: suffixed(FileNames.cursorJournal)) { log, ledger in
            try ledger.commit(log, "c\(ledger.next)")
        },
        Kind(name: "settings", matches: suffixed(FileNames.settings)) { log, _ in
            try log.updateSettings(LogSettings(retainBytes: 1 << 40))
        },
    ]

    @Test(arguments: FailedSyncTests.kinds) func aFailedSyncStopsTheWriter(kind: Kind) throws {
        let dir = TemporaryDirectory()
        let plan = Plan(kind.matches)
        var options = LogOptions(durability: .always)
        options.maintenanceInterval = nil
        kind.options(&options)
        var faulty = options
        faulty.storageFaults = plan.faults
        var ledger = Ledger()
        let log = try Log.open(at: dir.path, options: faulty)
        try ledger.append(log)
        try ledger.commit(log, "before")

        plan.arm()
        var tries = 0
        while plan.failed == 0 && tries < 20 {
            tries += 1
            // The operation that met the failed sync must not be acknowledged.
            let failedBefore = plan.failed
            var trial = ledger
            do {
                try kind.trigger(log, &trial)
                log.batches.segments.waitForIndexWrites()
                if plan.failed == failedBefore { ledger = trial }  // acknowledged before any sync failed
                else if trial.events.count > ledger.events.count || trial.cursors.count > ledger.cursors.count {
                    // What the operation itself acknowledged after its own sync failed.
                    let synchronous = kind.name == "segment" || kind.name == "cursor journal"
                    #expect(!synchronous, "\(kind.name): an operation was acknowledged although its sync failed")
                    ledger = trial
                }
            } catch {
                // Any typed error will do; what matters is what comes next.
                #expect(error is EventLogError, "\(kind.name): \(error)")
            }
        }
        #expect(plan.failed > 0, "\(kind.name): no sync of this kind of file was reached")

        // Stopped: every later append and commit fails until the log is reopened.
        for attempt in 0..<3 {
            var trial = ledger
            do {
                try trial.append(log)
                Issue.record("\(kind.name): append \(attempt) after a failed sync was acknowledged")
            } catch {
                guard case .writerStopped = error as? EventLogError else {
                    Issue.record("\(kind.name): append after a failed sync: \(error)")
                    continue
                }
            }
            do {
                try trial.commit(log, "after")
                Issue.record("\(kind.name): cursor commit \(attempt) after a failed sync was acknowledged")
            } catch {
                guard case .writerStopped = error as? EventLogError else {
                    Issue.record("\(kind.name): commit after a failed sync: \(error)")
                    continue
                }
            }
        }
        #expect(throws: EventLogError.self, "\(kind.name): close after a failed sync succeeded") { try log.close() }

        // Reopened: everything acknowledged is there, and the writer works again.
        let reopened = try Log.open(at: dir.path, options: options)
        for (position, data) in ledger.events {
            #expect(try reopened.event(at: position).data == data, "\(kind.name): event \(position)")
        }
        for (name, position) in ledger.cursors {
            #expect(try reopened.cursorPosition(name) == position, "\(kind.name): cursor \(name)")
        }
        try ledger.append(reopened)
        try ledger.commit(reopened, "again")
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// The compaction manifest (`eventlog.swap`): a merge whose manifest
    /// cannot be synced is not committed, and the writer stops.
    @Test func aFailedSyncOfTheCompactionManifestStopsTheWriter() throws {
        let dir = TemporaryDirectory()
        try SegmentMergeTests.scavenged(dir)
        let plan = Plan(Self.suffixed(FileNames.compactionManifest))
        var options = SegmentMergeTests.options()
        options.storageFaults = plan.faults
        let log = try Log.open(at: dir.path, options: options)
        let streams = try ScavengingTests.streamContents(log)
        plan.arm()
        #expect(throws: EventLogError.self) { _ = try log.compact() }
        #expect(plan.failed > 0, "the merge synced no manifest")
        #expect(!FileManager.default.fileExists(atPath: dir.sub(FileNames.compactionManifest)), "an unsynced manifest was committed")
        do {
            try log.append([RetentionTests.event(9999)])
            Issue.record("an append after the manifest's failed sync was acknowledged")
        } catch {
            guard case .writerStopped? = error as? EventLogError else { Issue.record("\(error)"); return }
        }
        #expect(throws: EventLogError.self) { try log.commitCursor("after", position: 0) }
        _ = try? log.close()
        let reopened = try Log.open(at: dir.path, options: SegmentMergeTests.options())
        #expect(try ScavengingTests.streamContents(reopened) == streams)
        #expect(try reopened.compact().segmentsMerged > 0)
        try reopened.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// `eventlog.meta` is written (and synced) when a log is created: a
    /// failed sync fails the open, so no writer exists to acknowledge
    /// anything; the next open creates the log.
    @Test func aFailedSyncOfTheMetadataFailsTheCreation() throws {
        let dir = TemporaryDirectory()
        let plan = Plan(Self.suffixed(FileNames.metadata))
        plan.arm()
        var options = LogOptions(durability: .always)
        options.storageFaults = plan.faults
        #expect(throws: EventLogError.self) { _ = try Log.open(at: dir.sub("log"), options: options) }
        #expect(plan.failed > 0)
        let log = try Log.open(at: dir.sub("log"), options: LogOptions(durability: .always))
        var ledger = Ledger()
        try ledger.append(log)
        try log.close()
        #expect(try Log.verify(at: dir.sub("log")).isSound)
    }
}
