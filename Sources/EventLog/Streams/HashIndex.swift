import CSystemCalls

/// An open-addressing map from a 64-bit hash (already well mixed: FNV-1a)
/// to a 32-bit value, without the cost of `Hasher`: one multiply-shift to
/// pick a slot, linear probing. Values are stored + 1 so 0 means empty.
///
/// The stream table keeps one (hash → first stream id) and every batch one
/// (hash → slot); each lookup is on the append path, once per event.
struct HashIndex: Sendable {
    /// Key and value side by side: a lookup touches one cache line.
    private struct Slot: Sendable {
        var key: UInt64
        var value: UInt32  // + 1; 0: empty
    }

    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0
    /// Slots used since the last `removeAll`, so clearing costs what was used.
    private var used: [Int32] = []

    /// An empty map; with `capacity` 0 it allocates nothing until the first `set`.
    init(capacity: Int = 0) {
        guard capacity > 0 else {
            slots = []
            mask = 0
            return
        }
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(key: 0, value: 0), count: size)
        mask = size - 1
    }

    @inline(__always) private func start(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    @inline(__always) subscript(key: UInt64) -> UInt32? {
        slots.withUnsafeBufferPointer { slots -> UInt32? in
            if slots.isEmpty { return nil }
            var i = start(key)
            while true {
                let slot = slots[i]
                if slot.value == 0 { return nil }
                if slot.key == key { return slot.value - 1 }
                i = (i + 1) & mask
            }
        }
    }

    /// Starts loading the cache line where a lookup of `key` begins, so a
    /// lookup soon after does not wait on memory: a caller with many keys
    /// to look up asks for all their lines first, and their misses overlap
    /// instead of following each other. A hint: it never faults.
    @inline(__always) func prefetch(_ key: UInt64) {
        slots.withUnsafeBufferPointer { slots in
            guard let base = slots.baseAddress else { return }
            // A slot is 16 bytes at a 16-byte boundary: it never straddles two lines.
            eventlog_prefetch(base + start(key), 1)
        }
    }

    /// Sets the value of `key` (inserting it when absent).
    mutating func set(_ key: UInt64, _ value: UInt32) {
        if (count + 1) * 2 > slots.count { grow() }
        var i = start(key)
        while slots[i].value != 0 && slots[i].key != key { i = (i + 1) & mask }
        if slots[i].value == 0 {
            count += 1
            used.append(Int32(i))
        }
        slots[i] = Slot(key: key, value: value + 1)
    }

    /// Calls `body` with every key and its value, in slot order.
    func forEach(_ body: (UInt64, UInt32) throws -> Void) rethrows {
        for slot in slots where slot.value != 0 { try body(slot.key, slot.value - 1) }
    }

    /// Empties the map, keeping its storage; costs the number of keys it held.
    mutating func removeAll() {
        if used.count * 4 < slots.count {
            for i in used { slots[Int(i)].value = 0 }
        } else {
            for i in slots.indices { slots[i].value = 0 }
        }
        used.removeAll(keepingCapacity: true)
        count = 0
    }

    private mutating func grow() {
        let old = slots
        let size = max(16, slots.count * 2)
        slots = [Slot](repeating: Slot(key: 0, value: 0), count: size)
        mask = size - 1
        count = 0
        used.removeAll(keepingCapacity: true)
        for slot in old where slot.value != 0 { set(slot.key, slot.value - 1) }
    }
}

extension String {
    /// True when the string's UTF-8 bytes equal `bytes`, without copying the string.
    @inline(__always) func utf8Equals(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let utf8 = self.utf8
        guard utf8.count == bytes.count else { return false }
        if let equal = utf8.withContiguousStorageIfAvailable({ stored -> Bool in
            guard let a = stored.baseAddress, let b = bytes.baseAddress else { return stored.isEmpty }
            return memcmp(a, b, stored.count) == 0
        }) {
            return equal
        }
        return utf8.elementsEqual(bytes)
    }
}

#if canImport(Glibc)
import Glibc
#endif
