import ArgumentParser
import EventLog

/// `eventlog stats DIR`: totals and distributions of a log, in one pass.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print a log's totals and the distributions of its event, batch and stream sizes.",
        discussion: """
            Reads the whole log once, read-only (so it works beside a running writer; it describes the \
            events that were appended when it started), verifying every batch's checksum: a damaged \
            batch exits with 1, naming its file and byte offset.

            Prints the totals: events (stream markers not included), markers, batches, streams (with \
            at least one event), stored bytes (the batch frames in the segment files, headers \
            included), uncompressed bytes (what those frames would take uncompressed), the compression \
            ratio (stored bytes / uncompressed bytes, with 3 decimals: 1.000 for a log without \
            compression) and bytes on disk (what the file system allocated for every file of the log, \
            as inspect reports it). Then text histograms, one row per power-of-two bucket (0, 1, 2..3, \
            4..7, ...) from the lowest to the highest that holds a value, each with a bar of # scaled to \
            the largest bucket (\(BarChart.width) wide) and the count: event bytes (each event's data and \
            encoded metadata), batch records (the records of each batch: events and markers), batch \
            bytes (each batch frame's length) and stream events (the events of each stream); then the \
            event types by count, the \(Self.topTypes) largest, the rest summed up as "N other types".

            With --json, one object with the keys events, markers, batches, streams, stored_bytes, \
            uncompressed_bytes, compression_ratio, bytes_on_disk, event_bytes, batch_records, \
            batch_bytes and stream_events (each an array of buckets {"min", "max", "count"}, the same \
            rows as the text), types (an array of {"type", "count"}, at most \(Self.topTypes)) and \
            other_types ({"types", "events"}: the types left out and their events).

            It keeps a count per stream and per type in memory: that grows with the number of streams.

            Example: eventlog stats /var/lib/orders --json
            """)

    /// The event types listed by name; the rest are summed up.
    static let topTypes = 20

    @Argument(help: "The log directory.")
    var directory: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "stats") {
            let log = try Log.openReadOnly(directory)
            defer { try? log.close() }
            let statistics = try LogStatistics.gather(from: log)
            let bytesOnDisk = try Log.inspect(at: directory).allocatedBytes
            var output = OutputWriter(fd: 1)
            do {
                if json {
                    Self.writeJSON(statistics, bytesOnDisk: bytesOnDisk, into: &output)
                    try output.appendLineEnd()
                } else {
                    Self.writeText(statistics, bytesOnDisk: bytesOnDisk, into: &output)
                }
                try output.flush()
            } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader stopped listening (`stats | head`): not a failure
            }
        }
    }

    /// `1.000`, `0.457`: three decimals.
    static func ratioText(_ ratio: Double) -> String {
        let thousandths = Int((ratio * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func writeText(_ statistics: LogStatistics, bytesOnDisk: Int64, into output: inout OutputWriter) {
        RetentionSettingsFormat.writeRows([
            ("events", "\(statistics.events)"),
            ("markers", "\(statistics.markers)"),
            ("batches", "\(statistics.batches)"),
            ("streams", "\(statistics.streamEvents.count)"),
            ("stored bytes", "\(statistics.storedBytes) (the batch frames in the segment files)"),
            ("uncompressed bytes", "\(statistics.uncompressedBytes)"),
            ("compression ratio", "\(ratioText(statistics.compressionRatio)) (stored bytes / uncompressed bytes)"),
            ("bytes on disk", "\(bytesOnDisk) (allocated for every file of the log)"),
        ], into: &output)
        for (title, histogram) in [
            ("event bytes (data + metadata of each event)", statistics.eventBytes),
            ("batch records (events and markers of each batch)", statistics.batchRecords),
            ("batch bytes (each batch frame)", statistics.batchBytes),
            ("stream events (events of each stream)", statistics.streamEventsHistogram),
        ] {
            output.append("\n\(title)\n")
            let buckets = histogram.buckets
            if buckets.isEmpty { output.append("  (none)\n") }
            BarChart.append(buckets.map { (BarChart.label($0), $0.count) }, labelsRightAligned: true, into: &output)
        }
        let types = statistics.topTypes(topTypes)
        output.append("\nevent types (the \(topTypes) with the most events)\n")
        if types.top.isEmpty { output.append("  (none)\n") }
        var rows = types.top.map { (label: $0.type, count: $0.count) }
        if types.otherTypes > 0 {
            rows.append((label: "\(types.otherTypes) other \(types.otherTypes == 1 ? "type" : "types")", count: types.otherEvents))
        }
        BarChart.append(rows, labelsRightAligned: false, into: &output)
    }

    static func writeJSON(_ statistics: LogStatistics, bytesOnDisk: Int64, into output: inout OutputWriter) {
        output.append("{\"events\":")
        output.append(statistics.events)
        output.append(",\"markers\":")
        output.append(statistics.markers)
        output.append(",\"batches\":")
        output.append(statistics.batches)
        output.append(",\"streams\":")
        output.append(statistics.streamEvents.count)
        output.append(",\"stored_bytes\":")
        output.append(statistics.storedBytes)
        output.append(",\"uncompressed_bytes\":")
        output.append(statistics.uncompressedBytes)
        output.append(",\"compression_ratio\":")
        output.append(ratioText(statistics.compressionRatio))
        output.append(",\"bytes_on_disk\":")
        output.append(bytesOnDisk)
        for (key, histogram) in [
            ("event_bytes", statistics.eventBytes), ("batch_records", statistics.batchRecords),
            ("batch_bytes", statistics.batchBytes), ("stream_events", statistics.streamEventsHistogram),
        ] {
            output.append(",\"\(key)\":[")
            for (i, bucket) in histogram.buckets.enumerated() {
                if i > 0 { output.append(byte: UInt8(ascii: ",")) }
                output.append("{\"min\":")
                output.append(bucket.min)
                output.append(",\"max\":")
                output.append(bucket.max)
                output.append(",\"count\":")
                output.append(bucket.count)
                output.append(byte: UInt8(ascii: "}"))
            }
            output.append(byte: UInt8(ascii: "]"))
        }
        let types = statistics.topTypes(topTypes)
        output.append(",\"types\":[")
        for (i, type) in types.top.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.append("{\"type\":")
            output.appendJSONString(type.type)
            output.append(",\"count\":")
            output.append(type.count)
            output.append(byte: UInt8(ascii: "}"))
        }
        output.append("],\"other_types\":{\"types\":")
        output.append(types.otherTypes)
        output.append(",\"events\":")
        output.append(types.otherEvents)
        output.append("}}")
    }
}
