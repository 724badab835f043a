import struct Foundation.UUID

/// The digest of the event ids one append gave one stream (Format.md §14.4),
/// kept in the stream's state so that a retry is recognised without reading
/// the log: FNV-1a 64 over the ids' 16 bytes (RFC 4122 byte order, as
/// §6.1 stores them), one id after another in append order, then
/// MurmurHash3's 64-bit finalizer; a result of 0 becomes 1, since 0 means
/// "unknown" in a stream's state.
///
/// Ids are added one at a time, as the events are: nothing is allocated.
struct EventIDDigest: Sendable {
    /// FNV-1a 64's running value (its offset basis before any id).
    private var fnv: UInt64 = 0xCBF2_9CE4_8422_2325

    /// Adds the next id.
    @inline(__always) mutating func add(_ id: UUID) {
        var h = fnv
        withUnsafeBytes(of: id.uuid) { bytes in
            for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        fnv = h
    }

    /// Adds the next id, given as its 16 bytes.
    @inline(__always) mutating func add(bytes: UnsafeRawBufferPointer) {
        var h = fnv
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        fnv = h
    }

    /// The digest of the ids added so far: never 0.
    var value: UInt64 {
        // MurmurHash3's 64-bit finalizer, the bloom filter's remix.
        let x = BloomFilter.remix(fnv)
        return x == 0 ? 1 : x
    }

    /// The digest of `ids`, in order.
    static func of(_ ids: some Sequence<UUID>) -> UInt64 {
        var digest = EventIDDigest()
        for id in ids { digest.add(id) }
        return digest.value
    }
}
