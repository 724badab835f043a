extension Duration {
    /// The whole nanoseconds of this duration (what GCD timers, swift-metrics
    /// timers and JetStream's configuration take), clamped to `Int64`.
    /// Public to the project's own modules only (the NATS relay and inbox).
    @_spi(EventLogTool) public var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let scaled = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if scaled.overflow { return seconds < 0 ? .min : .max }
        return scaled.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }

    /// The whole microseconds of this duration (what timestamps count), clamped to `Int64`.
    var wholeMicroseconds: Int64 { wholeNanoseconds / 1000 }

    /// This duration in seconds, as `Date`, `TimeInterval` and the NATS client take it.
    @_spi(EventLogTool) public var timeInterval: Double { Double(wholeNanoseconds) / 1e9 }
}
