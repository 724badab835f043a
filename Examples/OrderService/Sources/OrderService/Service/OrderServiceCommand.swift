import ArgumentParser
import EventLog
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `order-service --port P --data-dir DIR [--nats-url URL]`: the event-sourced order service (README.md of this
/// package). Opens its log in `DIR/events` (`.always` durability: a command is answered only once its events are
/// on disk), serves the HTTP contract on `--host:--port`, runs the read model's projection and the outbox relay,
/// and on SIGTERM or SIGINT stops accepting, finishes the requests in flight, stops the projection and the relay,
/// and closes the log cleanly.
@main
struct OrderServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-service",
        abstract: "An event-sourced order service on EventLog (HTTP, read model, outbox, metrics).")

    @Option(help: ArgumentHelp("TCP port to listen on (0: any free port; the chosen one is printed).", valueName: "port"))
    var port: Int

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Directory of the service's logs (created when missing).", valueName: "dir"))
    var dataDirectory: String

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "address"))
    var host = "127.0.0.1"

    @Option(
        name: .customLong("nats-url"),
        help: ArgumentHelp(
            "Relay the outbox to NATS JetStream at this URL (stream ORDERS, subjects orders.>); without it, the outbox goes to the log DIR/outbox-delivered.",
            valueName: "url"))
    var natsURL: String?

    @Option(
        name: .customLong("metrics-interval-ms"),
        help: ArgumentHelp("How often the logs report their state to /metrics, in milliseconds.", valueName: "ms"))
    var metricsIntervalMilliseconds = 1000

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel = "info"

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port takes 0 to 65535, got \(port)") }
        guard !dataDirectory.isEmpty else { throw ValidationError("--data-dir must not be empty") }
        guard metricsIntervalMilliseconds >= 10 else { throw ValidationError("--metrics-interval-ms takes 10 or more, got \(metricsIntervalMilliseconds)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
    }

    /// ArgumentParser's `main()`, with the project's exit codes: 2 for a usage error (ArgumentParser's own is 64)
    /// and for a service that could not start (its log could not be opened, its port could not be bound).
    static func main() async {
        do {
            let command = try parse()
            try await command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                exit(withError: ExitCode(2))
            }
            exit(withError: error)
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "order-service")
        // swift-metrics' backend: the log's metrics (eventlog_*) and Hummingbird's go to this registry, and
        // GET /metrics prints it. Bootstrapped before the logs open: a log makes its metrics when it opens.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let configuration = ServiceConfiguration(
            dataDirectory: dataDirectory, metricsInterval: .milliseconds(metricsIntervalMilliseconds), logger: logger)
        let parts: ServiceParts
        do {
            parts = try await ServiceParts.open(configuration, natsURL: natsURL)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(2)
        }
        let router = OrderRoutes.router(commands: parts.commands, readModel: parts.readModel, registry: registry, health: parts.health)
        let host = self.host
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                // The line the tests and scripts wait for; with --port 0 it names the port chosen.
                let line = "order-service listening on \(host):\(channel.localAddress?.port ?? 0)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            },
            logger: logger)
        // Graceful shutdown runs the services' shutdown in reverse order: the HTTP server stops accepting and
        // finishes what is in flight first, then the relay and the projection stop, and the logs close last.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: parts.services.map { .init(service: $0) } + [.init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("stopped: \(error)")
            throw ExitCode(2)
        }
        logger.info("stopped cleanly")
    }
}
