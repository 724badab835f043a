/// Key compaction's map (Format.md §4.1): for each key of the events in a
/// **window** of the sealed segments, the position of its latest event
/// there, built by one walk of the window at the start of a pass (Kafka's
/// cleaner builds its offset map the same way). Keys are kept as 128-bit
/// digests, not their bytes: memory is about `bytesPerKey` a key whatever
/// its length, and two keys share a digest with a probability near
/// 2⁻¹²⁸ × keys², never by accident in practice.
///
/// The map holds at most `capacity` keys: the window ends at the first
/// event whose key did not fit, and the walk goes on to the end of the
/// sealed segments noting only keys the map holds. Any such map is sound
/// for the rule, because each position in it is a real event of its key:
/// an event followed by a later event of its key in the map is dead in the
/// whole log too, and a tombstone that is its key's latest in the map is
/// either its key's latest in the log or followed by a later event of it.
/// A key left out only stays longer: the next pass's window starts where
/// this one ended (`Scavenger`).
struct KeyMap {
    /// What a key costs in the map, about: a 16-byte digest and an 8-byte
    /// position in a hash table kept at most three-quarters full, with its
    /// slack (`LogOptions.keyMapMemoryBytes`).
    static let bytesPerKey = 48

    /// The most keys one pass maps under `options` (`keyMapMemoryBytes`, or a test's limit).
    static func capacity(_ options: LogOptions) -> Int {
        options.keyMapKeyLimit ?? max(1, options.keyMapMemoryBytes / bytesPerKey)
    }

    let capacity: Int
    private(set) var latest: [KeyDigest: UInt64] = [:]

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Notes the event of key `key` at `position` (walked in position
    /// order). False, noting nothing, when the key is new and the map is full.
    mutating func note(_ key: UnsafeRawBufferPointer, at position: UInt64) -> Bool {
        let digest = KeyDigest(key)
        if latest.count >= capacity, latest[digest] == nil { return false }
        latest[digest] = max(latest[digest] ?? 0, position)
        return true
    }

    /// The position of the latest event of `key` in the window (nil: none).
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
