/// Key compaction's map (Format.md §4.1): for each key of the events in
/// the sealed segments, the position of its latest event, built by one
/// walk of those segments at the start of a pass (Kafka's cleaner builds
/// its offset map the same way). Keys are kept as 128-bit digests, not
/// their bytes: memory is 32 bytes or so a key whatever its length, and two
/// keys share a digest with a probability near 2⁻¹²⁸ × keys², never by
/// accident in practice.
struct KeyMap {
    private(set) var latest: [KeyDigest: UInt64] = [:]

    /// Notes the event of key `key` at `position` (walked in position order).
    mutating func note(_ key: UnsafeRawBufferPointer, at position: UInt64) {
        latest[KeyDigest(key)] = position
    }

    /// The position of the latest event of `key` in the sealed segments (nil: none).
    func latestPosition(of key: UnsafeRawBufferPointer) -> UInt64? { latest[KeyDigest(key)] }
}

/// A key's 128-bit digest: two 64-bit FNV-1a hashes of its bytes from
/// different offset bases, the second remixed.
struct KeyDigest: Hashable {
    let first: UInt64
    let second: UInt64

    init(_ key: UnsafeRawBufferPointer) {
        var a: UInt64 = 0xCBF2_9CE4_8422_2325
        var b: UInt64 = 0x6C62_272E_07BB_0142
        for byte in key {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        first = a
        second = BloomFilter.remix(b ^ UInt64(key.count))
    }
}
