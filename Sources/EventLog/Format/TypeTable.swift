#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A batch's **type table** (Format.md §5.3, format version 10): the event
/// types of the batch's records, each stored once at the start of the
/// records area, so that a record names its type by a 1-byte index (record
/// flag bit 6) instead of repeating it. A batch of 100 events of a handful
/// of types saves about a type's length per event.
///
/// Layout, at offset 0 of the records area when batch attribute bit 4 is set:
///
///     u8      count T (1 to 255)
///     u16 × T ends: type i's bytes are names[end(i−1) ..< end(i)] (end(−1) = 0)
///     …       names: the types' UTF-8 bytes, end to end
///
/// The records follow it. The table has no checksum of its own: a record
/// that names a type by index extends its own checksum over the type's
/// bytes (Format.md §6), so a point read checks the type it returns with
/// the record, and a scan relies on the frame's. Only a batch stored as is
/// (codec 0, not sealed) has one.
struct TypeTable {
    /// Batch attribute bit 4: the records area starts with a type table.
    static let attribute: UInt16 = 0x0010
    /// The most types one table holds (an index is one byte).
    static let maxTypes = 255
    /// What readers prefetch of a table with the batch header, and touch
    /// of it first: a dozen types of a dozen bytes (the standard workload's
    /// 8 take 117).
    static let typicalBytes = 144

    /// The table's bytes: count, ends, names (empty: no table).
    let bytes: UnsafeRawBufferPointer
    /// Types in the table (0: no table).
    let count: Int
    /// Where the first record starts in the records area (0 without a table).
    var length: Int { bytes.count }

    /// The table of a batch without one.
    static var none: TypeTable { TypeTable(bytes: UnsafeRawBufferPointer(start: nil, count: 0), count: 0) }

    /// Type `index`'s bytes, nil when the table has no such type (an index
    /// past the count, or ends that do not make a type inside the names:
    /// damage, which the record's checksum or the frame's would report).
    @inline(__always) func type(_ index: Int) -> UnsafeRawBufferPointer? {
        guard index < count else { return nil }
        let names = 1 + 2 * count
        let start = index == 0 ? 0 : Int(bytes.loadLE(at: 1 + 2 * (index - 1), as: UInt16.self))
        let end = Int(bytes.loadLE(at: 1 + 2 * index, as: UInt16.self))
        guard start <= end, end - start <= Limits.maxTypeBytes, names + end <= bytes.count else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[(names + start)..<(names + end)])
    }

    /// The type table at the start of `area` (the records area of the batch
    /// `header` describes), or `.none` when the batch has none: its count and
    /// extent (the last end) checked against the area, each type's ends when
    /// it is looked up (`type(_:)`). `guarded`: the table is read under the
    /// SIGBUS guard first (a point or stream read reaches the mapping here),
    /// except the bytes on the page of the batch header, which the reader
    /// read under it already (`Segment.batchHeader(holding:from:bytes:)`).
    /// Defects name offset 0 of the records area.
    @inline(__always)
    static func read(_ area: UnsafeRawBufferPointer, of header: BatchHeader, guarded: Bool) throws(RecordDefect) -> TypeTable {
        guard header.attributes & attribute != 0 else { return .none }
        return try locate(area, guarded: guarded)
    }

    private static func locate(_ area: UnsafeRawBufferPointer, guarded: Bool) throws(RecordDefect) -> TypeTable {
        guard area.count >= 1 + 2 else { throw RecordDefect(reason: "type table runs past the records area", offset: 0) }
        // Under the guard: a typical table at once, more only for a larger
        // one; nothing on the header's page (the area starts right after it).
        var touched = min(area.count, typicalBytes)
        let headerPage = (Int(bitPattern: area.baseAddress) &- BatchHeader.size) >> 12
        let onHeaderPage = (Int(bitPattern: area.baseAddress) &+ touched &- 1) >> 12 == headerPage
        if guarded && !onHeaderPage && !MappedBytes.touch(area, 0..<touched) {
            throw RecordDefect(reason: MappedBytes.unreadableReason, offset: 0)
        }
        let count = Int(area[0])
        guard count >= 1 else { throw RecordDefect(reason: "type table holds no type", offset: 0) }
        let names = 1 + 2 * count
        guard names <= area.count else { throw RecordDefect(reason: "type table runs past the records area", offset: 0) }
        if guarded && names > touched {
            guard MappedBytes.touch(area, touched..<names) else { throw RecordDefect(reason: MappedBytes.unreadableReason, offset: 0) }
            touched = names
        }
        let length = names + Int(area.loadLE(at: names - 2, as: UInt16.self))
        guard length <= area.count else { throw RecordDefect(reason: "type table runs past the records area", offset: 0) }
        if guarded && length > touched && !MappedBytes.touch(area, touched..<length) {
            throw RecordDefect(reason: MappedBytes.unreadableReason, offset: 0)
        }
        return TypeTable(bytes: UnsafeRawBufferPointer(rebasing: area[0..<length]), count: count)
    }

    /// Why the table does not hold (Format.md §5.3: ends that decrease, a
    /// type longer than `Limits.maxTypeBytes`), nil when it does: what
    /// `verify` checks beyond `read`.
    func defect() -> String? {
        var previous = 0
        for i in 0..<count {
            let end = Int(bytes.loadLE(at: 1 + 2 * i, as: UInt16.self))
            guard end >= previous, end - previous <= Limits.maxTypeBytes else { return "type table entry \(i) is impossible" }
            previous = end
        }
        return nil
    }
}

/// The type table of the batch being built (`BatchBuilder`): the distinct
/// types of its records so far, in the order they came. Reused from batch
/// to batch (it lives in the writer's `BatchStreams`), so building a batch
/// allocates nothing once the writer has seen its types.
struct TypeTableBuilder {
    /// The types' bytes end to end.
    private var names: [UInt8] = []
    /// Where each type ends in `names`.
    private var ends: [UInt16] = []
    /// Each type's `fingerprint`: a lookup compares bytes only on a match.
    private var fingerprints: [UInt64] = []
    /// The type bytes the records that got an index (`index(of:)`) leave out.
    private var indexedBytes = 0

    var count: Int { ends.count }
    /// Bytes the table takes in the records area (0 while empty).
    var encodedLength: Int { ends.isEmpty ? 0 : 1 + 2 * ends.count + names.count }
    /// True when the table makes its batch smaller: the type bytes its
    /// records leave out are more than the table's own (Format.md §5.3).
    var pays: Bool { indexedBytes > encodedLength }

    /// The most bytes the table can grow by when `type` joins it.
    @inline(__always) static func growthBound(_ type: UnsafeRawBufferPointer) -> Int { 1 + 2 + type.count }

    mutating func reset() {
        names.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        fingerprints.removeAll(keepingCapacity: true)
        indexedBytes = 0
    }

    /// The length and the first 7 bytes of `type`: the whole type when it
    /// is 7 bytes or shorter.
    @inline(__always)
    private static func fingerprint(_ type: UnsafeRawBufferPointer) -> UInt64 {
        var head: UInt64 = 0
        if type.count >= 8 {
            head = type.loadUnaligned(as: UInt64.self).littleEndian & 0x00FF_FFFF_FFFF_FFFF
        } else {
            for i in 0..<type.count { head |= UInt64(type[i]) << (8 * i) }
        }
        return head << 8 | UInt64(type.count)
    }

    /// The index of `type` in the table for a record that names it so,
    /// adding it when new; nil when the table is full (the record then
    /// stores its type itself).
    @inline(__always)
    mutating func index(of type: UnsafeRawBufferPointer) -> UInt8? {
        guard let found = find(type) else { return nil }
        indexedBytes += type.count
        return found
    }

    @inline(__always)
    private mutating func find(_ type: UnsafeRawBufferPointer) -> UInt8? {
        let print = Self.fingerprint(type)
        for i in 0..<fingerprints.count where fingerprints[i] == print {
            if type.count <= 7 { return UInt8(i) }
            let start = i == 0 ? 0 : Int(ends[i - 1])
            let same = names.withUnsafeBytes { memcmp($0.baseAddress! + start, type.baseAddress!, type.count) == 0 }
            if same { return UInt8(i) }
        }
        guard ends.count < TypeTable.maxTypes, names.count + type.count <= Int(UInt16.max) else { return nil }
        names.append(contentsOf: type)
        ends.append(UInt16(names.count))
        fingerprints.append(print)
        return UInt8(ends.count - 1)
    }

    /// Writes the table (`encodedLength` bytes) at `destination`.
    func write(to destination: UnsafeMutableRawPointer) {
        destination.storeBytes(of: UInt8(ends.count), as: UInt8.self)
        for (i, end) in ends.enumerated() { destination.storeLE(end, at: 1 + 2 * i) }
        let namesAt = 1 + 2 * ends.count
        names.withUnsafeBytes { if let source = $0.baseAddress { (destination + namesAt).copyMemory(from: source, byteCount: $0.count) } }
    }
}
