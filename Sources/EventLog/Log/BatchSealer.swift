import Crypto

import struct Foundation.Data

/// Seals one batch of an encrypted log as it is built (Format.md §5.1): the
/// batch builder encodes each event's record with its payload in the clear
/// and a seal group, and `seal` then encrypts each group's payloads in place
/// with AES-256-GCM under its data key (one nonce and tag per group),
/// computes the records' checksums over the ciphertext and appends the
/// seal table.
///
/// **Groups.** Each data key's records go into groups of about
/// `groupTargetBytes` of payload, in record order: a group is closed once
/// it holds that much, and the key's next record opens another. A point
/// read opens the one group holding its record (`SealedBatch.openGroup`),
/// a few KiB, instead of every payload of the batch.
///
/// Data keys a batch needs that do not exist yet are created and synced to
/// the key store before the batch is written (`KeyRing.currentKeys`).
struct BatchSealer {
    /// A group is closed once its payloads reach this many bytes.
    static let groupTargetBytes = 4096
    /// The most bytes sealing one record can add to its batch beyond
    /// `Record.checkedBound`: its seal group field, a group of the seal
    /// table, and the table's count.
    static let recordBoundExtra = Record.sealedExtraBytes + SealTable.groupBytes + SealTable.countBytes

    let ring: KeyRing
    /// The distinct scope names of the batch, in order of first use.
    private var names: [[UInt8]] = []
    private var indexOfName: [[UInt8]: Int] = [:]
    /// Per seal group: its scope name's index in `names`, and its payload bytes so far.
    private var nameOfGroup: [Int] = []
    private var groupBytes: [Int] = []
    /// The open group of each name (by its index in `names`): where its next record goes.
    private var openGroup: [UInt32] = []
    /// The key of the records sealed as forgotten (`forgottenGroup`), and
    /// their open group; `nameOfGroup` names them `Self.forgottenName`.
    private var shredded: (id: UInt32, key: SymmetricKey)?
    private var openForgottenGroup: UInt32?
    private static let forgottenName = -1
    /// The sealed records of the batch, in order.
    private var records: [(parts: Record.SealedParts, position: UInt64, group: UInt32)] = []

    init(ring: KeyRing) { self.ring = ring }

    /// True when no record of the batch is sealed yet.
    var isEmpty: Bool { records.isEmpty }

    /// The seal group of the next event of `stream` (its scope's data key;
    /// a new group when the scope's open one is full).
    mutating func group(forStream stream: UnsafeRawBufferPointer) -> UInt32 {
        let nameIndex: Int
        if ring.scope == .log {
            if names.isEmpty {
                names.append([])
                openGroup.append(newGroup(name: 0))
            }
            nameIndex = 0
        } else {
            let name = Array(ring.scope.scopeName(of: stream))
            if let known = indexOfName[name] {
                nameIndex = known
            } else {
                nameIndex = names.count
                names.append(name)
                indexOfName[name] = nameIndex
                openGroup.append(newGroup(name: nameIndex))
            }
        }
        if groupBytes[Int(openGroup[nameIndex])] >= Self.groupTargetBytes { openGroup[nameIndex] = newGroup(name: nameIndex) }
        return openGroup[nameIndex]
    }

    /// The seal group of the next record to be sealed as forgotten, under
    /// `key` (a key the key store records as forgotten and does not hold:
    /// `KeyRing.shreddedKey()`): what an import gives the events an export
    /// calls forgotten, so they read as forgotten again. Every such record
    /// of a batch takes the same key.
    mutating func forgottenGroup(under key: (id: UInt32, key: SymmetricKey)) -> UInt32 {
        shredded = key
        if let open = openForgottenGroup, groupBytes[Int(open)] < Self.groupTargetBytes { return open }
        let group = newGroup(name: Self.forgottenName)
        openForgottenGroup = group
        return group
    }

    private mutating func newGroup(name: Int) -> UInt32 {
        nameOfGroup.append(name)
        groupBytes.append(0)
        return UInt32(nameOfGroup.count - 1)
    }

    mutating func add(_ parts: Record.SealedParts, position: UInt64, group: UInt32) {
        records.append((parts, position, group))
        groupBytes[Int(group)] += parts.payloadEnd - parts.payloadStart
    }

    /// The bytes `seal` appends: the seal table.
    var tableBytes: Int { nameOfGroup.count * SealTable.groupBytes + SealTable.countBytes }

    /// Encrypts the payloads of `buffer` (a batch header's room, then the
    /// records area) group by group, stores the records' checksums and
    /// appends the seal table.
    mutating func seal(
        _ buffer: inout ByteBuffer, basePosition: UInt64, recordCount: UInt32, firstTimestamp: Timestamp
    ) throws(EventLogError) {
        let keys = try ring.currentKeys(for: names)
        var table = ByteWriter()
        // One scratch for every group's plaintext; each group gathers and
        // scatters its members (the records naming it, in order) in one pass.
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(groupBytes.max() ?? 0)
        for group in nameOfGroup.indices {
            let name = nameOfGroup[group]
            guard let groupKey = name == Self.forgottenName ? shredded : keys[name] else {
                throw .invalidArgument("a seal group of forgotten records has no key")
            }
            let (keyID, key) = groupKey
            plaintext.removeAll(keepingCapacity: true)
            for i in records.indices where records[i].group == UInt32(group) {
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
            let base = buffer.base
            ciphertext.withUnsafeBytes { (source: UnsafeRawBufferPointer) in
                guard let source = source.baseAddress else { return }
                var from = 0
                for i in records.indices where records[i].group == UInt32(group) {
                    let parts = records[i].parts
                    let count = parts.payloadEnd - parts.payloadStart
                    (base + parts.payloadStart).copyMemory(from: source + from, byteCount: count)
                    from += count
                }
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
        table.le(UInt32(nameOfGroup.count))
        table.bytes.withUnsafeBytes { buffer.append($0) }
    }
}
