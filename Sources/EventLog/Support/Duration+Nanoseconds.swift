extension Duration {
    /// The whole nanoseconds of this duration (what GCD timers and swift-metrics
    /// timers take), clamped to `Int64`.
    var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let scaled = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if scaled.overflow { return seconds < 0 ? .min : .max }
        return scaled.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }

    /// The whole microseconds of this duration (what timestamps count), clamped to `Int64`.
    var wholeMicroseconds: Int64 { wholeNanoseconds / 1000 }

    /// This duration in seconds, as `Date` and `TimeInterval` take it.
    var timeInterval: Double { Double(wholeNanoseconds) / 1e9 }
}
