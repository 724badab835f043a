import Workload

/// The key-value peers' encodings (peers/README.md, "Record encoding"; the
/// same bytes as `rec_encode`, `skey_encode` and `be64` in common.h).
enum PeerRecord {
    /// Largest encoded record: u8 + stream + u32 + u8 + type + payload.
    static let maxBytes = 1 + EventGenerator.maxStreamBytes + 4 + 1 + EventGenerator.maxTypeBytes + EventGenerator.maxPayloadBytes

    /// `u8 len(stream) ‖ stream ‖ u32 BE version ‖ u8 len(type) ‖ type ‖ payload`; returns its length.
    @inline(__always)
    static func encode(_ event: GeneratedEvent, into out: UnsafeMutableRawPointer) -> Int {
        var o = 0
        out.storeBytes(of: UInt8(event.stream.count), as: UInt8.self)
        o += 1
        (out + o).copyMemory(from: event.stream.baseAddress!, byteCount: event.stream.count)
        o += event.stream.count
        (out + o).storeBytes(of: event.version.bigEndian, as: UInt32.self)
        o += 4
        (out + o).storeBytes(of: UInt8(event.type.count), as: UInt8.self)
        o += 1
        (out + o).copyMemory(from: event.type.baseAddress!, byteCount: event.type.count)
        o += event.type.count
        (out + o).copyMemory(from: event.payload.baseAddress!, byteCount: event.payload.count)
        return o + event.payload.count
    }

    /// A decoded record: lengths, the version and the payload.
    struct View {
        var streamCount: Int
        var typeCount: Int
        var version: UInt32
        var data: UnsafeRawBufferPointer
    }

    @inline(__always)
    static func decode(_ bytes: UnsafeRawPointer?, count: Int) throws -> View {
        guard let bytes, count >= 6 else { throw BenchError("record of \(count) bytes is too short") }
        let streamCount = Int(bytes.load(as: UInt8.self))
        var o = 1 + streamCount
        guard o + 5 <= count else { throw BenchError("record is cut inside its header") }
        let version = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self))
        o += 4
        let typeCount = Int(bytes.load(fromByteOffset: o, as: UInt8.self))
        o += 1 + typeCount
        guard o <= count else { throw BenchError("record is cut inside its type") }
        return View(streamCount: streamCount, typeCount: typeCount, version: version,
                    data: UnsafeRawBufferPointer(start: bytes + o, count: count - o))
    }

    /// Big-endian position (key of the events table).
    @inline(__always)
    static func storePosition(_ position: UInt64, into out: UnsafeMutableRawPointer) {
        out.storeBytes(of: position.bigEndian, as: UInt64.self)
    }

    /// `stream ‖ 0x00 ‖ u32 BE version` (key of the streams index); returns its length.
    @inline(__always)
    static func encodeStreamKey(_ stream: UnsafeRawBufferPointer, version: UInt32, into out: UnsafeMutableRawPointer) -> Int {
        out.copyMemory(from: stream.baseAddress!, byteCount: stream.count)
        (out + stream.count).storeBytes(of: 0, as: UInt8.self)
        (out + stream.count + 1).storeBytes(of: version.bigEndian, as: UInt32.self)
        return stream.count + 5
    }
}
