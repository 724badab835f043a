/// FNV-1a, 64 bits: the workload's digest (WORKLOAD.md, "Check values").
public struct FNV1a64: Sendable {
    public static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325
    public static let prime: UInt64 = 0x0000_0100_0000_01B3

    public var value: UInt64 = FNV1a64.offsetBasis

    @inlinable public init() {}

    @inlinable @inline(__always)
    public mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* FNV1a64.prime
    }

    @inlinable
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for byte in bytes { h = (h ^ UInt64(byte)) &* FNV1a64.prime }
        value = h
    }

    /// Adds the ASCII decimal digits of `number` (no padding, no sign).
    @inlinable
    public mutating func add(decimal number: UInt64) {
        var divisor: UInt64 = 1
        while number / divisor >= 10 { divisor &*= 10 }
        while divisor > 0 {
            add(byte: UInt8(truncatingIfNeeded: 48 &+ (number / divisor) % 10))
            divisor /= 10
        }
    }

    /// Adds one event as the check values define it:
    /// `stream 0x00 decimal(version) 0x00 type 0x00 payload 0x0A`.
    @inlinable
    public mutating func add(
        stream: UnsafeRawBufferPointer, version: UInt64, type: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) {
        add(stream)
        add(byte: 0)
        add(decimal: version)
        add(byte: 0)
        add(type)
        add(byte: 0)
        add(payload)
        add(byte: 0x0A)
    }

    /// The digest as 16 lowercase hex digits, as the peers print it.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// The digest and logical bytes of the first `count` events of the standard
/// generator (seed 42): what `gen_dump N` prints.
public func workloadCheck(count: Int) -> (digest: FNV1a64, logicalBytes: UInt64) {
    var generator = EventGenerator()
    var digest = FNV1a64()
    var bytes: UInt64 = 0
    for _ in 0..<count {
        generator.next()
        digest.add(
            stream: generator.stream, version: UInt64(generator.version), type: generator.type,
            payload: generator.payload)
        bytes &+= UInt64(generator.logicalBytes)
    }
    return (digest, bytes)
}
