/// The workload's pseudo-random generator (WORKLOAD.md, "Event generator").
///
/// Every draw is part of the specification: the generator's output, and so
/// every check value, depends on the exact sequence of `next()` calls.
public struct SplitMix64: Sendable {
    public var state: UInt64

    @inlinable public init(seed: UInt64) { state = seed }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seeds the phases use (WORKLOAD.md, "Phases").
public enum WorkloadSeed {
    /// The event generator (A1, A2, A3).
    public static let events: UInt64 = 42
    /// R2's random streams.
    public static let streams: UInt64 = 43
    /// R3's random positions.
    public static let positions: UInt64 = 44
}
