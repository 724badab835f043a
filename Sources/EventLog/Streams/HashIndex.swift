/// An open-addressing map from a 64-bit hash (already well mixed: FNV-1a)
/// to a 32-bit value, without the cost of `Hasher`: one multiply-shift to
/// pick a slot, linear probing. Values are stored + 1 so 0 means empty.
///
/// The stream table keeps one (hash → first stream id) and every batch one
/// (hash → slot); each lookup is on the append path, once per event.
struct HashIndex: Sendable {
    private var keys: [UInt64]
    private var values: [UInt32]
    private var mask: Int
    private(set) var count = 0
    /// Slots used since the last `removeAll`, so clearing costs what was used.
    private var used: [Int32] = []

    /// An empty map; with `capacity` 0 it allocates nothing until the first `set`.
    init(capacity: Int = 0) {
        guard capacity > 0 else {
            keys = []
            values = []
            mask = 0
            return
        }
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt32](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) private func start(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    @inline(__always) subscript(key: UInt64) -> UInt32? {
        if values.isEmpty { return nil }
        var i = start(key)
        while true {
            let v = values[i]
            if v == 0 { return nil }
            if keys[i] == key { return v - 1 }
            i = (i + 1) & mask
        }
    }

    /// Sets the value of `key` (inserting it when absent).
    mutating func set(_ key: UInt64, _ value: UInt32) {
        if (count + 1) * 2 > keys.count { grow() }
        var i = start(key)
        while values[i] != 0 && keys[i] != key { i = (i + 1) & mask }
        if values[i] == 0 {
            count += 1
            used.append(Int32(i))
        }
        keys[i] = key
        values[i] = value + 1
    }

    /// Empties the map, keeping its storage; costs the number of keys it held.
    mutating func removeAll() {
        if used.count * 4 < keys.count {
            for i in used { values[Int(i)] = 0 }
        } else {
            for i in values.indices { values[i] = 0 }
        }
        used.removeAll(keepingCapacity: true)
        count = 0
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let size = max(16, keys.count * 2)
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt32](repeating: 0, count: size)
        mask = size - 1
        count = 0
        used.removeAll(keepingCapacity: true)
        for i in oldValues.indices where oldValues[i] != 0 { set(oldKeys[i], oldValues[i] - 1) }
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
