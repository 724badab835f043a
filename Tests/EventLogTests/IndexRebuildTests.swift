import Foundation
import Testing
@testable import EventLog

/// Indexes are derived data: missing, short, zeroed or stale index files are
/// rebuilt from the log, and lookups then equal a full scan.
@Suite struct IndexRebuildTests {
    enum Harm: CaseIterable { case delete, truncate, zero, stale }

    @Test(arguments: Harm.allCases)
    func damagedIndexIsRebuilt(harm: Harm) throws {
        let dir = TemporaryDirectory()
        var options = LogOptions(durability: .none)
        options.segmentBytes = 16 << 10
        options.indexInterval = 256
        do {
            let log = try Log.open(at: dir.path, options: options)
            try Fixtures.append(log, 0..<1000, batch: 4, size: 50)
            try log.close()
        }
        let indexes = dir.files().filter { $0.hasSuffix(".index") || $0.hasSuffix(".timeindex") }.map(dir.sub)
        #expect(indexes.count >= 8)
        for (i, path) in indexes.enumerated() where i % 2 == 0 || harm == .stale {
            switch harm {
            case .delete: Damage.remove(path)
            case .truncate: Damage.truncate(path, to: Damage.read(path).count / 2)
            case .zero: Damage.write(path, [UInt8](repeating: 0, count: Damage.read(path).count))
            case .stale:
                // Swap in another segment's index: a well-formed file that describes other data.
                let other = indexes[(i + 2) % indexes.count]
                Damage.write(path, Damage.read(other))
            }
        }
        #expect(try !Log.verify(at: dir.path).isSound)
        let log = try Log.open(at: dir.path, options: options)
        #expect(!log.recovery.rebuiltIndexes.isEmpty)
        let all = try log.events(from: 0)
        #expect(all.count == 1000)
        for e in all {
            let single = try log.event(at: e.position)
            #expect(single == e)
        }
        for t in stride(from: Int64(999_990), to: 1_001_010, by: 7) {
            let expected = all.first { $0.timestamp >= t }?.position ?? 1000
            #expect(try log.position(atOrAfter: t) == expected)
        }
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
    }
}
