import EventLog

/// What `eventlog stats` counts in one pass over a log
/// (`Log.readBatches(from:_:events:)`): totals and distributions.
///
/// Memory grows with the number of distinct streams and types (a count per
/// name); everything else is a fixed size.
struct LogStatistics {
    /// Events (stream markers not included).
    var events: UInt64 = 0
    /// Stream markers (the records of `streams delete` and `truncate`).
    var markers: UInt64 = 0
    var batches: UInt64 = 0
    /// Bytes the batch frames take in the segment files (headers included).
    var storedBytes: UInt64 = 0
    /// What those frames would take uncompressed.
    var uncompressedBytes: UInt64 = 0
    /// Each event's data and encoded metadata, in bytes.
    var eventBytes = Histogram()
    /// Each batch's record count (events and markers).
    var batchRecords = Histogram()
    /// Each batch's frame length in bytes.
    var batchBytes = Histogram()
    /// Events per stream, by stream name.
    var streamEvents: [String: UInt64] = [:]
    /// Events per type, by type name.
    var typeEvents: [String: UInt64] = [:]

    /// Reads `log` from its start, counting every batch and record.
    static func gather(from log: Log) throws -> LogStatistics {
        var statistics = LogStatistics()
        try log.readBatches(from: log.startPosition) { batch in
            statistics.add(batch)
        } events: { event in
            statistics.add(event)
        }
        return statistics
    }

    mutating func add(_ batch: BatchInfo) {
        batches += 1
        storedBytes += UInt64(batch.length)
        uncompressedBytes += UInt64(batch.uncompressedLength)
        batchRecords.add(UInt64(batch.recordCount))
        batchBytes.add(UInt64(batch.length))
    }

    mutating func add(_ event: EventView) {
        if event.isMarker {
            markers += 1
            return
        }
        events += 1
        eventBytes.add(UInt64(event.data.count + event.metadataBytes.count))
        streamEvents[event.stream, default: 0] += 1
        typeEvents[event.type, default: 0] += 1
    }

    /// Stored batch bytes ÷ uncompressed bytes: 1 for a log without compression (and an empty one).
    var compressionRatio: Double {
        uncompressedBytes == 0 ? 1 : Double(storedBytes) / Double(uncompressedBytes)
    }

    /// The distribution of events per stream.
    var streamEventsHistogram: Histogram {
        var histogram = Histogram()
        for count in streamEvents.values { histogram.add(count) }
        return histogram
    }

    /// Types by count, most first (ties by name), the first `limit`; and
    /// how many other types there are and how many events they hold.
    func topTypes(_ limit: Int) -> (top: [(type: String, count: UInt64)], otherTypes: Int, otherEvents: UInt64) {
        let sorted = typeEvents.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let top = sorted.prefix(limit).map { (type: $0.key, count: $0.value) }
        let rest = sorted.dropFirst(limit)
        return (top, rest.count, rest.reduce(0) { $0 + $1.value })
    }
}
