/// A growable byte buffer that owns its memory and is reused across batches,
/// so that encoding a batch allocates nothing once it has grown to size.
///
/// `~Copyable`: one owner, freed once. One of the few audited types that hold
/// a raw pointer; writers ask for room with `reserve` before storing.
struct ByteBuffer: ~Copyable, @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes in use, from `base`.
    var count: Int = 0

    /// A buffer of `capacity` bytes; with 0, nothing is allocated until the first `reserve`.
    init(capacity: Int) {
        if capacity <= 0 {
            self.capacity = 0
            // Never dereferenced: every write reserves (and so allocates) first.
            self.base = ByteBuffer.unallocated
        } else {
            self.capacity = max(capacity, 64)
            self.base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
        }
    }

    private static var unallocated: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 16)! }

    deinit { if capacity > 0 { base.deallocate() } }

    /// Makes room for `additional` more bytes after `count`.
    @inline(__always) mutating func reserve(_ additional: Int) {
        if count + additional > capacity { grow(to: count + additional) }
    }

    private mutating func grow(to needed: Int) {
        var newCapacity = max(capacity * 2, 64)
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if capacity > 0 {
            newBase.copyMemory(from: base, byteCount: count)
            base.deallocate()
        }
        base = newBase
        capacity = newCapacity
    }

    /// The next free byte (valid after `reserve`).
    @inline(__always) var tail: UnsafeMutableRawPointer { base + count }

    @inline(__always) mutating func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 { tail.copyMemory(from: source, byteCount: bytes.count) }
        count += bytes.count
    }

    @inline(__always) mutating func appendByte(_ byte: UInt8) {
        reserve(1)
        tail.storeBytes(of: byte, as: UInt8.self)
        count += 1
    }

    @inline(__always) mutating func appendVarint(_ value: UInt64) {
        reserve(Varint.maxBytes)
        count += Varint.write(value, to: tail)
    }

    @inline(__always) mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        tail.storeLE(value, at: 0)
        count += MemoryLayout<T>.size
    }

    /// The bytes in use.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Shrinks the buffer back to `limit` bytes of capacity when a huge batch grew it.
    mutating func trim(to limit: Int) {
        guard capacity > limit, count <= limit, limit > 0 else { return }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: limit, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = limit
    }
}

/// A small byte-array builder for the cold structures (file headers, index
/// files, markers).
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func le<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    /// Appends the CRC32C of everything written so far.
    mutating func appendChecksum() { le(CRC32C.checksum(bytes)) }
}

/// Reads little-endian fields from a byte array (cold structures only).
struct ByteReader {
    let bytes: [UInt8]

    func le<T: FixedWidthInteger>(_ offset: Int, _ type: T.Type) -> T {
        bytes.withUnsafeBytes { $0.loadLE(at: offset, as: T.self) }
    }

    func slice(_ offset: Int, _ count: Int) -> [UInt8] { Array(bytes[offset..<(offset + count)]) }

    /// True when the last 4 bytes are the CRC32C of the bytes before them.
    func checksumHolds(length: Int) -> Bool {
        guard length >= 4, length <= bytes.count else { return false }
        let stored = le(length - 4, UInt32.self)
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<(length - 4)])) }
        return stored == computed
    }
}
