/// A chunk of generated events laid out flat, filled before a timed region
/// so that generating events is not timed (as `append_n` in
/// `peers/src/common.h` does with its chunks of 10,000).
///
/// Event `i`'s stream, type and payload sit back to back in one byte arena;
/// a table of fixed-size entries holds their offsets and lengths. Both are
/// allocated once by `init`; `fill` allocates nothing.
public struct EventChunk: ~Copyable {
    /// The chunk size the peers use.
    public static let standardCapacity = 10_000

    public let capacity: Int
    /// Events held (after `fill`).
    public private(set) var count = 0
    /// Sum of the held events' logical bytes.
    public private(set) var logicalBytes: UInt64 = 0
    @usableFromInline let entries: UnsafeMutablePointer<Entry>
    @usableFromInline let arena: UnsafeMutableRawPointer

    @usableFromInline
    struct Entry {
        @usableFromInline var position: UInt64
        @usableFromInline var offset: UInt32
        @usableFromInline var version: UInt32
        @usableFromInline var streamLength: UInt8
        @usableFromInline var typeLength: UInt8
        @usableFromInline var payloadLength: UInt16
    }

    public init(capacity: Int = EventChunk.standardCapacity) {
        precondition(capacity > 0)
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
        arena = .allocate(byteCount: capacity * EventGenerator.maxEventBytes, alignment: 16)
    }

    deinit {
        entries.deallocate()
        arena.deallocate()
    }

    /// Replaces the chunk's events with the generator's next `count` events.
    public mutating func fill(from generator: inout EventGenerator, count: Int) {
        precondition(count >= 0 && count <= capacity)
        var offset = 0
        var bytes: UInt64 = 0
        for i in 0..<count {
            generator.next()
            let stream = generator.stream, type = generator.type, payload = generator.payload
            precondition(payload.count <= EventGenerator.maxPayloadBytes)
            var p = arena + offset
            p.copyMemory(from: stream.baseAddress!, byteCount: stream.count)
            p += stream.count
            p.copyMemory(from: type.baseAddress!, byteCount: type.count)
            p += type.count
            p.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
            (entries + i).initialize(to: Entry(
                position: generator.position, offset: UInt32(offset), version: generator.version,
                streamLength: UInt8(stream.count), typeLength: UInt8(type.count), payloadLength: UInt16(payload.count)))
            offset += stream.count + type.count + payload.count
            bytes += UInt64(stream.count + type.count + payload.count)
        }
        self.count = count
        self.logicalBytes = bytes
    }

    /// Empties the chunk (for `append(stream:type:payload:position:version:)`).
    public mutating func removeAll() {
        count = 0
        logicalBytes = 0
    }

    /// Adds one event after the ones held, copying its bytes into the
    /// arena (the streams-scale phases build their chunks event by event).
    public mutating func append(
        stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
        position: UInt64, version: UInt32
    ) {
        let size = stream.count + type.count + payload.count
        precondition(count < capacity && size <= EventGenerator.maxEventBytes && stream.count <= 255 && type.count <= 255)
        var offset = 0
        if count > 0 {
            let last = entries[count - 1]
            offset = Int(last.offset) + Int(last.streamLength) + Int(last.typeLength) + Int(last.payloadLength)
        }
        var p = arena + offset
        if let base = stream.baseAddress { p.copyMemory(from: base, byteCount: stream.count) }
        p += stream.count
        if let base = type.baseAddress { p.copyMemory(from: base, byteCount: type.count) }
        p += type.count
        if let base = payload.baseAddress { p.copyMemory(from: base, byteCount: payload.count) }
        (entries + count).initialize(to: Entry(
            position: position, offset: UInt32(offset), version: version,
            streamLength: UInt8(stream.count), typeLength: UInt8(type.count), payloadLength: UInt16(payload.count)))
        count += 1
        logicalBytes += UInt64(size)
    }

    /// An unsafe, copyable view of the events, for use inside closures (a
    /// batch builder's). Valid while this chunk lives and is not refilled.
    @inlinable public var events: Events { Events(entries: entries, arena: arena, count: count) }

    /// See `EventChunk.events`.
    public struct Events: @unchecked Sendable {
        @usableFromInline let entries: UnsafeMutablePointer<Entry>
        @usableFromInline let arena: UnsafeMutableRawPointer
        public let count: Int

        @inlinable init(entries: UnsafeMutablePointer<Entry>, arena: UnsafeMutableRawPointer, count: Int) {
            self.entries = entries
            self.arena = arena
            self.count = count
        }

        /// Event `i` of the chunk (0-based in the chunk, not its position).
        @inlinable @inline(__always)
        public subscript(i: Int) -> GeneratedEvent {
            let entry = entries[i]
            let streamStart = arena + Int(entry.offset)
            let typeStart = streamStart + Int(entry.streamLength)
            let payloadStart = typeStart + Int(entry.typeLength)
            return GeneratedEvent(
                position: entry.position, version: entry.version,
                stream: UnsafeRawBufferPointer(start: streamStart, count: Int(entry.streamLength)),
                type: UnsafeRawBufferPointer(start: typeStart, count: Int(entry.typeLength)),
                payload: UnsafeRawBufferPointer(start: payloadStart, count: Int(entry.payloadLength)))
        }
    }
}

/// One generated event, borrowed from an `EventChunk`.
public struct GeneratedEvent {
    public let position: UInt64
    public let version: UInt32
    public let stream: UnsafeRawBufferPointer
    public let type: UnsafeRawBufferPointer
    public let payload: UnsafeRawBufferPointer

    @inlinable init(
        position: UInt64, version: UInt32, stream: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
        payload: UnsafeRawBufferPointer
    ) {
        self.position = position
        self.version = version
        self.stream = stream
        self.type = type
        self.payload = payload
    }

    @inlinable public var logicalBytes: Int { stream.count + type.count + payload.count }
}
