/// The standard workload's event generator (WORKLOAD.md, "Event generator"),
/// byte for byte the reference `gen_next` of `peers/src/common.h`.
///
/// Each `next()` writes one event's stream id and payload into buffers
/// allocated once by `init` and lends them, with the type, as
/// `UnsafeRawBufferPointer`s that stay valid until the following `next()`.
/// Producing an event allocates nothing.
///
/// `~Copyable`: it owns its buffers and the per-stream version counters.
/// Not thread-safe; use one generator per thread.
public struct EventGenerator: ~Copyable {
    /// Streams `order-0` … `order-9999`.
    public static let streamCount = 10_000
    public static let types = [
        "OrderCreated", "ItemAdded", "ItemRemoved", "AddressChanged",
        "PaymentAuthorized", "OrderShipped", "OrderDelivered", "OrderCancelled",
    ]
    public static let currencies = ["EUR", "USD", "GBP"]
    public static let words = [
        "express", "gift", "fragile", "priority", "standard", "return",
        "discount", "coupon", "loyalty", "member", "warehouse", "north",
        "south", "east", "west", "central", "blue", "red", "green", "black",
        "white", "small", "medium", "large", "box", "pallet", "envelope",
        "signature", "required", "leave", "door", "reception",
    ]
    /// Largest payload the spec allows (L = 180 + 0…40).
    public static let maxPayloadBytes = 220
    /// Largest stream id (`order-9999`).
    public static let maxStreamBytes = 10
    /// Largest type (`PaymentAuthorized`).
    public static let maxTypeBytes = 17
    /// Upper bound of one event's logical bytes.
    public static let maxEventBytes = maxStreamBytes + maxTypeBytes + maxPayloadBytes

    @usableFromInline var rng: SplitMix64
    /// Per-stream version counters (`streamCount` entries).
    @usableFromInline let versions: UnsafeMutablePointer<UInt32>
    @usableFromInline let streamBuffer: UnsafeMutableRawPointer
    /// Room for the prefix with any 32-bit version plus the note's overshoot.
    @usableFromInline let payloadBuffer: UnsafeMutableRawPointer
    @usableFromInline let text: TextTables

    /// Position of the current event (the one the buffers hold); the first
    /// `next()` produces position 0.
    public private(set) var position: UInt64 = 0
    /// How many events were produced.
    public private(set) var produced: UInt64 = 0
    /// Stream number `k` of the current event.
    public private(set) var streamNumber: UInt32 = 0
    /// Version of the current event within its stream (0-based).
    public private(set) var version: UInt32 = 0
    public private(set) var typeIndex: Int = 0
    @usableFromInline var streamLength = 0
    @usableFromInline var payloadLength = 0

    static let payloadCapacity = 512

    public init(seed: UInt64 = WorkloadSeed.events) {
        rng = SplitMix64(seed: seed)
        versions = .allocate(capacity: Self.streamCount)
        versions.initialize(repeating: 0, count: Self.streamCount)
        streamBuffer = .allocate(byteCount: 32, alignment: 8)
        payloadBuffer = .allocate(byteCount: Self.payloadCapacity, alignment: 8)
        text = TextTables()
        // "order-" never changes: written once.
        for (i, byte) in "order-".utf8.enumerated() { streamBuffer.storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
    }

    deinit {
        versions.deallocate()
        streamBuffer.deallocate()
        payloadBuffer.deallocate()
        text.deallocate()
    }

    /// The current event's stream id (`order-<k>`).
    @inlinable public var stream: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: streamBuffer, count: streamLength)
    }
    /// The current event's type.
    @inlinable public var type: UnsafeRawBufferPointer { text.type(typeIndex) }
    /// The current event's payload (180…220 bytes of JSON).
    @inlinable public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: payloadBuffer, count: payloadLength)
    }
    /// len(stream) + len(type) + len(payload).
    @inlinable public var logicalBytes: Int { streamLength + text.typeLength(typeIndex) + payloadLength }

    /// The number of events each stream has so far (its next version).
    public func eventCount(ofStream k: Int) -> UInt32 { versions[k] }

    /// Produces the next event. The draws, in this order, are the spec.
    public mutating func next() {
        let k = UInt32(truncatingIfNeeded: rng.next() % UInt64(Self.streamCount))
        let type = Int(truncatingIfNeeded: rng.next() % 8)
        let customer = UInt32(truncatingIfNeeded: rng.next() % 100_000)
        let sku = UInt32(truncatingIfNeeded: rng.next() % 10_000)
        let quantity = UInt32(truncatingIfNeeded: 1 + rng.next() % 10)
        let cents = UInt32(truncatingIfNeeded: rng.next() % 100_000)
        let currency = Int(truncatingIfNeeded: rng.next() % 3)
        let length = Int(truncatingIfNeeded: 180 + rng.next() % 41)

        position = produced
        produced &+= 1
        streamNumber = k
        version = versions[Int(k)]
        versions[Int(k)] = version &+ 1
        typeIndex = type
        streamLength = 6 + writeDecimal(k, minimumDigits: 1, to: streamBuffer + 6)

        // {"orderId":"order-%u","seq":%u,"customer":"cust-%05u","sku":"SKU-%04u",
        //  "qty":%u,"price":%u.%02u,"currency":"%s","note":"
        var p = payloadBuffer
        p = put("{\"orderId\":\"order-", at: p)
        p += writeDecimal(k, minimumDigits: 1, to: p)
        p = put("\",\"seq\":", at: p)
        p += writeDecimal(version, minimumDigits: 1, to: p)
        p = put(",\"customer\":\"cust-", at: p)
        p += writeDecimal(customer, minimumDigits: 5, to: p)
        p = put("\",\"sku\":\"SKU-", at: p)
        p += writeDecimal(sku, minimumDigits: 4, to: p)
        p = put("\",\"qty\":", at: p)
        p += writeDecimal(quantity, minimumDigits: 1, to: p)
        p = put(",\"price\":", at: p)
        p += writeDecimal(cents / 100, minimumDigits: 1, to: p)
        p.storeBytes(of: UInt8(ascii: "."), as: UInt8.self)
        p += 1
        p += writeDecimal(cents % 100, minimumDigits: 2, to: p)
        p = put(",\"currency\":\"", at: p)
        p = put(text.currency(currency), at: p)
        p = put("\",\"note\":\"", at: p)

        // The note: words until prefix + note + 2 >= L, then cut to L - 2.
        var n = p - payloadBuffer
        var first = true
        while n + 2 < length {
            let word = text.word(Int(truncatingIfNeeded: rng.next() % 32))
            if !first {
                payloadBuffer.storeBytes(of: UInt8(ascii: " "), toByteOffset: n, as: UInt8.self)
                n += 1
            }
            first = false
            (payloadBuffer + n).copyMemory(from: word.baseAddress!, byteCount: word.count)
            n += word.count
        }
        n = length - 2
        payloadBuffer.storeBytes(of: UInt8(ascii: "\""), toByteOffset: n, as: UInt8.self)
        payloadBuffer.storeBytes(of: UInt8(ascii: "}"), toByteOffset: n + 1, as: UInt8.self)
        payloadLength = length
    }

    @inline(__always)
    private func put(_ literal: StaticString, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        p.copyMemory(from: literal.utf8Start, byteCount: literal.utf8CodeUnitCount)
        return p + literal.utf8CodeUnitCount
    }

    @inline(__always)
    private func put(_ bytes: UnsafeRawBufferPointer, at p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        return p + bytes.count
    }
}

/// Writes `value` in decimal, zero-padded to `minimumDigits`; returns the
/// number of bytes written.
@inline(__always)
func writeDecimal(_ value: UInt32, minimumDigits: Int, to p: UnsafeMutableRawPointer) -> Int {
    var digits = 1
    var rest = value
    while rest >= 10 {
        rest /= 10
        digits += 1
    }
    let count = max(digits, minimumDigits)
    var v = value
    var i = count - 1
    while i >= 0 {
        p.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ v % 10), toByteOffset: i, as: UInt8.self)
        v /= 10
        i -= 1
    }
    return count
}

/// The generator's fixed strings (types, currencies, words) copied once into
/// one allocation of fixed-size slots, so that producing an event touches no
/// reference-counted array.
@usableFromInline
struct TextTables {
    static let slot = 32
    static let typeBase = 0
    static let currencyBase = 8
    static let wordBase = 11
    static let slots = 11 + 32

    /// Slot `i` holds its length in byte 0 and the text from byte 1.
    @usableFromInline let storage: UnsafeMutableRawPointer

    init() {
        storage = .allocate(byteCount: Self.slots * Self.slot, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: Self.slots * Self.slot)
        func store(_ strings: [String], at base: Int) {
            for (i, string) in strings.enumerated() {
                let slot = storage + (base + i) * Self.slot
                let bytes = Array(string.utf8)
                precondition(bytes.count < Self.slot)
                slot.storeBytes(of: UInt8(bytes.count), as: UInt8.self)
                bytes.withUnsafeBytes { (slot + 1).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
        store(EventGenerator.types, at: Self.typeBase)
        store(EventGenerator.currencies, at: Self.currencyBase)
        store(EventGenerator.words, at: Self.wordBase)
    }

    func deallocate() { storage.deallocate() }

    @inlinable @inline(__always) func entry(_ slot: Int) -> UnsafeRawBufferPointer {
        let p = storage + slot &* 32
        return UnsafeRawBufferPointer(start: p + 1, count: Int(p.load(as: UInt8.self)))
    }

    @inlinable @inline(__always) func typeLength(_ i: Int) -> Int { Int((storage + i &* 32).load(as: UInt8.self)) }
    @inlinable @inline(__always) func type(_ i: Int) -> UnsafeRawBufferPointer { entry(i) }
    @inline(__always) func currency(_ i: Int) -> UnsafeRawBufferPointer { entry(8 + i) }
    @inline(__always) func word(_ i: Int) -> UnsafeRawBufferPointer { entry(11 + i) }
}
