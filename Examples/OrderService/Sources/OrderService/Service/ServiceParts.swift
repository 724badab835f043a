import EventLog
import EventLogNATS
import EventLogSourcing
import Foundation
import Logging
import NATSClient
import ServiceLifecycle

/// Where the service keeps its data and how it reports.
struct ServiceConfiguration: Sendable {
    /// `--data-dir`: holds the log `events` and, without NATS, the log `outbox-delivered`.
    var dataDirectory: String
    /// How often the logs report to swift-metrics.
    var metricsInterval: Duration
    var logger: Logger

    var eventsPath: String { dataDirectory + "/events" }
    var deliveredPath: String { dataDirectory + "/outbox-delivered" }
}

/// The service's parts, opened: the log, the write side, the read model and its projection, the outbox relay,
/// and the services the group runs (in start order; they stop in the reverse order, after the HTTP server).
struct ServiceParts: Sendable {
    var commands: OrderCommands
    var readModel: OrderReadModel
    var services: [any Service]
    var health: @Sendable () -> HealthBody

    /// The outbox's streams (where `Decision.outgoing` appends: `AggregateStoreOptions.outboxStream`).
    static let outboxFilter = EventFilter(streamPrefix: "outbox")

    static func open(_ configuration: ServiceConfiguration, natsURL: String?) async throws -> ServiceParts {
        let logger = configuration.logger
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let log = try await AsyncLog.open(at: configuration.eventsPath, options: logOptions(configuration))
        var services: [any Service] = [LogService(log: log)]

        let readModel = OrderReadModel()
        let projection = try OrderProjection.runner(log: log, readModel: readModel)
        services.append(ThreadService(name: "read model projection", logger: logger) { shouldStop in
            try projection.run(shouldStop: shouldStop)
        })

        if let natsURL {
            let url = try NATSURL(parsing: natsURL)
            let relay = Relay(
                log: log, url: url,
                options: RelayOptions(subjectPrefix: "orders.", cursor: "outbox-nats", filter: outboxFilter, createStream: "ORDERS"))
            services.append(ThreadService(name: "outbox relay to \(url)", logger: logger) { shouldStop in
                _ = try relay.run(shouldStop: shouldStop)
            })
        } else {
            var options = logOptions(configuration)
            options.asyncThreadCount = 1
            let delivered = try await AsyncLog.open(at: configuration.deliveredPath, options: options)
            services.insert(LogService(log: delivered), at: 0)
            let relay = LogRelay(source: log, sink: delivered, filter: outboxFilter, logger: logger)
            services.append(ThreadService(name: "outbox relay to \(configuration.deliveredPath)", logger: logger) { shouldStop in
                try relay.run(shouldStop: shouldStop)
            })
        }

        let previousShutdown: String
        switch log.recovery.previousShutdown {
        case .newLog: previousShutdown = "new log"
        case .clean: previousShutdown = "clean"
        case .unclean: previousShutdown = "unclean"
        }
        return ServiceParts(
            commands: OrderCommands(log: log), readModel: readModel, services: services,
            health: { HealthBody(status: "ok", previousShutdown: previousShutdown) })
    }

    /// `.always`: a command is answered only once its batch is on disk. Up to 32 commands' appends at once on
    /// the log's threads, so that concurrent commands share their syncs (group commit).
    static func logOptions(_ configuration: ServiceConfiguration) -> LogOptions {
        var options = LogOptions(durability: .always)
        options.asyncThreadCount = 32
        options.metricsInterval = configuration.metricsInterval
        options.logger = configuration.logger
        return options
    }
}
