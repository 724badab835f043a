import Foundation
import Testing
@testable import EventLog

/// The writer's lookups skip the oldest stream table run's bloom filter
/// while most of them find their stream there (`OldestRunFilterPolicy`):
/// the answers must be those of lookups that ask every filter.
@Suite struct OldestRunFilterPolicyTests {
    typealias Run = StreamTableRunTests

    @Test func thePolicySkipsTheFilterOnlyWhileMostLookupsFindTheirStream() {
        var policy = OldestRunFilterPolicy()
        #expect(policy.checksBloom)
        for _ in 0..<(OldestRunFilterPolicy.warmUp - 1) { policy.record(found: true) }
        #expect(policy.checksBloom, "still warming up")
        policy.record(found: true)
        #expect(!policy.checksBloom)
        // Lookups of streams the run does not hold bring the filter back.
        while !policy.checksBloom { policy.record(found: false) }
        #expect(policy.found * 2 <= policy.reached)
        // The counts stay within the window whatever the number of lookups.
        for i in 0..<100_000 { policy.record(found: i % 3 != 0) }
        #expect(policy.reached < OldestRunFilterPolicy.window)
        #expect(!policy.checksBloom, "two thirds found")
    }

    @Test func lookupsThatSkipTheOldestFilterFindWhatLookupsAskingEveryFilterFind() throws {
        let dir = TemporaryDirectory("oldest-run-filter", preferMemory: true)
        let all = Run.randomRows(6_000, seed: 11)
        // The oldest run holds the first 5,000 streams, the newer one the
        // rest and a newer state of 100 of the oldest run's streams.
        let oldRows = Run.sorted(Array(all.prefix(5_000)))
        var newRows = Array(all.suffix(1_000))
        for (hash, row) in oldRows.prefix(100) {
            var newer = row
            newer.nextVersion &+= 1
            newRows.append((hash, newer))
        }
        let old = try Run.write(oldRows, in: dir, from: 0, to: 100)
        let new = try Run.write(Run.sorted(newRows), in: dir, from: 100, to: 200)
        let levels = StreamLevels(runs: [old, new], frozen: [])

        var random = SplitMix64(seed: 12)
        var absent: [String] = []
        let present = Set(all.map(\.row.name))
        while absent.count < 2_000 {
            let name = Run.randomName(&random)
            if !present.contains(name) { absent.append(name) }
        }
        var names = all.map(\.row.name) + absent
        names.shuffle(using: &random)
        var policy = OldestRunFilterPolicy()
        var skipped = 0
        for name in names + names {
            if !policy.checksBloom { skipped += 1 }
            let hash = StreamHash.hash(name)
            let (adapted, plain) = try Array(name.utf8).withUnsafeBytes { bytes in
                (try levels.lookup(bytes, hash: hash, oldestRunFilter: &policy, adapting: true), try levels.lookup(bytes, hash: hash))
            }
            if adapted?.row != plain?.row {
                Issue.record("\(name): \(String(describing: adapted?.row)) with the policy, \(String(describing: plain?.row)) without")
                break
            }
        }
        // 5,000 of the 7,000 names that reach the oldest run are there: the filter was skipped.
        #expect(skipped > names.count)
    }
}
