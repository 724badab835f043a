import Foundation
@testable import EventLog

/// Builders for logs with a known content.
enum Fixtures {
    /// The stream table runs in `dir`, by name.
    static func streamTableRunNames(_ dir: TemporaryDirectory) -> [String] {
        dir.files().filter { FileNames.streamTableRunRange($0) != nil }.sorted()
    }

    /// True when the stream's state is in the stream table's current generation (in memory).
    static func inCurrentGeneration(_ log: Log, _ stream: String) -> Bool {
        var name = stream
        return name.withUTF8 { log.streams.table.current.find(UnsafeRawBufferPointer($0), hash: StreamHash.hash(stream)) } != nil
    }

    /// Event `i` of the standard test content: its data names its position,
    /// so any misplaced or altered event is detected.
    static func event(_ i: Int, size: Int = 40) -> NewEvent {
        var data = Array("event-\(i)-".utf8)
        while data.count < size { data.append(UInt8(truncatingIfNeeded: i &* 31 &+ data.count)) }
        return NewEvent(stream: "stream-\(i % 7)", type: "Type\(i % 3)", data: data, timestamp: 1_000_000 + Int64(i))
    }

    /// Appends events `range` in batches of `batch`.
    /// A live writer (`.always`, left open) of five batches of three events
    /// in one segment, and the third batch: where it is and its bytes, for a
    /// test that plays that batch arriving late under a reader.
    struct LiveWriter {
        let log: Log
        let segment: String
        let third: (offset: Int, length: Int, base: UInt64, count: Int)
        let thirdBytes: [UInt8]
    }

    static func liveWriter(_ dir: TemporaryDirectory) throws -> LiveWriter {
        let log = try Log.open(at: dir.path, options: LogOptions(durability: .always))
        try append(log, 0..<15, batch: 3)
        let segment = segments(dir)[0]
        let third = batches(in: segment)[2]
        return LiveWriter(
            log: log, segment: segment, third: third,
            thirdBytes: Array(Damage.read(segment)[third.offset..<(third.offset + third.length)]))
    }

    static func append(_ log: Log, _ range: Range<Int>, batch: Int, size: Int = 40) throws {
        var i = range.lowerBound
        while i < range.upperBound {
            let n = min(batch, range.upperBound - i)
            try log.append((i..<(i + n)).map { event($0, size: size) })
            i += n
        }
    }

    /// Checks that the log holds exactly events `0..<count` of the standard content.
    static func expectContent(_ log: Log, count: Int, sourceLocation: SourceLocationShim = .init()) throws -> Bool {
        let events = try log.events(from: 0)
        guard events.count == count else { return false }
        for (i, e) in events.enumerated() {
            let expected = event(i, size: e.data.count)
            // Stream i % 7 gets every 7th event: version i / 7.
            guard e.position == UInt64(i), e.data == expected.data, e.stream == expected.stream, e.type == expected.type,
                  e.version == UInt64(i / 7)
            else { return false }
        }
        return true
    }

    struct SourceLocationShim { init() {} }

    static func segments(_ dir: TemporaryDirectory) -> [String] {
        dir.files().filter { $0.hasSuffix(".segment") }.map { dir.sub($0) }
    }

    /// Byte offsets of every batch in a segment file, with their lengths.
    static func batches(in path: String) -> [(offset: Int, length: Int, base: UInt64, count: Int)] {
        let bytes = Damage.read(path)
        var result: [(Int, Int, UInt64, Int)] = []
        var offset = SegmentHeader.size
        while offset + BatchHeader.size <= bytes.count {
            let header = bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + offset) }
            if header.length == 0 { break }
            result.append((offset, Int(header.length), header.basePosition, Int(header.recordCount)))
            offset += Int(header.length)
        }
        return result
    }

    /// A log at `dir` holding `events` (positions from 0) in one batch,
    /// written by an import: records that keep their types (no type table,
    /// Format.md §5.3), as format version 9 wrote them. Returns the events
    /// as stored (appended to a log of their own first, which gives their
    /// versions and timestamps).
    @discardableResult
    static func importAsOneBatch(_ events: [NewEvent], at dir: TemporaryDirectory, options: LogOptions) throws -> [Event] {
        let source = TemporaryDirectory()
        let log = try Log.open(at: source.path, options: options)
        try log.append(events)
        let stored = try log.events(from: 0)
        try log.close()
        let importer = try LogImporter(at: dir.path, logID: UUID(), startPosition: 0, options: options)
        try importer.beginBatch(at: 0, firstTimestamp: stored.first?.timestamp ?? 0)
        for event in stored { try importer.appendRecord(event) }
        try importer.endBatch()
        try importer.finish(endPosition: UInt64(stored.count), streams: nil)
        return stored
    }

    /// Rewrites `dir`'s `eventlog.meta` with read version `version`: the log
    /// as a build of that version left it (when its files are that version's).
    static func setReadVersion(_ version: UInt16, in dir: TemporaryDirectory) throws {
        let meta = dir.sub(FileNames.metadata)
        var metadata = try LogMetadata.decode(Damage.read(meta), file: meta)
        metadata.readVersion = version
        Damage.write(meta, metadata.encode())
    }

    /// The offset in the segment at `path` of the first record of the batch
    /// at `offset`: after the header and, when it has one, its type table
    /// (Format.md §5.3).
    static func firstRecord(in path: String, batchAt offset: Int) -> Int {
        let bytes = Damage.read(path)
        let header = bytes.withUnsafeBytes { BatchHeader.load($0.baseAddress! + offset) }
        let area = offset + BatchHeader.size
        guard header.attributes & TypeTable.attribute != 0 else { return area }
        let names = area + 1 + 2 * Int(bytes[area])
        return names + Int(UInt16(bytes[names - 2]) | UInt16(bytes[names - 1]) << 8)
    }
}
