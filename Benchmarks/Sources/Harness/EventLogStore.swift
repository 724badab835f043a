import EventLog
import Workload

/// EventLog as the phase runner drives it. A1 appends with `.none` and ends
/// with `sync()` + `close()`; A2/A3 use `.always`; reads reopen the log
/// read-only (no writer lock, no recovery writes) and lend zero-copy views.
public final class EventLogStore: Store {
    public let log: Log

    public init(directory: String, mode: OpenMode, config: StoreConfig) throws {
        var options = LogOptions(
            durability: mode == .durable ? .always : .none, compression: config.lz4 ? .lz4 : .none,
            readOnly: mode == .reading)
        options.createIfMissing = mode != .reading
        if let bytes = config.batchCacheBytes { options.batchCacheBytes = bytes }
        if let bytes = config.compressionUnitBytes { options.compressionUnitBytes = bytes }
        if let bytes = config.dictionaryUnitBytes { options.dictionaryUnitBytes = bytes }
        if config.encrypted {
            options.encryption = LogEncryption(keyProvider: StaticKeyProvider(key: [UInt8](repeating: 0x5A, count: 32)), scope: .log)
        }
        log = try Log.open(at: directory, options: options)
    }

    init(log: Log) { self.log = log }

    /// One batch, built in place from the chunk's borrowed bytes (no
    /// allocation per event). Stream versions are the log's own.
    @inline(__always)
    public func append(_ events: EventChunk.Events, _ range: Range<Int>) throws {
        try log.appendBatch { (batch: inout BatchBuilder) throws in
            batch.prefetchStreams(count: range.count) { events[range.lowerBound + $0].stream }
            for j in range {
                let event = events[j]
                try batch.append(stream: event.stream, type: event.type, data: event.payload)
            }
        }
    }

    public func finishBulk() throws { try log.sync() }

    public func close() throws { try log.close() }

    public func scanAll(into sum: inout ReadSum) throws {
        try log.read(from: 0) { view in
            sum.add(streamCount: view.streamBytes.count, typeCount: view.typeBytes.count, data: view.data)
        }
    }

    public static var readsStreams: Bool { true }

    /// R2 through the stream index: versions ascending, each event's own
    /// checksum verified and its stream name confirmed by the library.
    public func readStream(_ name: UnsafeRawBufferPointer, into sum: inout ReadSum) throws -> Int {
        var count: UInt64 = 0
        try log.readStream(String(decoding: name, as: UTF8.self)) { view in
            guard view.version == count else {
                throw BenchError("eventlog R2: \(view.stream) has version \(view.version) where \(count) belongs")
            }
            sum.add(streamCount: view.streamBytes.count, typeCount: view.typeBytes.count, data: view.data)
            count += 1
        }
        return Int(count)
    }

    @inline(__always)
    public func read(position: UInt64, into sum: inout ReadSum) throws -> Bool {
        try log.withEvent(at: position) { view in
            sum.add(streamCount: view.streamBytes.count, typeCount: view.typeBytes.count, data: view.data)
        }
        return true
    }
}

/// The C phases: one log opened `.always`, shared by the threads (`Log` is
/// thread-safe); each thread's appender is a handle on it.
extension EventLogStore: ConcurrentStore {
    public convenience init(concurrentAt directory: String, config: StoreConfig) throws {
        var options = LogOptions(durability: .always)
        options.metricsFactory = config.groupCommitTally
        self.init(log: try Log.open(at: directory, options: options))
    }

    public func makeAppender() throws -> Appender { Appender(log: log) }

    public final class Appender: ConcurrentAppender {
        let log: Log
        init(log: Log) { self.log = log }

        @inline(__always)
        public func appendOne(_ events: EventChunk.Events, _ j: Int) throws {
            try log.appendBatch { (batch: inout BatchBuilder) throws in
                let event = events[j]
                try batch.append(stream: event.stream, type: event.type, data: event.payload)
            }
        }

        public func close() throws {}
    }
}
