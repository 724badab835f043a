import Foundation
import Testing
@testable import EventLog

/// `LogImporter` and `eventlog import` into a new encrypted log: every event
/// sealed as a writer seals it, forgotten events forgotten again, the log
/// reading as the exported one did, with the key and only with it.
@Suite struct EncryptedImportTests {
    /// An encrypted log (one key per stream) of several segments: events
    /// with metadata, a keyed tombstone, a soft deletion and a truncation
    /// (stream markers, never sealed), and a stream whose key was forgotten
    /// (`alice`: every event of it reads as forgotten).
    static func buildSource(at path: String) throws -> Log {
        let log = try Log.open(at: path, options: EncryptionTests.options(scope: .stream, segmentBytes: 16 * 1024))
        var random = SplitMix64(seed: 31)
        for i in 0..<240 {
            let streams = ["alice", "bob/orders", "bob/invoices", "carol"]
            _ = try log.append((0..<3).map { k in
                EncryptionTests.event(i * 3 + k, stream: streams[(i + k) % streams.count], random: &random)
            })
        }
        _ = try log.append([NewEvent(stream: "carol", type: "Set", data: [], key: "k-1", isTombstone: true)])
        _ = try log.deleteStream("bob/invoices")
        _ = try log.truncateStream("carol", before: 20)
        _ = try log.forgetStream("alice")
        return log
    }

    /// Imports `source` into `path` through `LogImporter`, batch by batch, with `options`.
    static func importing(_ source: Log, into path: String, options: LogOptions) throws {
        let importer = try LogImporter(at: path, logID: source.logID, startPosition: source.startPosition, options: options)
        var open = false
        var failure: (any Error)?
        try source.readBatches({ batch in
            if open { try importer.endBatch() }
            try importer.beginBatch(at: batch.basePosition, firstTimestamp: batch.firstTimestamp)
            open = true
        }, events: { view in
            do { try importer.appendRecord(try view.event(), isMarker: view.isMarker) } catch { failure = error }
        })
        if let failure { throw failure }
        if open { try importer.endBatch() }
        try importer.finish(endPosition: source.endPosition, streams: try source.streamSnapshots(), consumers: source.consumerSnapshot())
    }

    /// True when some file of the log at `path` holds `needle`.
    static func anyFile(of path: String, contains needle: [UInt8]) throws -> Bool {
        try FileManager.default.contentsOfDirectory(atPath: path).contains { name in
            Data(Damage.read(path + "/" + name)).range(of: Data(needle)) != nil
        }
    }

    @Test(arguments: [(DataKeyScope.stream, Compression.none), (.streamPrefix(separator: UInt8(ascii: "/")), .lz4), (.log, .lz4)])
    func everyEventIsSealedAndTheLogReadsAsTheExportedOne(scope: DataKeyScope, compression: Compression) throws {
        let dir = TemporaryDirectory("encrypted-import")
        let source = try Self.buildSource(at: dir.sub("source"))
        defer { try? source.close() }
        let forgotten = try source.events(inStream: "alice")
        #expect(forgotten.count > 100 && forgotten.allSatisfy { $0.isForgotten && $0.data.isEmpty })

        let options = EncryptionTests.options(scope: scope, compression: compression, segmentBytes: 16 * 1024)
        try Self.importing(source, into: dir.sub("copy"), options: options)
        let copy = try Log.open(at: dir.sub("copy"), options: options)
        defer { try? copy.close() }
        #expect(copy.endPosition == source.endPosition)
        #expect(try copy.events(from: 0) == source.events(from: 0))
        #expect(try copy.streamInfos() == source.streamInfos())
        for info in try source.streamInfos() {
            #expect(try copy.events(inStream: info.name) == source.events(inStream: info.name), "\(info.name)")
        }
        for position in stride(from: source.startPosition, to: source.endPosition, by: 7) {
            #expect(try copy.event(at: position) == source.event(at: position))
        }
        #expect(try copy.events(inStream: "alice").allSatisfy(\.isForgotten), "forgotten in the copy too")

        // Every frame holding an event is sealed; none of the events' bytes is in the clear in any file.
        var holdsEvents: [UInt64: Bool] = [:]
        var base: UInt64 = 0
        try copy.readBatches({ base = $0.basePosition }, events: { view in
            holdsEvents[base, default: false] = holdsEvents[base, default: false] || !view.isMarker
        })
        #expect(holdsEvents.values.contains(false), "a batch of stream markers only, left unsealed")
        var sealedBatches = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.sub("copy")) where name.hasSuffix(".segment") {
            let segment = dir.sub("copy/" + name)
            let bytes = Damage.read(segment)
            for batch in Fixtures.batches(in: segment) {
                let header = bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + batch.offset) }
                #expect(header.isSealed == holdsEvents[batch.base], "\(name) at \(batch.offset)")
                if header.isSealed { sealedBatches += 1 }
                if header.isSealed { #expect(header.codecValue != LZ4Units.dictionaryCodec, "a sealed batch's units are compressed alone") }
            }
        }
        #expect(sealedBatches > 100)
        #expect(try !Self.anyFile(of: dir.sub("copy"), contains: Array("SECRET-1".utf8)))
        #expect(try Log.verify(at: dir.sub("copy"), deep: true, encryption: options.encryption).isSound)
        let inspection = try Log.inspect(at: dir.sub("copy"))
        #expect(inspection.encryption?.forgottenKeys == 1, "the one key the forgotten events are sealed under")

        // Only the key opens it.
        #expect(throws: EventLogError.self) { try Log.open(at: dir.sub("copy"), options: LogOptions(readOnly: true)) }
        #expect(throws: EventLogError.wrongMasterKey(file: dir.sub("copy/eventlog.keys"))) {
            var other = options
            other.readOnly = true
            other.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: EncryptionTests.otherKey), scope: scope)
            _ = try Log.open(at: dir.sub("copy"), options: other)
        }
        // Appends go on, a forgotten stream's under a new key.
        let next = try copy.append([NewEvent(stream: "alice", type: "Back", data: Array("hello again".utf8))])
        let back = try copy.event(at: next.lowerBound)
        #expect(!back.isForgotten && back.data == Array("hello again".utf8) && back.version == UInt64(forgotten.count))

        // The check of the bytes in the clear can fail: a plain import of the same log holds them.
        try Self.importing(source, into: dir.sub("plain"), options: LogOptions(segmentBytes: 16 * 1024, durability: .none))
        #expect(try Self.anyFile(of: dir.sub("plain"), contains: Array("SECRET-1".utf8)))
        let plain = try Log.open(at: dir.sub("plain"), options: LogOptions(readOnly: true))
        defer { try? plain.close() }
        #expect(try plain.events(inStream: "alice").allSatisfy { !$0.isForgotten && $0.data.isEmpty }, "a plain log cannot mark them forgotten")
    }

    @Test func aForgottenEventWithDataIsRefused() throws {
        let dir = TemporaryDirectory("encrypted-import-refused")
        let importer = try LogImporter(at: dir.path, logID: UUID(), startPosition: 0, options: EncryptionTests.options(scope: .stream))
        try importer.beginBatch(at: 0, firstTimestamp: 1)
        var event = Event(position: 0, stream: "s", version: 0, type: "T", data: [1], metadata: EventMetadata(), timestamp: 1)
        event.isForgotten = true
        #expect(throws: EventLogError.invalidArgument("a forgotten event has no data and no metadata, and is not a stream marker")) {
            try importer.appendRecord(event)
        }
        event.data = []
        try importer.appendRecord(event)
        try importer.endBatch()
        try importer.finish(endPosition: 1, streams: nil)
        let log = try Log.open(at: dir.path, options: EncryptionTests.options(scope: .stream))
        defer { try? log.close() }
        #expect(try log.event(at: 0).isForgotten)
    }

    /// `eventlog export` of an encrypted log, `eventlog import` of it with
    /// the master key in the environment: a new encrypted log whose export
    /// is the first one, byte for byte (forgotten events included).
    @Test(arguments: [[], ["--compression", "lz4"]])
    func theCommandLineImportsAnEncryptedExportExactly(extra: [String]) throws {
        let dir = TemporaryDirectory("encrypted-import-cli")
        try Self.buildSource(at: dir.sub("source")).close()
        let keyFile = dir.sub("master.key")
        Damage.write(keyFile, EncryptionTests.key)
        chmod(keyFile, 0o600)
        let environment = ["EVENTLOG_MASTER_KEY_FILE": keyFile, "EVENTLOG_DATA_KEY_SCOPE": "stream"]
        let first = try CLIProcess.run(["export", dir.sub("source")], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains(#""forgotten":true"#))

        let imported = try CLIProcess.run(["import", dir.sub("copy"), "--json"] + extra, stdin: first.stdout, environment: environment)
        #expect(imported.status == 0, "\(imported.stderr)")
        let second = try CLIProcess.run(["export", dir.sub("copy")], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout == first.stdout, "export → import → export is byte-identical")
        #expect(try !Self.anyFile(of: dir.sub("copy"), contains: Array("SECRET-1".utf8)))
        let inspect = try CLIProcess.run(["inspect", dir.sub("copy"), "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains(#""scope":"stream""#), "\(inspect.stdout)")
        let noKey = try CLIProcess.run(["dump", dir.sub("copy")])
        #expect(noKey.status == 2 && noKey.stderr.contains("encrypted"), "\(noKey.stderr)")
        let deep = try CLIProcess.run(["verify", dir.sub("copy"), "--deep"], environment: environment)
        #expect(deep.status == 0, "\(deep.stdout) \(deep.stderr)")
    }
}
