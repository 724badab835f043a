import Crypto

import struct Foundation.Data

/// Seals one batch of an encrypted log as it is built (Format.md §5.1): the
/// batch builder encodes each event's record with its payload in the clear
/// and a seal group (one per data key in the batch), and `seal` then
/// encrypts each group's payloads in place with AES-256-GCM under its data
/// key (one nonce and tag per group, so a batch of one key costs one seal),
/// computes the records' checksums over the ciphertext and appends the
/// seal table.
///
/// Data keys a batch needs that do not exist yet are created and synced to
/// the key store before the batch is written (`KeyRing.currentKeys`).
struct BatchSealer {
    let ring: KeyRing
    /// The scope name of each seal group, by group index.
    private var names: [[UInt8]] = []
    private var groupOfName: [[UInt8]: UInt32] = [:]
    /// The sealed records of the batch, in order.
    private var records: [(parts: Record.SealedParts, position: UInt64, group: UInt32)] = []

    init(ring: KeyRing) { self.ring = ring }

    /// True when no record of the batch is sealed yet.
    var isEmpty: Bool { records.isEmpty }

    /// The seal group of an event of `stream` (its scope's data key).
    mutating func group(forStream stream: UnsafeRawBufferPointer) -> UInt32 {
        let scopeName = ring.scope.scopeName(of: stream)
        if ring.scope == .log {
            if names.isEmpty { names.append([]) }
            return 0
        }
        let name = Array(scopeName)
        if let group = groupOfName[name] { return group }
        let group = UInt32(names.count)
        names.append(name)
        groupOfName[name] = group
        return group
    }

    mutating func add(_ parts: Record.SealedParts, position: UInt64, group: UInt32) {
        records.append((parts, position, group))
    }

    /// The bytes `seal` appends: the seal table.
    var tableBytes: Int { names.count * SealTable.groupBytes + SealTable.countBytes }

    /// Encrypts the payloads of `buffer` (a batch header's room, then the
    /// records area) group by group, stores the records' checksums and
    /// appends the seal table.
    mutating func seal(
        _ buffer: inout ByteBuffer, basePosition: UInt64, recordCount: UInt32, firstTimestamp: Timestamp
    ) throws(EventLogError) {
        let keys = try ring.currentKeys(for: names)
        var table = ByteWriter()
        for (group, (keyID, key)) in keys.enumerated() {
            let members = records.indices.filter { records[$0].group == UInt32(group) }
            var plaintext: [UInt8] = []
            plaintext.reserveCapacity(members.reduce(0) { $0 + records[$1].parts.payloadEnd - records[$1].parts.payloadStart })
            for i in members {
                let parts = records[i].parts
                plaintext.append(contentsOf: UnsafeRawBufferPointer(start: buffer.base + parts.payloadStart, count: parts.payloadEnd - parts.payloadStart))
            }
            let nonce = AES.GCM.Nonce()
            let aad = SealTable.additionalData(
                logID: ring.logID, basePosition: basePosition, recordCount: recordCount, keyID: keyID, group: UInt32(group))
            let box: AES.GCM.SealedBox
            do { box = try AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: aad) } catch {
                throw .invalidArgument("cannot seal a batch: \(error)")
            }
            let ciphertext = box.ciphertext
            guard ciphertext.count == plaintext.count, box.tag.count == SealTable.tagBytes else {
                throw .invalidArgument("AES-GCM returned \(ciphertext.count) bytes of ciphertext for \(plaintext.count)")
            }
            var from = ciphertext.startIndex
            for i in members {
                let parts = records[i].parts
                let count = parts.payloadEnd - parts.payloadStart
                ciphertext[from..<(from + count)].withUnsafeBytes { source in
                    if let source = source.baseAddress { (buffer.base + parts.payloadStart).copyMemory(from: source, byteCount: count) }
                }
                from += count
            }
            table.le(keyID)
            table.raw(nonce.withUnsafeBytes { Array($0) })
            table.raw(Array(box.tag))
        }
        for record in records {
            // Offsets in `buffer` are from the frame's start; the records
            // area starts after the header, the CRC field is where encode put it.
            Record.storeChecksum(
                buffer.base, crcOffset: record.parts.crcOffset, end: record.parts.payloadEnd, position: record.position,
                firstTimestamp: firstTimestamp)
        }
        table.le(UInt32(names.count))
        table.bytes.withUnsafeBytes { buffer.append($0) }
    }
}
