import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `eventlog dump SEGMENT-FILE`: one segment file read on its own
/// (`Log.readSegmentFile`), printed as `dump` prints a log's events, or its
/// batches with `--batches`. The filters apply to each event as it is read.
struct SegmentFileDump {
    var path: String
    var from: UInt64?
    var to: UInt64?
    var count: Int?
    var types: [String]
    var streamPrefix: String?
    var conditions: EventConditions
    var batches: Bool
    var json: Bool
    var data: DataFormat?

    /// True when `path` names a regular file (not a directory): dump reads it as a segment file.
    static func isFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Prints what the file holds in [`from`, `to`), at most `count` lines;
    /// everything before damage is printed (and flushed) before it is reported.
    func run(into output: inout OutputWriter) throws {
        let start = from ?? 0
        let stop = to ?? .max
        let limit = count ?? .max
        guard start < stop, limit > 0 else { return }
        var printed = 0
        do {
            do {
                if batches {
                    try Log.readSegmentFile(at: path, from: start) { batch in
                        if batch.basePosition >= stop { throw DumpCommand.EnoughPrinted() }
                        BatchListing.write(batch, json: json, into: &output)
                        try output.appendLineEnd()
                        printed += 1
                        if printed >= limit { throw DumpCommand.EnoughPrinted() }
                    }
                } else {
                    // As for a log: any filter leaves stream markers out.
                    let filtered = !types.isEmpty || streamPrefix != nil || !conditions.isEmpty
                    try Log.readSegmentFile(at: path, from: start, { _ in }, events: { event in
                        if event.position >= stop { throw DumpCommand.EnoughPrinted() }
                        if filtered {
                            if event.isMarker { return }
                            if !types.isEmpty && !types.contains(where: { $0.utf8.elementsEqual(event.typeBytes) }) { return }
                            if let prefix = streamPrefix, !prefix.utf8.elementsEqual(event.streamBytes.prefix(prefix.utf8.count)) { return }
                            guard try conditions.matches(event) else { return }
                        }
                        try DumpCommand.writeLine(event, json: json, data: data, into: &output)
                        printed += 1
                        if printed >= limit { throw DumpCommand.EnoughPrinted() }
                    })
                }
            } catch is DumpCommand.EnoughPrinted {}
            try output.flush()
        } catch let error as OutputError where error.isBrokenPipe {
            throw error
        } catch {
            // Print what was read before the damage, then report it.
            try? output.flush()
            throw error
        }
    }
}
