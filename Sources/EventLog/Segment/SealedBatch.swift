import Crypto

import struct Foundation.Data
import protocol Foundation.DataProtocol

/// A data key as the key store knows it (`SealKeys.dataKey(_:)`).
enum DataKeyLookup {
    case key(SymmetricKey)
    /// Forgotten (`Log.forgetStream(_:)`): the events it sealed read as forgotten.
    case forgotten
    /// Not in the key store: lost, an error (never taken as forgotten).
    case missing
}

/// The keys a reader opens sealed batches with (Format.md §5.1, §16). The
/// log's key ring (`KeyRing`, in the Log layer) is the one implementation;
/// the protocol lets the segment layer's readers use it.
protocol SealKeys: AnyObject, Sendable {
    /// The log id (part of every seal group's additional authenticated data).
    var logID: [UInt8] { get }
    func dataKey(_ id: UInt32) -> DataKeyLookup
    /// How many times data keys were forgotten: a cache of opened batches
    /// keys its entries with it (`BatchCache.Key.keyEpoch`).
    var forgetEpoch: UInt32 { get }
}

/// Opens a sealed batch's records area in place (a reader's own copy,
/// never the mapped file): each seal group is decrypted under its data key
/// and its records' seal group fields become `Record.openedGroup`, or
/// `Record.forgottenGroup` when the key was forgotten, so `Record.decode`
/// lends the event's data and metadata (or an event marked forgotten).
///
/// The caller verified the frame's checksum first: a payload that then
/// fails its tag was sealed under another key or changed together with
/// its checksum (`sealBroken`), never plain damage.
enum SealedBatch {
    /// Opens `area` (the whole records area, seal table included, of the
    /// batch `header` at `batchOffset` of `file`).
    static func open(
        _ area: UnsafeMutableRawBufferPointer, header: BatchHeader, keys: any SealKeys, file: String, batchOffset: Int
    ) throws(EventLogError) {
        let readable = UnsafeRawBufferPointer(area)
        guard let table = SealTable(area: readable) else {
            throw .corruption(file: file, offset: Int64(batchOffset), reason: "sealed batch has no seal table")
        }
        // The sealed records: where each one's seal group field and payload end are.
        var groupFields: [Int] = []
        var payloadEnds: [Int] = []
        groupFields.reserveCapacity(Int(header.recordCount))
        payloadEnds.reserveCapacity(Int(header.recordCount))
        var at = 0
        do throws(RecordDefect) {
            for _ in 0..<header.recordCount {
                guard let (field, end) = try Record.sealedPayload(
                    UnsafeRawBufferPointer(rebasing: readable[0..<table.recordsEnd]), at: &at)
                else { continue }
                guard Int(readable.loadLE(at: field, as: UInt32.self)) < table.count else {
                    throw RecordDefect(reason: "a record names a seal group the seal table does not have", offset: field)
                }
                groupFields.append(field)
                payloadEnds.append(end)
            }
        } catch {
            throw .corruption(file: file, offset: Int64(batchOffset), reason: "sealed batch: \(error.reason)")
        }
        guard at == table.recordsEnd else {
            throw .corruption(file: file, offset: Int64(batchOffset), reason: "sealed batch: bytes between its last record and its seal table")
        }
        // Each record's group, read before any group is opened (opening
        // overwrites the group fields).
        let groups = groupFields.map { Int(readable.loadLE(at: $0, as: UInt32.self)) }
        guard let base = area.baseAddress else { return }
        var ciphertext: [UInt8] = []
        ciphertext.reserveCapacity(header.storedLength)
        for group in 0..<table.count {
            // The members are the sealed records naming the group, in record order.
            ciphertext.removeAll(keepingCapacity: true)
            for i in groups.indices where groups[i] == group {
                ciphertext.append(contentsOf: UnsafeRawBufferPointer(start: base + groupFields[i] + 4, count: payloadEnds[i] - groupFields[i] - 4))
            }
            guard let plaintext = try openGroup(
                group, ciphertext: ciphertext, table: table, header: header, keys: keys, file: file, batchOffset: batchOffset)
            else {
                for i in groups.indices where groups[i] == group {
                    area.storeBytes(of: Record.forgottenGroup.littleEndian, toByteOffset: groupFields[i], as: UInt32.self)
                }
                continue
            }
            // The plaintext back over the members' payloads, in the same order.
            plaintext.withUnsafeBytes { (source: UnsafeRawBufferPointer) in
                guard let source = source.baseAddress else { return }
                var from = 0
                for i in groups.indices where groups[i] == group {
                    let start = groupFields[i] + 4
                    let count = payloadEnds[i] - start
                    (base + start).copyMemory(from: source + from, byteCount: count)
                    from += count
                    area.storeBytes(of: Record.openedGroup.littleEndian, toByteOffset: groupFields[i], as: UInt32.self)
                }
            }
        }
    }

    /// The plaintext of seal group `group` of a batch, from its
    /// `ciphertext` (its members' payloads, in record order); nil when its
    /// data key was forgotten. A missing key is `dataKeyMissing`; a tag that
    /// fails, `sealBroken` (the caller tells damage apart by the checksums).
    static func openGroup(
        _ group: Int, ciphertext: some DataProtocol, table: SealTable, header: BatchHeader, keys: any SealKeys, file: String,
        batchOffset: Int
    ) throws(EventLogError) -> Data? {
        let keyID = table.keyID(of: group)
        switch keys.dataKey(keyID) {
        case .missing:
            throw .dataKeyMissing(file: file, offset: Int64(batchOffset), keyID: keyID)
        case .forgotten:
            return nil
        case .key(let key):
            let aad = SealTable.additionalData(
                logID: keys.logID, basePosition: header.basePosition, recordCount: header.recordCount, keyID: keyID,
                group: UInt32(group))
            let plaintext: Data
            do {
                let box = try AES.GCM.SealedBox(
                    nonce: AES.GCM.Nonce(data: table.nonce(of: group)), ciphertext: ciphertext, tag: table.tag(of: group))
                plaintext = try AES.GCM.open(box, using: key, authenticating: aad)
            } catch {
                throw .sealBroken(file: file, offset: Int64(batchOffset), keyID: keyID)
            }
            guard plaintext.count == ciphertext.count else {
                throw .sealBroken(file: file, offset: Int64(batchOffset), keyID: keyID)
            }
            return plaintext
        }
    }

    /// The key id of each record's seal group in a sealed records area that
    /// is not opened (`SegmentRewriter`: which records a forgotten key sealed).
    static func keyID(ofGroup group: UInt32, in area: UnsafeRawBufferPointer) -> UInt32? {
        guard let table = SealTable(area: area), Int(group) < table.count else { return nil }
        return table.keyID(of: Int(group))
    }
}
