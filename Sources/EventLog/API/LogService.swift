import ServiceLifecycle

/// A swift-service-lifecycle `Service` for a log: give it to a
/// `ServiceGroup` beside the HTTP server and the other services, and the log
/// is closed cleanly (indexes written, the clean-shutdown marker written, so
/// the next open skips recovery) when the group shuts down gracefully
/// (SIGTERM, SIGINT) or its task is cancelled.
///
/// The log's background work (the `.interval` flusher, the maintenance
/// schedule of `LogOptions.maintenanceInterval`) runs on threads the log
/// owns from `Log.open` on; `run()` only waits, and closes the log off the
/// cooperative pool (`AsyncLog.close`). Use the log as usual meanwhile.
///
///     let log = try Log.open(at: "/var/lib/orders/events")
///     let group = ServiceGroup(
///         services: [LogService(log: log), httpServer],
///         gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
///     try await group.run()
public struct LogService: Service {
    /// The log this service closes on shutdown.
    public let log: Log

    /// A service for `log`, opened already (with `Log.open` or
    /// `AsyncLog.open`). It does not take `log` over: use the log as usual
    /// until the group shuts down.
    public init(log: Log) {
        self.log = log
    }

    /// Waits for graceful shutdown (or cancellation), then closes the log.
    /// Throws what `close()` throws (a failed final sync, for one).
    public func run() async throws {
        // Returns on graceful shutdown; throws CancellationError when the task is cancelled: close either way.
        try? await gracefulShutdown()
        try await log.async.close()
    }
}
