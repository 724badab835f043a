extension Duration {
    /// The whole nanoseconds of this duration (what the relay's clocks and JetStream's
    /// configuration count), clamped to `Int64`.
    var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let scaled = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if scaled.overflow { return seconds < 0 ? .min : .max }
        return scaled.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }

    /// This duration in seconds, as the NATS client takes it.
    var timeInterval: Double { Double(wholeNanoseconds) / 1e9 }
}
