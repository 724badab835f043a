@testable import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A batch frame at offset 0, then its records as a reader and `verify` decode them.
enum BatchTarget {
    static func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard case .valid(let header) = BatchHeader.check(
                raw, at: 0, end: raw.count, previousCRC: nil, expectedBase: nil, guarded: false) else { return }
            let stored = UnsafeRawBufferPointer(rebasing: raw[BatchHeader.size..<Int(header.length)])
            if header.codecValue == 0 {
                records(stored, header)
                return
            }
            let length = Int(header.recordsLength)
            var scratch = ByteBuffer(capacity: 0)
            scratch.reserve(length)
            guard LZ4Codec.decompress(stored, into: scratch.base, capacity: length) == length else { return }
            records(UnsafeRawBufferPointer(start: scratch.base, count: length), header)
        }
    }

    /// Every record of the area: decoded as a scan does (no record checksum),
    /// as a point read does (with it), skipped, and materialized.
    private static func records(_ area: UnsafeRawBufferPointer, _ header: BatchHeader) {
        for verify in [false, true] {
            var at = 0
            var position = header.basePosition
            while position < header.endPosition {
                guard let view = try? Record.decode(
                    area, at: &at, position: position, firstTimestamp: header.firstTimestamp, verify: verify) else { break }
                if !view.metadataBytes.isEmpty { _ = try? MetadataCoding.decode(view.metadataBytes) }
                _ = try? view.event()
                _ = (view.stream, view.type, view.key)
                position &+= 1
            }
        }
        var at = 0
        for _ in 0..<min(Int(header.recordCount), 1 << 16) {
            guard (try? Record.skip(area, at: &at)) != nil else { break }
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
    nonisolated(unsafe) static var directory: String = {
        let tmp = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(tmp)/eventlog-fuzz-log.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
        return String(cString: made)
    }()

    static func run(_ bytes: [UInt8]) {
        let path = "\(directory)/\(FileNames.segment(0))"
        empty()
        guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
        if !bytes.isEmpty { _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, file) } }
        fclose(file)
        if let log = try? Log.open(at: directory, options: LogOptions(readOnly: true)) {
            var count = 0
            _ = try? log.read(from: 0, maxCount: 1 << 16) { event in
                _ = (event.stream, event.type)
                count += 1
            }
            if count > 0 { _ = try? log.event(at: 0) }
            try? log.close()
        }
        _ = try? Log.verify(at: directory)
    }

    /// Removes every file the last input left (a read-only open writes none;
    /// this keeps one input from seeing another's files if it ever does).
    private static func empty() {
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
        for line in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard let parsed = try? reader.parse(Array(line)) else { continue }
            if case .record = parsed { _ = (reader.record, reader.data.count) }
        }
    }
}
