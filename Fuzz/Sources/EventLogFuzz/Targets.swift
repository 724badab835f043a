@testable import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A batch frame at offset 0, then its records as a reader and `verify` decode them.
enum BatchTarget {
    /// What codec 3 units decompress against here: 16 KiB of event-like
    /// text, allocated once for the process (never freed).
    nonisolated(unsafe) static let fuzzDictionary: UnsafeRawBufferPointer = {
        var text = ""
        var i = 0
        while text.utf8.count < LZ4Dictionary.maxBytes {
            text += "{\"order\":\"order-\(i)\",\"type\":\"OrderPlaced\",\"amount\":\(i * 37 % 1000)}"
            i += 1
        }
        let bytes = Array(text.utf8.prefix(LZ4Dictionary.maxBytes))
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        storage.copyBytes(from: bytes)
        return UnsafeRawBufferPointer(storage)
    }()

    static func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard case .valid(let header) = BatchHeader.check(
                raw, at: 0, end: raw.count, previousCRC: nil, expectedBase: nil, guarded: false) else { return }
            let stored = UnsafeRawBufferPointer(rebasing: raw[BatchHeader.size..<Int(header.length)])
            if header.codecValue == 0 {
                records(stored, header)
                if header.isSealed { opened(stored, header) }
                return
            }
            // Codec 3 (Format.md §5.4): against a fixed dictionary that takes
            // the checksum the batch records (a segment's would be checked
            // against it first), so its units reach the decoder.
            let dictionary = header.usesSegmentDictionary && stored.count >= LZ4Units.dictionaryFieldSize
                ? LZ4Dictionary(bytes: fuzzDictionary, checksum: stored.loadLE(at: 0, as: UInt32.self)) : nil
            if header.holdsLZ4Units { units(stored, header, dictionary) }
            let length = Int(header.recordsLength)
            var scratch = ByteBuffer(capacity: 0)
            scratch.reserve(length)
            guard (try? LZ4Units.decompress(stored, of: header, into: scratch.base, dictionary: dictionary)) != nil else { return }
            let area = UnsafeRawBufferPointer(start: scratch.base, count: length)
            records(area, header)
            if header.isSealed { opened(area, header) }
        }
    }

    /// An area of LZ4 units (Format.md §5.2) as point reads read it: the
    /// table, then each unit alone.
    private static func units(_ stored: UnsafeRawBufferPointer, _ header: BatchHeader, _ dictionary: LZ4Dictionary?) {
        guard let table = try? LZ4Units.Table(stored, of: header, dictionary: dictionary) else { return }
        var scratch = ByteBuffer(capacity: 0)
        var index = 0
        while index < Int(header.recordCount) {
            let unit = table.unit(holding: index)
            scratch.count = 0
            scratch.reserve(unit.length)
            guard (try? table.decompress(unit, into: scratch.base)) != nil else { return }
            index = unit.firstRecord + unit.records
        }
    }

    /// A sealed records area opened in a copy (as a reader opens it), then
    /// its records; and a copy whose sealed records are all marked opened,
    /// so the decoder of opened payloads reads the bytes as they are.
    private static func opened(_ area: UnsafeRawBufferPointer, _ header: BatchHeader) {
        var copy = Array(area)
        let ok = copy.withUnsafeMutableBytes { mutable in
            (try? SealedBatch.open(mutable, header: header, keys: FuzzKeys.shared, file: "fuzz", batchOffset: 0)) != nil
        }
        if ok { copy.withUnsafeBytes { records($0, header) } }
        guard let table = SealTable(area: area) else { return }
        var forced = Array(area)
        forced.withUnsafeMutableBytes { mutable in
            var at = 0
            let records = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(mutable)[0..<table.recordsEnd])
            for _ in 0..<min(Int(header.recordCount), 1 << 16) {
                let found: (groupOffset: Int, payloadEnd: Int)?
                do { found = try Record.sealedPayload(records, at: &at) } catch { break }
                if let found {
                    mutable.storeBytes(of: Record.openedGroup.littleEndian, toByteOffset: found.groupOffset, as: UInt32.self)
                }
            }
        }
        forced.withUnsafeBytes { records($0, header) }
    }

    /// Every record of the area (after its type table, when the batch has
    /// one): decoded as a scan does (no record checksum), as a point read
    /// does (with it), skipped, and materialized.
    private static func records(_ area: UnsafeRawBufferPointer, _ header: BatchHeader) {
        guard let types = try? TypeTable.read(area, of: header, guarded: false) else { return }
        _ = types.defect()
        for verify in [false, true] {
            var at = types.length
            var position = header.basePosition
            while position < header.endPosition {
                guard let view = try? Record.decode(
                    area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: verify, types: types)
                else { break }
                if !view.metadataBytes.isEmpty { _ = try? MetadataCoding.decode(view.metadataBytes) }
                _ = try? view.event()
                _ = (view.stream, view.type, view.key)
                position &+= 1
            }
        }
        var at = types.length
        for _ in 0..<min(Int(header.recordCount), 1 << 16) {
            guard (try? Record.skip(area, at: &at)) != nil else { break }
        }
    }
}

/// Keys for sealed batches without any key material: odd key ids are
/// forgotten, even ones missing (opening under a real key is the tests'
/// part; here the seal table, the walk and the markers are what is fuzzed).
final class FuzzKeys: SealKeys, Sendable {
    static let shared = FuzzKeys()
    let logID = [UInt8](repeating: 0, count: 16)
    var forgetEpoch: UInt32 { 0 }
    func dataKey(_ id: UInt32) -> DataKeyLookup { id % 2 == 1 ? .forgotten : .missing }
}

/// `eventlog.keys`: the header, then every entry until one cannot be read (as `KeyRing.load` walks them).
enum KeyStoreTarget {
    static func run(_ bytes: [UInt8]) {
        guard (try? KeyStoreFile.Header.decode(bytes, file: "fuzz")) != nil else { return }
        var offset = KeyStoreFile.headerSize
        while offset < bytes.count {
            switch KeyStoreFile.scan(bytes, at: offset) {
            case .valid(let entry, let length):
                _ = entry.isShredded
                offset += length
            case .damaged(_, _, let length):
                offset += length
            case .unreadable:
                return
            }
        }
    }
}

enum StreamIndexTarget {
    static func run(_ bytes: [UInt8]) {
        guard let view = StreamIndexView.inMemory(bytes, path: "fuzz") else { return }
        _ = view.verify()
        for g in 0..<min(view.groupCount, 256) {
            guard let (hash, _, _) = try? view.entries(ofGroup: g) else { continue }
            _ = try? view.entries(withHash: hash)
        }
        _ = try? view.entries(withHash: 0)
        _ = try? view.entries(withHash: .max)
    }
}

enum StreamTableRunTarget {
    static func run(_ bytes: [UInt8]) {
        guard let view = StreamTableRunView.inMemory(bytes, path: "fuzz") else { return }
        _ = view.verify()
        var rows: [(UInt64, String)] = []
        try? view.forEachRow { hash, row in
            if rows.count < 256 { rows.append((hash, row.name)) }
        }
        for (hash, name) in rows {
            _ = try? view.lookup(hash: hash, name: name)
            _ = try? view.lookup(hash: hash, name: name + "x")
        }
        _ = try? view.lookup(hash: 0, name: "a")
        _ = try? view.lookup(hash: .max, name: "a")
    }
}

/// The header, then the records after it in both layouts, walked as the
/// opener walks them: a record, or past an invalid one the next checked
/// record and the names the bytes between seem to carry.
enum CursorJournalTarget {
    static func run(_ input: [UInt8], fix: Bool) {
        var bytes = input
        if fix { Checksums.fixTrailing(&bytes, length: CursorJournalHeader.size) }
        let logID = bytes.count >= 32 ? Array(bytes[16..<32]) : Array(repeating: 0, count: 16)
        let headerLayout = bytes.withUnsafeBytes { try? CursorJournalHeader.check($0, file: "fuzz", logID: logID) }
        let start = min(bytes.count, CursorJournalHeader.size)
        for layout in [CursorJournalLayout.v1, .v2] where headerLayout == nil || headerLayout == layout {
            var records = Array(bytes[start...])
            var at = 0
            var steps = 0
            while at < records.count && steps < 4096 {
                steps += 1
                if fix { Checksums.fixCursorRecord(&records, at: at, layout: layout) }
                let decoded = records.withUnsafeBytes {
                    try? CursorRecord.decode($0, at: at, layout: layout, file: "fuzz", fileOffset: start)
                }
                if let (_, length) = decoded ?? nil {
                    at += length
                    continue
                }
                let next = records.withUnsafeBytes { CursorRecord.nextChecked($0, after: at, layout: layout) }
                let end = next?.offset ?? records.count
                _ = records.withUnsafeBytes { CursorRecord.readableNames(UnsafeRawBufferPointer(rebasing: $0[at..<end]), layout: layout) }
                guard let next else { break }
                at = next.offset
            }
        }
    }
}

/// The input as segment 0 of a log directory, opened read-only, read, verified.
enum WholeLogTarget {
    /// One directory for the whole process, emptied before each input.
    nonisolated(unsafe) static var directory = makeDirectory("eventlog-fuzz-log")

    static func run(_ bytes: [UInt8]) {
        empty(directory)
        write(bytes, to: "\(directory)/\(FileNames.segment(0))")
        openReadVerify(directory)
    }

    /// A read-only open, a read of every event (at most 2^16), a point read,
    /// the cursors; then `Log.verify(at:)`.
    static func openReadVerify(_ directory: String) {
        if let log = try? Log.open(at: directory, options: LogOptions(readOnly: true)) {
            var count = 0
            _ = try? log.read(from: 0, maxCount: 1 << 16) { event in
                _ = (event.stream, event.type)
                count += 1
            }
            if count > 0 { _ = try? log.event(at: log.startPosition) }
            _ = try? log.cursors()
            _ = log.damagedCursors()
            try? log.close()
        }
        _ = try? Log.verify(at: directory)
    }

    static func makeDirectory(_ prefix: String) -> String {
        let tmp = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(tmp)/\(prefix).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
        return String(cString: made)
    }

    static func write(_ bytes: [UInt8], to path: String) {
        guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
        if !bytes.isEmpty { _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, file) } }
        fclose(file)
    }

    /// Removes every file the last input left (a read-only open writes none;
    /// this keeps one input from seeing another's files if it ever does).
    static func empty(_ directory: String) {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name == "." || name == ".." { continue }
            let full = "\(directory)/\(name)"
            if unlink(full) != 0 { _ = rmdir(full) }
        }
    }
}

/// Lines of `eventlog append` input.
enum AppendJSONTarget {
    static func run(_ input: [UInt8]) {
        for line in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            _ = try? JSONEventLine.parseLine(Array(line))
        }
    }
}

/// Lines of `eventlog import` input, through one reader as `import` reads them.
enum ImportJSONTarget {
    static func run(_ input: [UInt8]) {
        var reader = ExportReader()
        for slice in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let line = Array(slice)
            var canonical = ExportReader()
            if canonical.parseCanonicalRecord(line) { checkSameRecord(canonical, line) }
            guard let parsed = try? reader.parse(line) else { continue }
            if case .record = parsed { _ = (reader.record, reader.data.count) }
        }
    }

    /// A record line the one-pass reader took (`parseCanonicalRecord`) must
    /// be one the general path reads the same way: every field, the data and
    /// the metadata. A difference is a finding (the trap saves the input).
    static func checkSameRecord(_ canonical: ExportReader, _ line: [UInt8]) {
        var general = ExportReader()
        guard case .record? = try? general.parseGeneral(line) else {
            fatalError("the one-pass reader took a record line the general path refuses: \(String(decoding: line, as: UTF8.self))")
        }
        if !canonical.readTheSameRecord(as: general, from: line) {
            fatalError("the one-pass reader and the general path read a record line differently: \(String(decoding: line, as: UTF8.self))")
        }
    }
}

/// One file of a real log replaced by the input: the opener, the cursor
/// journal's loader and the verifier meet each file kind in its place.
/// The input's first byte picks the file (`kinds`, modulo their count); bit
/// 7 of it asks for the file's leading checksums to be recomputed
/// (`FuzzTarget`). The real log is made once per process.
enum LogFilesTarget {
    /// The files that can be replaced, by name or by suffix.
    static let kinds = [
        FileNames.cursorJournal, FileNames.metadata, FileNames.lastCompaction, FileNames.compactionManifest,
        FileNames.offsetIndexSuffix, FileNames.timeIndexSuffix, FileNames.streamIndexSuffix, FileNames.streamTableRunSuffix,
        FileNames.logStart, FileNames.settings, FileNames.cleanShutdown,
    ]

    /// The real log: its directory and its files' bytes.
    nonisolated(unsafe) static var template: (directory: String, files: [(String, [UInt8])]) = {
        let directory = WholeLogTarget.makeDirectory("eventlog-fuzz-template")
        do {
            var options = LogOptions()
            options.segmentBytes = 8 << 10
            options.indexInterval = 128
            options.durability = .none
            options.maintenanceInterval = nil
            let log = try Log.open(at: directory, options: options)
            try log.updateSettings(LogSettings(keyCompaction: true, tombstoneRetention: .zero))
            _ = try log.createCursor("projector")
            for round in 0..<60 {
                _ = try log.append((0..<(1 + round % 3)).map { i in
                    NewEvent(stream: "s-\(round % 5)", type: "T\(i)", data: Array("event \(round) \(i)".utf8),
                             metadata: EventMetadata(correlationID: i == 0 ? "c" : nil), key: "k-\(i)")
                })
                if round % 20 == 19 { try log.commitCursor("projector", position: UInt64(round)) }
            }
            _ = try log.compact()
            try log.close()
        } catch {
            fatalError("the fuzz target's template log could not be made: \(error)")
        }
        let ops = DirectoryOperations(path: directory, faults: nil)
        let names = ((try? ops.list()) ?? []).filter { $0 != FileNames.lock }.sorted()
        return (directory, names.compactMap { name in ((try? ops.readWhole(name, atMost: 64 << 20)) ?? nil).map { (name, $0) } })
    }()

    nonisolated(unsafe) static var directory = WholeLogTarget.makeDirectory("eventlog-fuzz-files")

    static func run(_ input: [UInt8]) {
        guard let selector = input.first else { return }
        let kind = kinds[Int(selector & 0x7F) % kinds.count]
        var bytes = Array(input.dropFirst())
        let files = template.files
        // The first file of the kind (a suffix may match several).
        let name = files.first(where: { $0.0 == kind || $0.0.hasSuffix(kind) })?.0 ?? kind
        if selector & 0x80 != 0 {
            switch kind {
            case FileNames.cursorJournal:
                Checksums.fixTrailing(&bytes, length: CursorJournalHeader.size)
                var at = CursorJournalHeader.size
                while bytes.count - at >= CursorJournalLayout.v2.fixedBytes {
                    Checksums.fixCursorRecord(&bytes, at: at, layout: .v2)
                    let length = Int(Checksums.load(bytes, at: at))
                    guard length > 0 else { break }
                    at += length
                }
            case FileNames.streamIndexSuffix: Checksums.fixStreamIndex(&bytes)
            case FileNames.streamTableRunSuffix: Checksums.fixStreamTableRun(&bytes)
            default: Checksums.fixTrailing(&bytes, length: bytes.count)
            }
        }
        WholeLogTarget.empty(directory)
        for (file, content) in files where file != name { WholeLogTarget.write(content, to: "\(directory)/\(file)") }
        WholeLogTarget.write(bytes, to: "\(directory)/\(name)")
        WholeLogTarget.openReadVerify(directory)
    }
}
