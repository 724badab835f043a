/// A blocked bloom filter over 64-bit hashes (Format.md §14.1, "Bloom
/// filter"): an array of 64-byte blocks; each key sets 6 bits inside one
/// block, so a query touches one cache line.
///
/// A key's block and bits come from its hash remixed (`remix`: the hashes
/// are FNV-1a, whose low bits spread poorly):
///
///     x     = remix(hash)
///     block = ((x >> 32) * block count) >> 32
///     h     = x & 0xFFFF_FFFF                     (32 bits)
///     6 times: h = (h * 0x9E37_79B9) mod 2^32;  bit = h >> 23   (0...511)
///
/// Bit `b` of a block is bit `b & 7` of its byte `b >> 3`. At 10 bits a key
/// the false-positive rate is about 1%.
///
/// A value type: a writer builds one in memory; readers query the bytes in
/// place with `mayContain(_:in:)`.
struct BloomFilter {
    static let blockBytes = 64
    static let blockBits = 512
    static let bitsPerKey = 10
    /// Bits set per key, all in the key's block.
    static let probes = 6
    /// The most blocks a filter has (the count is a u32 on disk).
    static let maxBlocks = Int(UInt32.max)

    /// The blocks: `blockCount × 64` bytes.
    private(set) var bytes: [UInt8]

    var blockCount: Int { bytes.count / Self.blockBytes }

    /// A filter sized for `keys` keys: max(1, ⌈keys × 10 / 512⌉) blocks; none for no keys.
    static func blockCount(forKeys keys: Int) -> Int {
        guard keys > 0 else { return 0 }
        let bits = keys > Int.max / bitsPerKey ? Int.max : keys * bitsPerKey
        return min(maxBlocks, max(1, bits / blockBits + (bits % blockBits == 0 ? 0 : 1)))
    }

    init(blockCount: Int) {
        bytes = [UInt8](repeating: 0, count: max(0, min(blockCount, Self.maxBlocks)) * Self.blockBytes)
    }

    init(expectedKeys: Int) {
        self.init(blockCount: Self.blockCount(forKeys: expectedKeys))
    }

    /// The hash with its bits spread: MurmurHash3's 64-bit finalizer (two
    /// multiplications by odd constants, each between xor-shifts).
    @inline(__always) static func remix(_ hash: UInt64) -> UInt64 {
        var x = hash
        x ^= x >> 33
        x &*= 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x &*= 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }

    /// Calls `body` with the byte offset and bit mask of each of the key's 6 bits.
    @inline(__always)
    static func forEachBit(_ hash: UInt64, blockCount: Int, _ body: (Int, UInt8) -> Bool) -> Bool {
        let x = remix(hash)
        let start = blockStart(remixed: x, blockCount: blockCount)
        var h = UInt32(truncatingIfNeeded: x)
        for _ in 0..<probes {
            h &*= 0x9E37_79B9
            let bit = Int(h >> 23)
            if !body(start + (bit >> 3), UInt8(1) << UInt8(bit & 7)) { return false }
        }
        return true
    }

    /// The byte offset of the block that holds the key's bits: all that a
    /// lookup of the key reads.
    @inline(__always) static func blockStart(_ hash: UInt64, blockCount: Int) -> Int {
        blockStart(remixed: remix(hash), blockCount: blockCount)
    }

    @inline(__always) private static func blockStart(remixed x: UInt64, blockCount: Int) -> Int {
        Int(truncatingIfNeeded: ((x >> 32) &* UInt64(blockCount)) >> 32) * blockBytes
    }

    /// Adds a key. A filter without blocks cannot hold one: the caller gives it at least one.
    mutating func insert(_ hash: UInt64) {
        precondition(blockCount > 0, "a bloom filter needs a block before it takes a key")
        let blocks = blockCount
        bytes.withUnsafeMutableBufferPointer { bytes in
            _ = Self.forEachBit(hash, blockCount: blocks) { offset, mask in
                bytes[offset] |= mask
                return true
            }
        }
    }

    func mayContain(_ hash: UInt64) -> Bool {
        bytes.withUnsafeBytes { Self.mayContain(hash, in: $0) }
    }

    /// False when a filter stored in `filter` (a whole number of blocks)
    /// certainly lacks the key; an empty filter lacks every key.
    @inline(__always)
    static func mayContain(_ hash: UInt64, in filter: UnsafeRawBufferPointer) -> Bool {
        let blocks = filter.count / blockBytes
        guard blocks > 0 else { return false }
        return forEachBit(hash, blockCount: blocks) { offset, mask in filter[offset] & mask != 0 }
    }
}
