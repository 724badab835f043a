extension Duration {
    /// The whole nanoseconds of this duration (what GCD timers and swift-metrics
    /// timers take), clamped to `Int64`.
    var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let scaled = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if scaled.overflow { return seconds < 0 ? .min : .max }
        return scaled.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
