/// The streams-scale workload: very many distinct streams (one per
/// aggregate), each with 1 to 3 events of ~100 bytes of payload. Not part of
/// WORKLOAD.md; the harness's `--streams-scale` phase group uses it to
/// measure what a large stream table costs (open time, memory, stream reads,
/// appends with expected versions).
///
/// Everything is a pure function of (seed, stream number, version), so the
/// expected result of any read can be computed without keeping per-stream
/// state, even for 10 million streams:
///
/// - stream `k` (0 ≤ k < S) is named `aggregate-` + k in 10 zero-padded
///   digits (20 bytes: longer than the 15 bytes Swift keeps inline in a
///   `String`, as real aggregate ids such as UUIDs are);
/// - it has `1 + h(k) % 3` events (h: splitmix64 of the seed mixed with k);
/// - the event at version v has type `Created` (v = 0) or `Changed` and a
///   JSON payload of 90…110 bytes that begins with `{` and ends with `}`,
///   drawn from splitmix64 seeded with (seed, k, v).
///
/// Load order: three passes; pass p appends version p of every stream that
/// has more than p events, the streams of a pass in a scrambled order
/// (`k = (a·i + b_p) mod S`, a prime: a bijection), so that stream keys
/// arrive in no sorted order, as new aggregate ids do.
public struct AggregateWorkload: Sendable {
    public let streams: Int
    public let seed: UInt64
    /// Events of the load (Σ of every stream's count).
    public let loadEvents: Int
    /// Logical bytes of the load.
    public let loadBytes: UInt64

    public static let defaultSeed: UInt64 = 45
    public static let namePrefix = "aggregate-"
    public static let nameDigits = 10
    public static let nameBytes = 20
    public static let typeBytes = 7
    public static let minPayloadBytes = 90
    public static let maxPayloadBytes = 110
    static let multiplier: UInt64 = 1_000_000_007

    public init(streams: Int, seed: UInt64 = AggregateWorkload.defaultSeed) {
        precondition(streams >= 1 && streams < 10_000_000_000 && UInt64(streams) % Self.multiplier != 0)
        self.streams = streams
        self.seed = seed
        var events = 0
        var bytes: UInt64 = 0
        for k in 0..<streams {
            let count = Self.initialCount(k, seed: seed)
            events += count
            for v in 0..<count { bytes += UInt64(Self.eventBytes(k, UInt32(v), seed: seed)) }
        }
        loadEvents = events
        loadBytes = bytes
    }

    @inline(__always)
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var rng = SplitMix64(seed: a ^ (b &* 0x9E37_79B9_7F4A_7C15))
        return rng.next()
    }

    @inline(__always)
    static func initialCount(_ k: Int, seed: UInt64) -> Int { 1 + Int(mix(seed, UInt64(k)) % 3) }

    /// The seed of the payload of (k, v).
    @inline(__always)
    static func eventSeed(_ k: Int, _ v: UInt32, seed: UInt64) -> UInt64 {
        mix(seed ^ 0xA66E_6A7E, UInt64(k) << 32 | UInt64(v))
    }

    @inline(__always)
    static func payloadLength(_ k: Int, _ v: UInt32, seed: UInt64) -> Int {
        var rng = SplitMix64(seed: eventSeed(k, v, seed: seed))
        return minPayloadBytes + Int(rng.next() % UInt64(maxPayloadBytes - minPayloadBytes + 1))
    }

    @inline(__always)
    static func eventBytes(_ k: Int, _ v: UInt32, seed: UInt64) -> Int {
        nameBytes + typeBytes + payloadLength(k, v, seed: seed)
    }

    /// Events stream `k` has after the load (1…3).
    public func initialCount(ofStream k: Int) -> Int { Self.initialCount(k, seed: seed) }

    /// The payload length of stream `k`'s event at version `v`.
    public func payloadLength(stream k: Int, version v: UInt32) -> Int { Self.payloadLength(k, v, seed: seed) }

    /// Logical bytes (name + type + payload) of stream `k`'s event at version `v`.
    public func eventBytes(stream k: Int, version v: UInt32) -> Int { Self.eventBytes(k, v, seed: seed) }

    /// The stream pass `pass` visits `i`-th.
    @inline(__always)
    public func stream(pass: Int, index i: Int) -> Int {
        let s = UInt64(streams)
        let offset = Self.mix(seed ^ 0x5CA7, UInt64(pass)) % s
        return Int((Self.multiplier % s &* UInt64(i) % s &+ offset) % s)
    }

    /// Writes stream `k`'s name into `buffer` (≥ 20 bytes); returns its length (20).
    @inline(__always)
    public static func writeName(_ k: Int, into buffer: UnsafeMutableRawPointer) -> Int {
        let prefix: StaticString = "aggregate-"
        buffer.copyMemory(from: prefix.utf8Start, byteCount: 10)
        var v = k
        var i = nameBytes - 1
        while i >= 10 {
            buffer.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ v % 10), toByteOffset: i, as: UInt8.self)
            v /= 10
            i -= 1
        }
        return nameBytes
    }

    /// The stream number of a name written by `writeName`, or nil.
    public static func streamNumber(of name: UnsafeRawBufferPointer) -> Int? {
        guard name.count == nameBytes else { return nil }
        var k = 0
        for i in 10..<nameBytes {
            let d = name[i]
            guard d >= 48 && d <= 57 else { return nil }
            k = k * 10 + Int(d - 48)
        }
        return k
    }
}

/// Produces the events of an `AggregateWorkload`: the load in its order
/// (`next()`), or any single (stream, version) (`produce`). Each writes the
/// event's name and payload into buffers allocated once by `init` and
/// lends them until the following call; nothing is allocated per event.
public struct AggregateGenerator: ~Copyable {
    public let workload: AggregateWorkload
    let nameBuffer: UnsafeMutableRawPointer
    let payloadBuffer: UnsafeMutableRawPointer
    /// Load order: the pass and index of the next stream to visit.
    var pass = 0
    var index = 0

    public private(set) var position: UInt64 = 0
    public private(set) var streamNumber = 0
    public private(set) var version: UInt32 = 0
    var payloadLength = 0
    /// Load events produced by `next()`.
    public private(set) var produced = 0

    static let words: [StaticString] = [
        "deposit", "withdrawal", "transfer", "fee", "interest", "refund", "hold", "release",
        "north", "south", "east", "west", "daily", "monthly", "card", "wire",
    ]

    public init(workload: AggregateWorkload) {
        self.workload = workload
        nameBuffer = .allocate(byteCount: 32, alignment: 8)
        payloadBuffer = .allocate(byteCount: 256, alignment: 8)
    }

    deinit {
        nameBuffer.deallocate()
        payloadBuffer.deallocate()
    }

    public var stream: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nameBuffer, count: AggregateWorkload.nameBytes) }
    public var type: UnsafeRawBufferPointer {
        let text: StaticString = version == 0 ? "Created" : "Changed"
        return UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }
    public var payload: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: payloadBuffer, count: payloadLength) }
    public var logicalBytes: Int { AggregateWorkload.nameBytes + AggregateWorkload.typeBytes + payloadLength }

    /// True while the load has events left.
    public var hasNext: Bool { produced < workload.loadEvents }

    /// The load's next event (position = its index in the load).
    public mutating func next() {
        precondition(hasNext)
        while true {
            if index == workload.streams {
                pass += 1
                index = 0
            }
            let k = workload.stream(pass: pass, index: index)
            index += 1
            if workload.initialCount(ofStream: k) > pass {
                produce(stream: k, version: UInt32(pass), position: UInt64(produced))
                produced += 1
                return
            }
        }
    }

    /// Stream `k`'s event at `version`, to be appended at `position`.
    public mutating func produce(stream k: Int, version v: UInt32, position: UInt64) {
        self.position = position
        streamNumber = k
        version = v
        _ = AggregateWorkload.writeName(k, into: nameBuffer)
        var rng = SplitMix64(seed: AggregateWorkload.eventSeed(k, v, seed: workload.seed))
        let length = AggregateWorkload.minPayloadBytes
            + Int(rng.next() % UInt64(AggregateWorkload.maxPayloadBytes - AggregateWorkload.minPayloadBytes + 1))
        // {"id":"aggregate-0000000042","v":1,"amount":12345,"note":"…"}
        var n = 0
        put("{\"id\":\"", &n)
        (payloadBuffer + n).copyMemory(from: nameBuffer, byteCount: AggregateWorkload.nameBytes)
        n += AggregateWorkload.nameBytes
        put("\",\"v\":", &n)
        n += writeDecimal(v, minimumDigits: 1, to: payloadBuffer + n)
        put(",\"amount\":", &n)
        n += writeDecimal(UInt32(truncatingIfNeeded: rng.next() % 1_000_000), minimumDigits: 1, to: payloadBuffer + n)
        put(",\"note\":\"", &n)
        var first = true
        while n + 2 < length {
            if !first {
                payloadBuffer.storeBytes(of: UInt8(ascii: " "), toByteOffset: n, as: UInt8.self)
                n += 1
            }
            first = false
            put(Self.words[Int(rng.next() % UInt64(Self.words.count))], &n)
        }
        n = length - 2
        payloadBuffer.storeBytes(of: UInt8(ascii: "\""), toByteOffset: n, as: UInt8.self)
        payloadBuffer.storeBytes(of: UInt8(ascii: "}"), toByteOffset: n + 1, as: UInt8.self)
        payloadLength = length
    }

    @inline(__always)
    private func put(_ literal: StaticString, _ n: inout Int) {
        (payloadBuffer + n).copyMemory(from: literal.utf8Start, byteCount: literal.utf8CodeUnitCount)
        n += literal.utf8CodeUnitCount
    }
}
