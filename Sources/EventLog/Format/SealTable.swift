/// The seal table of a sealed batch (Format.md §5.1): the last bytes of its
/// records area (decompressed), after its last record.
///
///     per seal group g (0 ..< count), 32 bytes:
///         u32   key id      the data key (`eventlog.keys`, §16) that sealed group g
///         12    nonce       AES-256-GCM nonce, random
///         16    tag         AES-256-GCM tag
///     u32   count           seal groups, ≥ 1
///
/// Group g's ciphertext is the concatenation, in record order, of the
/// sealed payloads of the batch's records whose seal group field is g; its
/// additional authenticated data is `SealTable.additionalData`.
struct SealTable {
    static let groupBytes = 32
    static let countBytes = 4
    static let nonceBytes = 12
    static let tagBytes = 16

    /// Where the records end (the table starts) in a records area of `length` bytes.
    let recordsEnd: Int
    let count: Int
    /// The table's bytes (groups then count).
    let bytes: UnsafeRawBufferPointer

    /// The table at the end of `area`; nil when it cannot be one (too short, a count of 0 or past the area).
    init?(area: UnsafeRawBufferPointer) {
        guard area.count >= Self.countBytes else { return nil }
        let count = Int(area.loadLE(at: area.count - Self.countBytes, as: UInt32.self))
        guard count >= 1, count <= (area.count - Self.countBytes) / Self.groupBytes else { return nil }
        let start = area.count - Self.countBytes - count * Self.groupBytes
        self.recordsEnd = start
        self.count = count
        self.bytes = UnsafeRawBufferPointer(rebasing: area[start...])
    }

    func keyID(of group: Int) -> UInt32 { bytes.loadLE(at: group * Self.groupBytes, as: UInt32.self) }
    func nonce(of group: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[(group * Self.groupBytes + 4)..<(group * Self.groupBytes + 16)])
    }
    func tag(of group: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[(group * Self.groupBytes + 16)..<(group * Self.groupBytes + 32)])
    }

    /// The additional authenticated data of a group: the log id (16 bytes),
    /// the batch's base position (u64), its record count (u32), the key id
    /// (u32) and the group's index (u32), 36 bytes: a sealed payload moved to
    /// another log, position, batch or group fails its tag.
    static func additionalData(logID: [UInt8], basePosition: UInt64, recordCount: UInt32, keyID: UInt32, group: UInt32) -> [UInt8] {
        var bytes = logID
        bytes.reserveCapacity(36)
        withUnsafeBytes(of: basePosition.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: recordCount.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: keyID.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: group.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}
