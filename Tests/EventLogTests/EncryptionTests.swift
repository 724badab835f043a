import Foundation
import Synchronization
import Testing
@testable import EventLog

/// Encryption at rest and crypto-shredding (issue 17; Format.md §5.1, §16):
/// round trips through every read path, across segments, with and without
/// LZ4; wrong, missing and rotated master keys; damage told apart from a
/// wrong key; forgetting across a crash and a power loss; compaction
/// dropping forgotten events.
@Suite struct EncryptionTests {
    static let key = [UInt8]((0..<32).map { UInt8($0 &* 7 &+ 1) })
    static let otherKey = [UInt8]((0..<32).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 3) })

    static func options(
        key: [UInt8] = key, scope: DataKeyScope = .log, compression: Compression = .none, segmentBytes: Int = 64 * 1024,
        durability: Durability = .none, faults: StorageFaults? = nil
    ) -> LogOptions {
        var options = LogOptions(segmentBytes: segmentBytes, durability: durability, compression: compression)
        options.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: key), scope: scope)
        options.maintenanceInterval = nil
        options.storageFaults = faults
        return options
    }

    /// Event `i`: a marker text (which must never appear on disk in the
    /// clear), some seeded random bytes, and metadata.
    static func event(_ i: Int, stream: String, random: inout SplitMix64) -> NewEvent {
        var data = Array("SECRET-\(i)-".utf8)
        for _ in 0..<(20 + Int(random.next() % 200)) { data.append(UInt8(truncatingIfNeeded: random.next())) }
        var metadata = EventMetadata()
        metadata.correlationID = "corr-\(i)"
        metadata.eventID = UUID()
        return NewEvent(stream: stream, type: "Type\(i % 3)", data: data, metadata: metadata)
    }

    /// True when any file of the log holds `text` in the clear.
    static func anyFileHolds(_ text: String, in dir: TemporaryDirectory) -> Bool {
        let needle = Data(text.utf8)
        return dir.files().contains { name in
            guard let bytes = FileManager.default.contents(atPath: dir.sub(name)) else { return false }
            return bytes.range(of: needle) != nil
        }
    }

    @Test(arguments: [(Compression.none, DataKeyScope.log), (.lz4, .log), (.none, .stream), (.lz4, .streamPrefix(separator: UInt8(ascii: "/")))])
    func everyReadPathReturnsWhatWasAppended(compression: Compression, scope: DataKeyScope) throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 17)
        var appended: [NewEvent] = []
        do {
            let log = try Log.open(at: dir.path, options: Self.options(scope: scope, compression: compression))
            #expect(log.isEncrypted && log.dataKeyScope == scope)
            for b in 0..<120 {
                let batch = (0..<(1 + b % 9)).map { _ in
                    Self.event(appended.count, stream: "customer-\(random.next() % 5)/orders-\(random.next() % 3)", random: &random)
                }
                _ = try log.append(batch)
                appended += batch
                if b % 40 == 39 { _ = try log.append(batch.map { NewEvent(stream: $0.stream + "-again", type: "T", data: $0.data) }); appended += batch.map { NewEvent(stream: $0.stream + "-again", type: "T", data: $0.data) } }
            }
            try log.close()
        }
        #expect(Fixtures.segments(dir).count >= 2, "the events span segments")
        #expect(!Self.anyFileHolds("SECRET-1", in: dir) && !Self.anyFileHolds("corr-1", in: dir), "data and metadata are sealed")
        #expect(Self.anyFileHolds("customer-", in: dir), "stream names stay readable")

        let log = try Log.open(at: dir.path, options: Self.options(scope: scope))
        defer { try? log.close() }
        // A whole-log read.
        let events = try log.events(from: 0)
        try #require(events.count == appended.count)
        for (e, a) in zip(events, appended) {
            #expect(e.stream == a.stream && e.type == a.type && e.data == a.data && e.metadata == a.metadata && !e.isForgotten)
        }
        // Point reads, seeded.
        for _ in 0..<200 {
            let p = Int(random.next() % UInt64(appended.count))
            #expect(try log.event(at: UInt64(p)).data == appended[p].data)
        }
        // Stream reads, forward and backward.
        for stream in Set(appended.map(\.stream)) {
            let expected = appended.filter { $0.stream == stream }.map(\.data)
            #expect(try log.events(inStream: stream).map(\.data) == expected)
            #expect(try log.events(inStream: stream, direction: .backward).map(\.data) == expected.reversed())
        }
        // Batches with their events.
        var lent = 0
        try log.readBatches(from: 0, { _ in }, events: { view in
            #expect(Array(view.data) == appended[Int(view.position)].data)
            lent += 1
        })
        #expect(lent == appended.count)
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// Batches of 100 events seal each key's payloads in groups of about
    /// 4 KiB (`BatchSealer.groupTargetBytes`), and a point read opens only
    /// the group of its record: every position reads back, a forgotten
    /// stream's events read as forgotten, and a forged tag of one group
    /// breaks only that group's reads (`sealBroken`), while the same change
    /// without the frame checksum recomputed is damage at the batch.
    @Test(arguments: [DataKeyScope.log, .stream])
    func aPointReadOpensOnlyItsSealGroup(scope: DataKeyScope) throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 29)
        var appended: [NewEvent] = []
        do {
            let log = try Log.open(at: dir.path, options: Self.options(scope: scope, segmentBytes: 1 << 20))
            for _ in 0..<6 {
                let batch = (0..<100).map { k in Self.event(appended.count + k, stream: "c-\((appended.count + k) % 4)", random: &random) }
                _ = try log.append(batch)
                appended += batch
            }
            try log.close()
        }
        let segment = dir.sub(FileNames.segment(0))
        let batches = Fixtures.batches(in: segment)
        try #require(batches.count == 6)
        let first = batches[0]
        let groups = Damage.read(segment).withUnsafeBytes { raw in
            SealTable(area: UnsafeRawBufferPointer(rebasing: raw[(first.offset + BatchHeader.size)..<(first.offset + first.length)]))?.count ?? 0
        }
        // ~13 KB of payloads: at least three groups of one key, or one or more per stream.
        #expect(groups >= (scope == .log ? 3 : 4), "\(groups) seal groups")

        var readOnly = Self.options(scope: scope)
        readOnly.readOnly = true
        do {
            let reader = try Log.open(at: dir.path, options: readOnly)
            defer { try? reader.close() }
            var order = Array(0..<appended.count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            for p in order {
                let event = try reader.event(at: UInt64(p))
                #expect(event.data == appended[p].data && event.metadata == appended[p].metadata && event.stream == appended[p].stream, "position \(p)")
            }
            for s in 0..<4 {
                #expect(try reader.events(inStream: "c-\(s)").map(\.data) == appended.filter { $0.stream == "c-\(s)" }.map(\.data))
            }
        }
        if scope == .stream {
            let writer = try Log.open(at: dir.path, options: Self.options(scope: scope, segmentBytes: 1 << 20))
            try writer.forgetStream("c-1")
            try writer.close()
            let reader = try Log.open(at: dir.path, options: readOnly)
            defer { try? reader.close() }
            for p in 0..<appended.count {
                let event = try reader.event(at: UInt64(p))
                if p % 4 == 1 {
                    #expect(event.isForgotten && event.data.isEmpty, "position \(p)")
                } else {
                    #expect(!event.isForgotten && event.data == appended[p].data, "position \(p)")
                }
            }
            return
        }
        // Forge the last group's tag of the first batch, in place (the reader's mapping sees it).
        let reader = try Log.open(at: dir.path, options: readOnly)
        defer { try? reader.close() }
        let tagAt = first.offset + first.length - SealTable.countBytes - SealTable.groupBytes + 16
        let original = Damage.read(segment)
        var forged = original
        forged[tagAt] ^= 0x01
        forged.withUnsafeMutableBytes { raw in
            let crc = BatchHeader.frameChecksum(raw.baseAddress! + first.offset, count: first.length)
            raw.storeBytes(of: crc.littleEndian, toByteOffset: first.offset + 4, as: UInt32.self)
        }
        Damage.overwrite(segment, at: first.offset, with: Array(forged[first.offset..<(first.offset + first.length)]))
        #expect(try reader.event(at: 0).data == appended[0].data)  // group 0
        #expect {
            _ = try reader.event(at: 99)  // the last record: the last group
        } throws: { error in
            guard case EventLogError.sealBroken(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(first.offset)
        }
        // The tag changed without the frame checksum: damage at the batch.
        Damage.overwrite(segment, at: first.offset, with: Array(original[first.offset..<(first.offset + first.length)]))
        Damage.overwrite(segment, at: tagAt, with: [forged[tagAt]])
        #expect {
            _ = try reader.event(at: 99)
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _)? = error as? EventLogError else { return false }
            return file == segment && offset == Int64(first.offset)
        }
        #expect(try reader.event(at: 1).data == appended[1].data)
    }

    @Test func aWrongOrMissingMasterKeyIsRefusedAndAPlainLogTakesNone() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 3)
        let log = try Log.open(at: dir.path, options: Self.options())
        _ = try log.append(Self.event(0, stream: "a", random: &random))
        try log.close()

        let keys = dir.sub(FileNames.keyStore)
        #expect(throws: EventLogError.wrongMasterKey(file: keys)) { try Log.open(at: dir.path, options: Self.options(key: Self.otherKey)) }
        var readOnly = Self.options(key: Self.otherKey)
        readOnly.readOnly = true
        #expect(throws: EventLogError.wrongMasterKey(file: keys)) { try Log.open(at: dir.path, options: readOnly) }
        var plain = LogOptions(durability: .none)
        plain.readOnly = true
        do {
            _ = try Log.open(at: dir.path, options: plain)
            Issue.record("an encrypted log opened without its key")
        } catch let error as EventLogError {
            guard case .encryptionMismatch = error else { Issue.record("\(error)"); return }
        }
        // A master key of the wrong size is refused as such.
        #expect(throws: EventLogError.self) { try Log.open(at: dir.path, options: Self.options(key: [1, 2, 3])) }

        let plainDir = TemporaryDirectory("encryption")
        try Log.open(at: plainDir.path, options: LogOptions(durability: .none)).close()
        try Fixtures.append(Log.open(at: plainDir.path, options: LogOptions(durability: .none)), 0..<3, batch: 3)
        do {
            _ = try Log.open(at: plainDir.path, options: Self.options())
            Issue.record("a plain log opened as an encrypted one")
        } catch let error as EventLogError {
            guard case .encryptionMismatch = error else { Issue.record("\(error)"); return }
        }
    }

    /// A flipped ciphertext byte is damage (the frame checksum fails); the
    /// same flip with the checksum made to match is a broken seal, never
    /// taken for damage or for a wrong key.
    @Test func damagedCiphertextIsDamageAndAForgedOneABrokenSeal() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 5)
        let log = try Log.open(at: dir.path, options: Self.options())
        _ = try log.append((0..<10).map { Self.event($0, stream: "s", random: &random) })
        try log.close()
        let segment = dir.sub(FileNames.segment(0))
        let batch = try #require(Fixtures.batches(in: segment).first)
        // A byte in the middle of the records area: inside a sealed payload (the events are mostly data).
        let target = batch.offset + BatchHeader.size + (batch.length - BatchHeader.size) / 2
        Damage.flipBit(segment, at: target)
        var readOnly = Self.options()
        readOnly.readOnly = true
        // The open (which checks the last segment's batches) or the read finds it: damage, at the batch.
        #expect {
            let reader = try Log.open(at: dir.path, options: readOnly)
            defer { try? reader.close() }
            _ = try reader.events(from: 0)
        } throws: { error in
            guard case EventLogError.corruption(let file, let offset, _) = error else { return false }
            return file == segment && offset == Int64(batch.offset)
        }
        // Forge: the frame checksum recomputed over the changed bytes.
        var bytes = Damage.read(segment)
        bytes.withUnsafeMutableBytes { raw in
            let crc = BatchHeader.frameChecksum(raw.baseAddress! + batch.offset, count: batch.length)
            raw.storeBytes(of: crc.littleEndian, toByteOffset: batch.offset + 4, as: UInt32.self)
        }
        Damage.write(segment, bytes)
        let reader = try Log.open(at: dir.path, options: readOnly)
        defer { try? reader.close() }
        #expect {
            _ = try reader.events(from: 0)
        } throws: { error in
            guard case EventLogError.sealBroken(let file, let offset, _) = error else { return false }
            return file == segment && offset == Int64(batch.offset)
        }
    }

    @Test func aForgottenStreamReadsAsForgottenEverywhereAndStaysSo() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 11)
        var appended: [NewEvent] = []
        let log = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        for i in 0..<60 {
            // Alice and Bob share batches: one batch, two seal groups.
            let batch = [Self.event(2 * i, stream: "alice", random: &random), Self.event(2 * i + 1, stream: "bob", random: &random)]
            _ = try log.append(batch)
            appended += batch
        }
        // Read first, so the cache of opened batches holds Alice's events in the clear.
        #expect(try log.event(at: 0).data == appended[0].data)
        #expect(try log.events(inStream: "alice").count == 60)
        #expect(try log.forgetStream("alice") == 1)
        #expect(try log.forgetStream("nobody") == 0)

        func check(_ log: Log, context: String) throws {
            for e in try log.events(from: 0) {
                if e.stream == "alice" {
                    #expect(e.isForgotten && e.data.isEmpty && e.metadata == EventMetadata() && e.type == appended[Int(e.position)].type, "\(context)")
                } else {
                    #expect(!e.isForgotten && e.data == appended[Int(e.position)].data, "\(context)")
                }
            }
            #expect(try log.events(inStream: "alice").allSatisfy(\.isForgotten), "\(context)")
            #expect(try log.events(inStream: "alice").count == 60, "\(context): the versions stay")
            #expect(try log.event(at: 0).isForgotten && !log.event(at: 1).isForgotten, "\(context)")
            let subscription = try log.subscribe(from: .start)
            var seen = 0
            while seen < 120 {
                let polled = try subscription.poll(maxCount: 120, timeout: .seconds(5)) { view in
                    #expect(view.isForgotten == (view.stream == "alice"), "\(context)")
                    seen += 1
                }
                if polled == 0 { break }
            }
            subscription.cancel()
            #expect(seen == 120)
        }
        try check(log, context: "after forgetting")
        // New events of the stream get a new key.
        _ = try log.append(Self.event(1000, stream: "alice", random: &random))
        #expect(try log.events(inStream: "alice").last?.data.starts(with: Array("SECRET-1000-".utf8)) == true)
        try log.close()
        let reopened = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        defer { try? reopened.close() }
        #expect(try reopened.events(inStream: "alice").filter { !$0.isForgotten }.count == 1)
        #expect(try reopened.events(inStream: "alice").filter(\.isForgotten).count == 60)
        #expect(try Log.verify(at: dir.path).isSound)
        // Alice's key (the first entry, key 1) is shredded: zeros where it was wrapped.
        let store = Damage.read(dir.sub(FileNames.keyStore))
        let wrapped = KeyStoreFile.headerSize + KeyStoreFile.entryHeadBytes + "alice".utf8.count
        #expect(store[4 + KeyStoreFile.headerSize] == 1, "the first entry is key 1")
        #expect(store[wrapped..<(wrapped + KeyStoreFile.wrappedKeyBytes)].allSatisfy { $0 == 0 })
    }

    @Test func forgettingSurvivesAPowerLossAndACrash() throws {
        for seed in UInt64(0)..<6 {
            let dir = TemporaryDirectory("encryption-powerloss")
            let sim = try PowerLossSimulator(directory: dir.path, seed: seed)
            var random = SplitMix64(seed: seed)
            do {
                var log: Log? = try Log.open(at: dir.path, options: Self.options(scope: .stream, durability: .always, faults: sim.faults))
                for i in 0..<30 { _ = try log!.append(Self.event(i, stream: i % 2 == 0 ? "alice" : "bob", random: &random)) }
                #expect(try log!.forgetStream("alice") == 1)
                _ = try log!.append(Self.event(30, stream: "carol", random: &random))
                log = nil  // no close: as after a crash
                _ = log
            }
            _ = try sim.powerLoss()
            let log = try Log.open(at: dir.path, options: Self.options(scope: .stream, durability: .always, faults: sim.faults))
            let events = try log.events(from: 0)
            #expect(events.count == 31, "seed \(seed): every acknowledged event survives")
            #expect(events.allSatisfy { $0.isForgotten == ($0.stream == "alice") }, "seed \(seed)")
            #expect(events.last?.data.starts(with: Array("SECRET-30-".utf8)) == true, "seed \(seed): a key created before the power loss survives it")
            try log.close()
        }
    }

    /// A forget whose shred (the zeroing of the wrapped key) was torn by a
    /// crash is forgotten either way; a damaged key entry with nothing to
    /// vouch for it is corruption naming the file and offset, every time.
    @Test func aTornShredIsForgottenAndADamagedKeyIsCorruption() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 13)
        let log = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        for i in 0..<6 { _ = try log.append(Self.event(i, stream: ["a", "b", "c"][i % 3], random: &random)) }
        #expect(try log.forgetStream("a") == 1)
        try log.close()
        let keys = dir.sub(FileNames.keyStore)
        let entryLength = KeyStoreFile.Entry.length(kind: KeyStoreFile.kindDataKey, nameLength: 1)
        // Key entries a, b, c after the header; a's is shredded. Damage a's (as a torn shred would leave it).
        let aEntry = KeyStoreFile.headerSize
        Damage.flipBit(keys, at: aEntry + entryLength - 6)
        let reopened = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        #expect(try reopened.events(inStream: "a").allSatisfy(\.isForgotten))
        #expect(try reopened.events(inStream: "b").allSatisfy { !$0.isForgotten })
        try reopened.close()
        // Damage b's: nothing forgets it, entries follow: corruption, the same on a retry.
        let bEntry = aEntry + entryLength
        Damage.flipBit(keys, at: bEntry + entryLength - 6)
        for _ in 0..<2 {
            #expect(throws: EventLogError.corruption(
                file: keys, offset: Int64(bEntry), reason: "key store entry of data key 2 is damaged")) {
                try Log.open(at: dir.path, options: Self.options(scope: .stream))
            }
        }
    }

    /// A torn append (a key being added when the power went) is cut by the
    /// next writer; the events sealed before are all there.
    @Test func aTornKeyStoreTailIsCut() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 19)
        let log = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        for i in 0..<4 { _ = try log.append(Self.event(i, stream: "s\(i)", random: &random)) }
        try log.close()
        let keys = dir.sub(FileNames.keyStore)
        let length = Damage.read(keys).count
        // Half of a new entry: kind 1, name length 2, key id 9, then nothing.
        Damage.write(keys, Damage.read(keys) + [1, 2, 0, 0, 9, 0, 0, 0, UInt8(ascii: "x")])
        let reopened = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        #expect(Damage.read(keys).count == length, "the torn tail is cut")
        #expect(try reopened.events(from: 0).count == 4)
        _ = try reopened.append(Self.event(4, stream: "new", random: &random))
        try reopened.close()
        let again = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        defer { try? again.close() }
        #expect(try again.events(inStream: "new").first?.data.starts(with: Array("SECRET-4-".utf8)) == true)
    }

    /// A failed sync of the key store (a new stream's key being added, or a
    /// forgetting) stops the writer: that append fails, and every later one
    /// with `writerStopped`, until the log is reopened; nothing acknowledged is lost.
    @Test func aFailedSyncOfTheKeyStoreStopsTheWriter() throws {
        for forgetting in [false, true] {
            let dir = TemporaryDirectory("encryption")
            let armed = Mutex(false)
            let faults = StorageFaults { operation, path in
                guard operation == .datasync, path.hasSuffix(FileNames.keyStore), armed.withLock({ $0 }) else { return nil }
                return .fail(errno: EIO)
            }
            var random = SplitMix64(seed: 37)
            let log = try Log.open(at: dir.path, options: Self.options(scope: .stream, durability: .always, faults: faults))
            _ = try log.append(Self.event(0, stream: "a", random: &random))
            armed.withLock { $0 = true }
            #expect(throws: EventLogError.self) {
                if forgetting { _ = try log.forgetStream("a") } else { _ = try log.append(Self.event(1, stream: "b", random: &random)) }
            }
            // Even an append that needs no new key is refused now.
            #expect {
                _ = try log.append(Self.event(2, stream: "a", random: &random))
            } throws: { error in
                guard case EventLogError.writerStopped = error else { return false }
                return true
            }
            try? log.close()
            // The acknowledged event is there; after a failed forgetting it may read as forgotten (its outcome is unknown).
            let reopened = try Log.open(at: dir.path, options: Self.options(scope: .stream))
            let a = try reopened.events(inStream: "a")
            #expect(a.count == 1, "forgetting: \(forgetting)")
            if !forgetting { #expect(a.first?.data.starts(with: Array("SECRET-0-".utf8)) == true) }
            try reopened.close()
        }
    }

    /// A lost key store is reported, never read as a plain log: `verify`
    /// names the first sealed batch, and every open with a key refuses.
    @Test func aLostKeyStoreIsReported() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 31)
        let log = try Log.open(at: dir.path, options: Self.options())
        _ = try log.append(Self.event(0, stream: "a", random: &random))
        try log.close()
        #expect(try Log.verify(at: dir.path).isSound)
        Damage.remove(dir.sub(FileNames.keyStore))
        let report = try Log.verify(at: dir.path)
        #expect(report.problems.contains { $0.file == dir.sub(FileNames.segment(0)) && $0.reason.contains("no key store") }, "\(report.problems)")
        #expect {
            try Log.open(at: dir.path, options: Self.options())
        } throws: { error in
            guard case EventLogError.encryptionMismatch(_, let reason) = error else { return false }
            return reason.contains("lost")
        }
    }

    /// Bounded input: a key store made huge (a sparse 1 TiB file) is refused
    /// by its length, before a byte of it is read.
    @Test func aHugeKeyStoreIsRefusedUnread() throws {
        let dir = TemporaryDirectory("encryption")
        try Log.open(at: dir.path, options: Self.options()).close()
        let keys = dir.sub(FileNames.keyStore)
        #expect(truncate(keys, 1 << 40) == 0)
        #expect(throws: EventLogError.limitExceeded(limit: "key store bytes", value: 1 << 40, maximum: KeyRing.maxBytes)) {
            try Log.open(at: dir.path, options: Self.options())
        }
    }

    @Test func rotatingTheMasterKeyRewrapsEveryKeyAndKeepsForgottenOnesForgotten() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 23)
        let log = try Log.open(at: dir.path, options: Self.options(scope: .stream))
        var appended: [NewEvent] = []
        for i in 0..<20 {
            let e = Self.event(i, stream: "s\(i % 4)", random: &random)
            _ = try log.append(e)
            appended.append(e)
        }
        _ = try log.forgetStream("s0")
        try log.rotateMasterKey(to: StaticKeyProvider(key: Self.otherKey))
        _ = try log.append(Self.event(20, stream: "s1", random: &random))
        try log.close()
        #expect(throws: EventLogError.wrongMasterKey(file: dir.sub(FileNames.keyStore))) {
            try Log.open(at: dir.path, options: Self.options(scope: .stream))
        }
        let reopened = try Log.open(at: dir.path, options: Self.options(key: Self.otherKey, scope: .stream))
        defer { try? reopened.close() }
        let events = try reopened.events(from: 0)
        #expect(events.count == 21)
        for e in events.prefix(20) {
            #expect(e.isForgotten == (e.stream == "s0"))
            if !e.isForgotten { #expect(e.data == appended[Int(e.position)].data) }
        }
    }

    /// Scavenging drops the events of a forgotten key (each stream's last
    /// event aside); a batch shared with a live key stays whole.
    @Test func compactionDropsForgottenEvents() throws {
        let dir = TemporaryDirectory("encryption")
        var random = SplitMix64(seed: 29)
        let log = try Log.open(at: dir.path, options: Self.options(scope: .stream, segmentBytes: 16 * 1024))
        defer { try? log.close() }
        for i in 0..<300 { _ = try log.append(Self.event(i, stream: i % 3 == 0 ? "alice" : "bob-\(i % 2)", random: &random)) }
        // One shared batch: stays whole.
        let shared = try log.append([Self.event(300, stream: "alice", random: &random), Self.event(301, stream: "bob-0", random: &random)])
        for i in 302..<400 { _ = try log.append(Self.event(i, stream: "bob-\(i % 2)", random: &random)) }
        let before = try log.events(inStream: "alice").count
        _ = try log.forgetStream("alice")
        let result = try log.compact()
        #expect(result.eventsScavenged > 90, "\(result)")
        let alice = try log.events(inStream: "alice")
        #expect(alice.count < before && alice.allSatisfy(\.isForgotten))
        #expect(try log.event(at: shared.lowerBound).isForgotten, "the shared batch stayed whole")
        #expect(try log.events(inStream: "bob-0").allSatisfy { !$0.isForgotten && $0.data.starts(with: Array("SECRET-".utf8)) })
        #expect(try Log.verify(at: dir.path).isSound)
    }

    /// `inspect` (library and command) describes the encryption from the
    /// key store without the master key: scope, data keys, forgotten ones;
    /// a damaged key entry is named (file and offset) as damage the events
    /// need, not one repair rebuilds; a plain log has none.
    @Test func inspectDescribesTheEncryptionWithoutTheKey() throws {
        let dir = TemporaryDirectory("encryption-inspect")
        var random = SplitMix64(seed: 17)
        let log = try Log.open(at: dir.path, options: Self.options(scope: .streamPrefix(separator: UInt8(ascii: "/"))))
        for i in 0..<9 { _ = try log.append(Self.event(i, stream: ["c1/a", "c1/b", "c2/a", "c3/x"][i % 4], random: &random)) }
        #expect(try log.forgetStream("c1/b") == 1)
        try log.close()

        let inspection = try Log.inspect(at: dir.path)
        let keyStoreBytes = try #require(FileManager.default.attributesOfItem(atPath: dir.sub(FileNames.keyStore))[.size] as? Int)
        #expect(inspection.encryption == EncryptionInspection(
            scope: .streamPrefix(separator: UInt8(ascii: "/")), dataKeys: 3, forgottenKeys: 1, keyStoreBytes: keyStoreBytes))
        #expect(inspection.damagedFiles.isEmpty)
        let json = try CLIProcess.run(["inspect", dir.path, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        #expect(json.stdout.contains(
            #""encryption":{"scope":"stream-prefix","separator":"/","data_keys":3,"forgotten_keys":1,"key_store_bytes":\#(keyStoreBytes)}"#),
            "\(json.stdout)")
        let text = try CLIProcess.run(["inspect", dir.path])
        #expect(text.status == 0 && text.stdout.contains("3 data keys, 1 forgotten"), "\(text.stdout)")

        // Damage c2's key entry (the third; c1's is the first, its shred is explained by its forgetting entry).
        let entryLength = KeyStoreFile.Entry.length(kind: KeyStoreFile.kindDataKey, nameLength: 2)
        let c2Entry = KeyStoreFile.headerSize + 2 * entryLength
        Damage.flipBit(dir.sub(FileNames.keyStore), at: c2Entry + entryLength - 6)
        let damaged = try Log.inspect(at: dir.path)
        #expect(damaged.damagedFiles.map(\.offset) == [Int64(c2Entry)])
        let damagedText = try CLIProcess.run(["inspect", dir.path])
        #expect(damagedText.stdout.contains("restore eventlog.keys from a backup"), "\(damagedText.stdout)")

        let plain = TemporaryDirectory("encryption-inspect-plain")
        let plainLog = try Log.open(at: plain.path, options: LogOptions(durability: .none))
        try plainLog.append(NewEvent(stream: "s", type: "t", data: [1]))
        try plainLog.close()
        #expect(try Log.inspect(at: plain.path).encryption == nil)
        let plainJSON = try CLIProcess.run(["inspect", plain.path, "--json"])
        #expect(plainJSON.stdout.contains(#""encryption":null"#), "\(plainJSON.stdout)")
    }

    /// A forged tag (the seal table's, under the frame checksum recomputed):
    /// every checksum of the segment holds, so only opening the seal tells.
    /// `verify` finds nothing in the segment; `verify --deep` without the
    /// key leaves its checks out (a note), with it (library and command)
    /// names the batch; a writer's open replaying it refuses it.
    @Test func deepVerifyWithTheKeyOpensEverySeal() throws {
        let dir = TemporaryDirectory("encryption-deep")
        var random = SplitMix64(seed: 6)
        let log = try Log.open(at: dir.path, options: Self.options())
        _ = try log.append((0..<10).map { Self.event($0, stream: "s", random: &random) })
        _ = try log.append((10..<20).map { Self.event($0, stream: "t", random: &random) })
        try log.close()
        let before = try Log.verify(at: dir.path, deep: true, encryption: Self.options().encryption)
        #expect(before.isSound, "\(before.problems) \(before.notes)")
        let segment = dir.sub(FileNames.segment(0))
        // The last batch (the next one's chain checksum would name a change to another).
        let batch = try #require(Fixtures.batches(in: segment).last)
        var bytes = Damage.read(segment)
        bytes.withUnsafeMutableBytes { raw in
            // The last byte of group 0's tag: before the table's u32 count, at the end of the records area.
            raw[batch.offset + batch.length - SealTable.countBytes - 1] ^= 0x01
            let crc = BatchHeader.frameChecksum(raw.baseAddress! + batch.offset, count: batch.length)
            raw.storeBytes(of: crc.littleEndian, toByteOffset: batch.offset + 4, as: UInt32.self)
        }
        Damage.write(segment, bytes)
        // The segment's checksums hold (only the index files, whose header
        // names the last batch's checksum, differ); a writer's open, which
        // replays that batch, refuses it, naming it.
        let plain = try Log.verify(at: dir.path)
        #expect(!plain.problems.isEmpty && !plain.problems.contains { $0.file == segment }, "\(plain.problems)")
        #expect(throws: EventLogError.sealBroken(file: segment, offset: Int64(batch.offset), keyID: 1)) {
            try Log.open(at: dir.path, options: Self.options())
        }
        let withoutKey = try Log.verify(at: dir.path, deep: true)
        #expect(!withoutKey.problems.contains { $0.file == segment } && withoutKey.notes.contains { $0.contains("deep checks did not run") },
                "\(withoutKey.notes)")
        let deep = try Log.verify(at: dir.path, deep: true, encryption: Self.options().encryption)
        let sealProblems = deep.problems.filter { $0.file == segment }
        #expect(sealProblems.map(\.offset) == [Int64(batch.offset)] && sealProblems.allSatisfy { $0.reason.contains("seal") }, "\(deep.problems)")
        let keyFile = dir.sub("master.key")
        Damage.write(keyFile, Self.key)
        chmod(keyFile, 0o600)
        let command = try CLIProcess.run(["verify", dir.path, "--deep"], environment: ["EVENTLOG_MASTER_KEY_FILE": keyFile])
        #expect(command.status == 1 && command.stdout.contains("\(segment) at byte \(batch.offset): the seal of data key"), "\(command.stdout)")
    }

    @Test func theCommandLineReadsTheKeyFromTheEnvironmentAndForgets() throws {
        let dir = TemporaryDirectory("encryption-cli")
        let keyFile = dir.sub("master.key")
        Damage.write(keyFile, Self.key)
        chmod(keyFile, 0o600)
        let logDir = dir.sub("log")
        let environment = ["EVENTLOG_MASTER_KEY_FILE": keyFile, "EVENTLOG_DATA_KEY_SCOPE": "stream"]
        let lines = #"{"stream":"alice","type":"T","data":"hello alice"}"# + "\n" + #"{"stream":"bob","type":"T","data":"hello bob"}"# + "\n"
        let append = try CLIProcess.run(["append", logDir], stdin: lines, environment: environment)
        #expect(append.status == 0, "\(append.stderr)")
        let dump = try CLIProcess.run(["dump", logDir, "--json"], environment: environment)
        #expect(dump.status == 0 && dump.stdout.contains("hello alice"), "\(dump.stderr)")
        let noKey = try CLIProcess.run(["dump", logDir])
        #expect(noKey.status == 2 && noKey.stderr.contains("encrypted"), "\(noKey.stderr)")
        let forget = try CLIProcess.run(["streams", logDir, "forget", "alice"], environment: environment)
        #expect(forget.status == 0 && forget.stdout.contains("destroyed 1 data key"), "\(forget.stderr)")
        let after = try CLIProcess.run(["dump", logDir, "--json"], environment: environment)
        #expect(after.status == 0 && !after.stdout.contains("hello alice") && after.stdout.contains("hello bob"))
        #expect(after.stdout.contains(#""forgotten":true"#), "\(after.stdout)")
        chmod(keyFile, 0o644)
        let exposed = try CLIProcess.run(["dump", logDir], environment: environment)
        #expect(exposed.status == 2 && exposed.stderr.contains("master.key"), "\(exposed.stderr)")
    }
}
