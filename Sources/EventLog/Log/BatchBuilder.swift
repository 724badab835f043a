/// Builds one batch inside `Log.appendBatch`: each `append` encodes an event
/// straight into the writer's reused buffer, so building a batch allocates
/// nothing per event.
///
/// The events become visible and durable together when the closure returns,
/// or not at all when it throws. It runs under the writer lock: keep it
/// short, and do not call the log from inside it.
///
/// An `append` that throws (a broken limit) leaves the batch exactly as it
/// was: every check runs before anything is encoded, so a caller may catch
/// the error, stop adding, and still commit the events before it.
public struct BatchBuilder: ~Copyable {
    var buffer: ByteBuffer
    /// Position of the first event of the batch.
    public let basePosition: UInt64
    let now: Timestamp
    var firstTimestamp: Timestamp = 0
    var maxTimestamp: Timestamp = .min
    var count: UInt32 = 0

    init(buffer: consuming ByteBuffer, basePosition: UInt64, now: Timestamp) {
        self.buffer = buffer
        self.basePosition = basePosition
        self.now = now
        self.buffer.count = BatchHeader.size  // room for the header, filled in last
    }

    /// The position the next appended event will get.
    public var nextPosition: UInt64 { basePosition &+ UInt64(count) }
    /// Events appended so far.
    public var eventCount: Int { Int(count) }

    /// Appends an event given as borrowed bytes (no copies beyond the encoding).
    /// - Parameters:
    ///   - stream: the stream name's UTF-8 bytes, 1 to `Limits.maxStreamNameBytes`.
    ///   - type: the event type's UTF-8 bytes, at most `Limits.maxTypeBytes`.
    ///   - timestamp: when nil, the time the batch was started.
    /// - Returns: the event's position.
    @discardableResult
    public mutating func append(
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        metadata: EventMetadata? = nil, timestamp: Timestamp? = nil, version: UInt64 = 0
    ) throws(EventLogError) -> UInt64 {
        guard stream.count >= 1, stream.count <= Limits.maxStreamNameBytes else {
            if stream.count == 0 { throw .invalidArgument("stream name is empty") }
            throw .limitExceeded(limit: "stream name bytes", value: stream.count, maximum: Limits.maxStreamNameBytes)
        }
        guard type.count <= Limits.maxTypeBytes else {
            throw .limitExceeded(limit: "event type bytes", value: type.count, maximum: Limits.maxTypeBytes)
        }
        guard Int(count) < Limits.maxBatchRecords else {
            throw .limitExceeded(limit: "events in a batch", value: Int(count) + 1, maximum: Limits.maxBatchRecords)
        }
        var metadataLength = 0
        var storedMetadata: EventMetadata? = nil
        if let metadata, !metadata.isEmpty {
            metadataLength = try MetadataCoding.encodedLength(metadata)
            storedMetadata = metadata
        }
        let recordBound = Varint.maxBytes + 4 + 1 + 2 * Varint.maxBytes + 2 + stream.count + type.count
            + Varint.maxBytes + metadataLength + data.count
        guard data.count <= Limits.maxRecordBytes, recordBound <= Limits.maxRecordBytes + 64 else {
            throw .limitExceeded(limit: "record bytes", value: recordBound, maximum: Limits.maxRecordBytes)
        }
        guard buffer.count + recordBound <= Limits.maxBatchBytes else {
            throw .limitExceeded(limit: "batch bytes", value: buffer.count + recordBound, maximum: Limits.maxBatchBytes)
        }
        let time = timestamp ?? now
        if count == 0 { firstTimestamp = time }
        if time > maxTimestamp { maxTimestamp = time }
        let position = basePosition &+ UInt64(count)
        Record.encode(
            into: &buffer, position: position, firstTimestamp: firstTimestamp, timestamp: time, version: version,
            stream: stream, type: type, metadata: storedMetadata, metadataLength: metadataLength, data: data)
        count += 1
        return position
    }

    /// Appends a `NewEvent`.
    @discardableResult
    public mutating func append(_ event: NewEvent) throws(EventLogError) -> UInt64 {
        var stream = event.stream
        var type = event.type
        var result: Result<UInt64, EventLogError> = .failure(.closed)
        stream.withUTF8 { streamBytes in
            type.withUTF8 { typeBytes in
                event.data.withUnsafeBytes { data in
                    do throws(EventLogError) {
                        result = .success(try append(
                            stream: UnsafeRawBufferPointer(streamBytes), type: UnsafeRawBufferPointer(typeBytes),
                            data: data, metadata: event.metadata, timestamp: event.timestamp, version: event.version))
                    } catch {
                        result = .failure(error)
                    }
                }
            }
        }
        return try result.get()
    }

    consuming func finish() -> ByteBuffer { buffer }
}
