import struct Foundation.UUID

/// The streams one batch touches, while it is built: their versions before
/// the batch, the versions it assigns, and expectations to check. Reused
/// from batch to batch by the writer, so building allocates nothing per
/// event once grown (a new stream allocates its name once).
struct BatchStreams: Sendable {
    struct Slot: Sendable {
        /// The stream's id, nil for a stream this batch creates.
        var id: UInt32?
        /// The name of a stream this batch creates.
        var newName: String?
        var hash: UInt64
        /// The version expectations are checked against (nil: no stream).
        var versionBefore: UInt64?
        var deletion: StreamDeletion
        var nextVersion: UInt64
        var firstVersion: UInt64
        /// Events (not markers) of this stream in the batch.
        var count: UInt32 = 0
        var expectation: ExpectedVersion?
        /// True when every event of this stream in the batch has an event id.
        var allHaveIDs = true
        /// The event ids of this stream's events in the batch, in order.
        var ids = EventIDDigest()
        /// The next slot with the same hash (index + 1; 0: none).
        var sameHash: Int = 0

        /// The digest a stream's state keeps of this batch's ids for the
        /// stream (`StreamState.lastAppendIDDigest`): 0 when an event has none.
        var idDigest: UInt64 { allHaveIDs ? ids.value : 0 }
    }

    /// A record of the batch, in order.
    struct Item: Sendable {
        var slot: Int32
        /// Offset of the record in the batch's records area.
        var recordOffset: UInt32
        var version: UInt64
        var eventID: UUID?
        /// A stream marker (deletion, truncation): not an event of the stream.
        var marker: StreamMarker?
    }

    var slots: [Slot] = []
    /// Hash → the newest slot with that hash; others chain through `sameHash`.
    var slotByHash = HashIndex()
    var items: [Item] = []
    /// The batch's type table (Format.md §5.3), while it is built.
    var types = TypeTableBuilder()
    /// Scratch of `BatchBuilder.nameTypesInRecords` (reused).
    var recordsCopy: [UInt8] = []
    /// The length of the last type table written: the room the next
    /// batch keeps for its own (kept across batches).
    var lastTableLength = 0
    /// The hashes the last `prefetch` of this batch computed, of the
    /// streams of the records it was told come next, from record
    /// `prefetchFirstRecord` of the batch on (reused).
    private var prefetchHashes: [UInt64] = []
    private var prefetchFirstRecord = 0

    mutating func reset() {
        slots.removeAll(keepingCapacity: true)
        slotByHash.removeAll()
        items.removeAll(keepingCapacity: true)
        types.reset()
        prefetchHashes.removeAll(keepingCapacity: true)
    }

    /// Starts loading what `slot(for:table:)` will read of the `count`
    /// streams whose hashes (`StreamTable.hash`) `hashOf` gives: each one's
    /// hash slot in the table, then its state (`StreamTable.prefetch`).
    /// Done for a batch's streams before their events are appended, the
    /// lookups then wait on memory about once in all instead of twice per
    /// stream. Changes nothing the batch holds.
    /// `firstRecord`: the index in the batch of the record the first of
    /// them is for (the hashes are then hints for those records' lookups,
    /// `slot(for:table:record:)`).
    mutating func prefetch(count: Int, table: StreamTable, firstRecord: Int, hashOf: (Int) -> UInt64) {
        prefetchHashes.removeAll(keepingCapacity: true)
        prefetchHashes.reserveCapacity(count)
        prefetchFirstRecord = firstRecord
        for i in 0..<count { prefetchHashes.append(hashOf(i)) }
        prefetchHashes.withUnsafeBufferPointer { table.prefetch($0) }
    }

    /// The slot of the stream named `name`, created from the table's state
    /// when new to the batch (a stream only an older level of the table has
    /// is loaded into its current generation: the batch will change it).
    ///
    /// `record`: the index in the batch of the record the lookup is for.
    /// When a `prefetch` hashed that record's stream, its hash is tried
    /// first: a slot or a state found under it has this very name (names
    /// are compared), so it is the stream's whatever the caller's bytes
    /// were at the prefetch; when it finds none, the name is hashed again,
    /// and a new slot or state only ever takes that hash.
    mutating func slot(
        for name: UnsafeRawBufferPointer, table: StreamTable, record: Int? = nil
    ) throws(EventLogError) -> Int {
        let hint = record.flatMap(prefetchedHash(forRecord:))
        var hash = hint ?? table.hash(name)
        if let index = existingSlot(name, hash: hash, table: table) { return index }
        var fields = table.appendFields(name, hash: hash)
        if fields == nil, hint != nil {
            let named = table.hash(name)
            if named != hash {
                hash = named
                if let index = existingSlot(name, hash: hash, table: table) { return index }
                fields = table.appendFields(name, hash: hash)
            }
        }
        var slot: Slot
        // Read in place; a stream only an older level has is loaded into the
        // current generation first, and read there.
        if fields == nil, try table.mutate({ (t) throws(EventLogError) in try t.findOrLoad(name, hash: hash) }) != nil {
            fields = table.appendFields(name, hash: hash)
        }
        if let state = fields {
            slot = Slot(
                id: state.id, newName: nil, hash: hash,
                versionBefore: StreamState.versionForExpectations(nextVersion: state.nextVersion, deletion: state.deletion),
                deletion: state.deletion, nextVersion: state.nextVersion, firstVersion: state.nextVersion)
        } else {
            slot = Slot(
                id: nil, newName: String(decoding: name, as: UTF8.self), hash: hash, versionBefore: nil, deletion: .none,
                nextVersion: 0, firstVersion: 0)
        }
        slot.sameHash = slotByHash[hash].map { Int($0) + 1 } ?? 0
        slots.append(slot)
        slotByHash.set(hash, UInt32(slots.count - 1))
        return slots.count - 1
    }

    /// The hash `prefetch` computed for the stream of the batch's record
    /// `record`, if it computed one.
    @inline(__always) private func prefetchedHash(forRecord record: Int) -> UInt64? {
        let i = record &- prefetchFirstRecord
        return i >= 0 && i < prefetchHashes.count ? prefetchHashes[i] : nil
    }

    /// The slot of this batch named `name` among those with `hash`, if any.
    @inline(__always) private func existingSlot(_ name: UnsafeRawBufferPointer, hash: UInt64, table: StreamTable) -> Int? {
        guard let first = slotByHash[hash] else { return nil }
        var candidate = Int(first) + 1
        while candidate != 0 {
            let index = candidate - 1
            if slotName(index, table: table, equals: name) { return index }
            candidate = slots[index].sameHash
        }
        return nil
    }

    private func slotName(_ index: Int, table: StreamTable, equals name: UnsafeRawBufferPointer) -> Bool {
        if let id = slots[index].id { return table.withState(id) { $0.name.utf8Equals(name) } }
        return slots[index].newName?.utf8Equals(name) ?? false
    }

    func name(of index: Int, table: StreamTable) -> String {
        if let newName = slots[index].newName { return newName }
        return table.withState(slots[index].id ?? 0) { $0.name }
    }
}
