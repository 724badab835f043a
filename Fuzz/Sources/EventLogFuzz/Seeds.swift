@testable import EventLog
import struct Foundation.UUID

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// libFuzzer calls this once before fuzzing. With `EVENTLOG_FUZZ_SEEDS=DIR`
/// the binary instead writes the seed corpus (`DIR/<target>/…`) from real
/// logs and exits: scripts/fuzz.sh --seeds.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let raw = getenv("EVENTLOG_FUZZ_SEEDS") else { return 0 }
    do {
        try SeedCorpus(root: String(cString: raw)).write()
        exit(0)
    } catch {
        Diagnostics.print("seed generation failed: \(error)")
        exit(1)
    }
}

/// Builds two small real logs (plain and LZ4 batches, several segments,
/// streams with keys, tombstones, metadata and markers, cursors, a
/// compaction that merges segments) and copies their files, or pieces of
/// them, as seeds. Binary seeds get the leading mode byte 0x01 (`FuzzTarget`).
struct SeedCorpus {
    let root: String
    /// The largest seed kept: the corpus stays small (it is committed).
    static let maxSeedBytes = 48 << 10

    func write() throws {
        for target in FuzzTarget.allCases { mkdir("\(root)/\(target.rawValue)", 0o755) }
        let plain = try makeLog(compression: .none, compact: true)
        let lz4 = try makeLog(compression: .lz4, compact: false)
        for (tag, dir) in [("plain", plain), ("lz4", lz4)] {
            try copyFiles(of: dir, tag: tag)
            try writeExport(of: dir, tag: tag)
        }
        try writeSealed()
        writeCursorJournalV1()
        seed(.swap, "manifest", binary: CompactionManifest(
            oldBases: [0, 40, 80], newBase: 0, newDeclaredEnd: 120, newHeaderChecksum: 0x1234_5678).encode())
        var failed = MaintenanceStatus()
        failed.lastFailure = "compaction failed: no space left on device"
        failed.lastFailureAt = 1_700_000_000_000_000
        seed(.compaction, "failure", binary: LastCompactionFile.encode(failed))
        seed(.appendJSON, "lines", binary: nil, text: Self.appendLines)
    }

    // MARK: Logs

    private func makeLog(compression: Compression, compact: Bool) throws -> String {
        let tmp = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(tmp)/eventlog-seeds.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw EventLogError.invalidArgument("mkdtemp failed") }
        let dir = String(cString: made)
        var options = LogOptions()
        options.segmentBytes = 16 << 10
        options.indexInterval = 256
        options.compression = compression
        options.durability = .none
        options.maintenanceInterval = nil
        let log = try Log.open(at: dir, options: options)
        if compact { try log.updateSettings(LogSettings(keyCompaction: true, tombstoneRetention: .zero)) }
        _ = try log.createCursor("projector")
        if compression == .lz4 {
            // A first batch of more than `LZ4Dictionary.minBytes` of records: the
            // segment's dictionary, so the batches after it are codec 3 (Format.md §5.4).
            _ = try log.append((0..<12).map { i in
                NewEvent(
                    stream: "order-\(i % 7)", type: "OrderPlaced",
                    data: Array(#"{"first":\#(i),"note":"\#(String(repeating: "cd", count: 40))"}"#.utf8))
            })
        }
        for round in 0..<(compact ? 160 : 60) {
            var events: [NewEvent] = []
            for i in 0..<(1 + round % 5) {
                let stream = "order-\(round % 7)"
                var metadata = EventMetadata()
                if i % 2 == 0 {
                    metadata = EventMetadata(
                        eventID: UUID(), schemaVersion: 2, contentType: "application/json", correlationID: "c-\(round)",
                        causationID: i == 0 ? nil : "cause", headers: [EventMetadata.Header("tenant", "acme")])
                }
                let data = Array(#"{"round":\#(round),"i":\#(i),"note":"\#(String(repeating: "ab", count: round))"}"#.utf8)
                events.append(NewEvent(
                    stream: stream, type: i % 3 == 0 ? "OrderPlaced" : "OrderShipped", data: data, metadata: metadata,
                    key: round % 4 == 3 ? nil : "sku-\(i)", isTombstone: round % 9 == 8 && i == 0))
            }
            _ = try log.append(events)
            if round % 10 == 9 { try log.commitCursor("projector", position: UInt64(round)) }
        }
        _ = try log.createCursor("audit", at: .start)
        try log.deleteCursor("audit")
        if compact { _ = try log.compact() }
        try log.close()
        return dir
    }

    private func copyFiles(of dir: String, tag: String) throws {
        let directory = DirectoryOperations(path: dir, faults: nil)
        for name in try directory.list().sorted() {
            guard let bytes = try? directory.readWhole(name, atMost: 64 << 20) else { continue }
            let stem = "\(tag)-\(name)"
            // The same file for `log-files`, whose mode byte names the kind (and asks for checksums recomputed).
            if let kind = LogFilesTarget.kinds.firstIndex(where: { name == $0 || name.hasSuffix($0) }) {
                seed(.logFiles, stem, binary: bytes, mode: 0x80 | UInt8(kind))
            }
            switch name {
            case FileNames.metadata: seed(.meta, stem, binary: bytes)
            case FileNames.lastCompaction: seed(.compaction, stem, binary: bytes)
            case FileNames.compactionManifest: seed(.swap, stem, binary: bytes)
            case FileNames.cursorJournal: seed(.cursorJournal, stem, binary: bytes)
            case _ where name.hasSuffix(FileNames.offsetIndexSuffix): seed(.offsetIndex, stem, binary: bytes)
            case _ where name.hasSuffix(FileNames.timeIndexSuffix): seed(.timeIndex, stem, binary: bytes)
            case _ where name.hasSuffix(FileNames.streamIndexSuffix): seed(.streamIndex, stem, binary: bytes)
            case _ where name.hasSuffix(FileNames.streamTableRunSuffix): seed(.streamTableRun, stem, binary: bytes)
            case _ where name.hasSuffix(FileNames.segmentSuffix):
                // Segments are preallocated: the data ends at the first zero frame length.
                let data = Array(bytes.prefix(dataEnd(bytes)))
                seed(.segmentHeader, stem, binary: Array(data.prefix(SegmentHeader.size)))
                seed(.log, stem, binary: data)
                seedFirstBatches(of: data, stem: stem)
            default: break
            }
        }
    }

    /// An encrypted log (one data key per stream; one stream forgotten): its
    /// key store and its sealed batches, sealed under `FuzzKeys`' key 1 with
    /// its log id, so the batch target opens them.
    private func writeSealed() throws {
        let tmp = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(tmp)/eventlog-seeds.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw EventLogError.invalidArgument("mkdtemp failed") }
        let dir = String(cString: made)
        var options = LogOptions(durability: .none)
        options.maintenanceInterval = nil
        options.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: [UInt8](repeating: 0x42, count: 32)), scope: .stream)
        let log = try Log.open(at: dir, options: options)
        for round in 0..<12 {
            var metadata = EventMetadata()
            metadata.correlationID = "c-\(round)"
            _ = try log.append([
                NewEvent(stream: "customer-\(round % 2)", type: "Placed", data: Array("secret \(round)".utf8), metadata: metadata),
                NewEvent(stream: "customer-\(round % 3)", type: "Paid", data: Array(repeating: UInt8(round), count: 40)),
            ])
        }
        _ = try log.forgetStream("customer-1")
        try log.close()
        let directory = DirectoryOperations(path: dir, faults: nil)
        if let keys = try directory.readWhole(FileNames.keyStore, atMost: 1 << 20) { seed(.keyStore, "sealed-keys", binary: keys) }
        if let segment = try directory.readWhole(FileNames.segment(0), atMost: 64 << 20) {
            seedFirstBatches(of: Array(segment.prefix(dataEnd(segment))), stem: "sealed")
        }
    }

    /// The first three batch frames of a segment's `data` as `batch` seeds, named `<stem>-<offset>`.
    private func seedFirstBatches(of data: [UInt8], stem: String) {
        var at = SegmentHeader.size
        var frames = 0
        while frames < 3, data.count - at >= BatchHeader.size {
            let length = Int(Checksums.load(data, at: at))
            guard length >= BatchHeader.size, length <= data.count - at else { break }
            seed(.batch, "\(stem)-\(at)", binary: Array(data[at..<(at + length)]))
            at += length
            frames += 1
        }
    }

    private func dataEnd(_ bytes: [UInt8]) -> Int {
        var at = SegmentHeader.size
        while bytes.count - at >= BatchHeader.size {
            let length = Int(Checksums.load(bytes, at: at))
            guard length >= BatchHeader.size, length <= bytes.count - at else { break }
            at += length
        }
        return min(at, bytes.count)
    }

    /// The log's export, as `eventlog export` writes it (ExportCommand).
    private func writeExport(of dir: String, tag: String) throws {
        let log = try Log.open(at: dir, options: LogOptions(readOnly: true))
        defer { try? log.close() }
        let path = "\(root)/\(FuzzTarget.importJSON.rawValue)/\(tag)-export"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw EventLogError.invalidArgument("cannot create \(path)") }
        defer { close(fd) }
        var out = OutputWriter(fd: fd)
        ExportFormat.writeHeader(
            ExportFormat.Header(
                formatVersion: Log.formatVersion, logID: log.logID, startPosition: log.startPosition, endPosition: log.endPosition,
                indexInterval: log.indexInterval, hasStreamStates: true, settings: try log.settings()),
            into: &out)
        try out.appendLineEnd()
        var batches = 0
        var records = 0
        var writing = true
        try log.readBatches(from: log.startPosition, { batch in
            // The first batches only: the seed stays small.
            guard batches < 4 else {
                writing = false
                return
            }
            ExportFormat.writeBatch(batch, into: &out)
            batches += 1
            try out.appendLineEnd()
        }, events: { event in
            guard writing else { return }
            try ExportFormat.writeRecord(event, into: &out)
            records += 1
            try out.appendLineEnd()
        })
        try ExportFormat.writeTrailer(
            streams: try log.streamSnapshots(), consumers: log.consumerSnapshot(), endPosition: log.endPosition,
            counts: ExportFormat.Counts(batches: batches, records: records), into: &out)
        try out.flush()
    }

    /// A layout-1 journal (format versions before 7), which no current log writes.
    private func writeCursorJournalV1() {
        var header = CursorJournalHeader.encode(logID: Array(repeating: 7, count: 16))
        header[8] = 6
        header[9] = 0
        Checksums.fixTrailing(&header, length: CursorJournalHeader.size)
        var w = ByteWriter()
        w.raw(header)
        let records = [
            CursorRecord(kind: .set, name: "projector", position: 42, timestamp: 1_700_000_000_000_000),
            CursorRecord(kind: .park, name: "mailer", position: 7, timestamp: 1_700_000_000_000_001, deliveries: 3),
            CursorRecord(kind: .replay, name: "mailer", position: 7, timestamp: 1_700_000_000_000_002, positions: [3, 5, 6]),
            CursorRecord(kind: .unpark, name: "mailer", position: 7, timestamp: 1_700_000_000_000_003),
            CursorRecord(kind: .delete, name: "projector", position: 0, timestamp: 1_700_000_000_000_004),
        ]
        for record in records { record.encode(into: &w, layout: .v1) }
        seed(.cursorJournal, "layout1-journal", binary: w.bytes)
    }

    // MARK: Writing

    private func seed(_ target: FuzzTarget, _ name: String, binary: [UInt8]?, text: String? = nil, mode: UInt8 = 0x01) {
        let bytes = binary.map { [mode] + $0 } ?? Array((text ?? "").utf8)
        guard bytes.count <= Self.maxSeedBytes else { return }
        let path = "\(root)/\(target.rawValue)/\(name)"
        guard let file = fopen(path, "wb") else { return }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, file) }
        fclose(file)
    }

    static let appendLines = """
        {"stream":"order-1","type":"OrderPlaced","data":{"total":99.5,"items":[1,2,3]},"metadata":{"event_id":"5F1D2C3B-0A4E-4E7F-9A1B-2C3D4E5F6A7B","schema_version":2,"correlation_id":"checkout-7","tenant":"acme"},"expected_version":"no_stream"}
        {"stream":"order-1","type":"OrderShipped","data":null,"timestamp":1700000000000000,"id":"6A1D2C3B-0A4E-4E7F-9A1B-2C3D4E5F6A7B","expected_version":0,"key":"sku-9"}
        {"stream":"outbox","type":"SendConfirmation","data_base64":"AAECAwQ=","metadata":{"contentType":"application/octet-stream","causationId":"c"},"expectedVersion":"any","tombstone":false}
        {"stream":"order-2","type":"OrderCancelled","data":"\\u00e9\\ud83d\\ude00 \\n","position":4,"version":null,"marker":false,"expected_version":"stream_exists","tombstone":true}

        """
}
