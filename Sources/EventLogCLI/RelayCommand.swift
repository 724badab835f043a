import ArgumentParser
import EventLog
import EventLogNATS
import NATSClient

/// `eventlog relay DIR`: publishes the log's events to NATS JetStream through a
/// durable cursor (the transactional outbox's relay). Every action is
/// `EventLogNATS.Relay`; this parses the arguments and prints the summary.
struct RelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Publish the log's events to NATS JetStream, at least once, through a durable cursor.",
        discussion: """
            Publishes each event to <subject-prefix><stream> with the headers Nats-Msg-Id (the event id, \
            else <log id>-<position>: JetStream drops what is sent again within its duplicate window), \
            EventLog-Stream, EventLog-Type, EventLog-Position, EventLog-Version, EventLog-Timestamp, \
            EventLog-Log-ID, and, when set, EventLog-Event-ID, EventLog-Schema-Version, \
            EventLog-Content-Type, EventLog-Correlation-ID, EventLog-Causation-ID and \
            EventLog-Header-<name> for each free header. Up to --window events are in flight; the cursor \
            is committed only past events JetStream acknowledged, so a crash or a restart sends again \
            at most what was not acknowledged, and loses nothing. Events left out by --stream-prefix or \
            --type (and stream markers) count as relayed.

            The log is opened read-only with cursor commits allowed, so relay runs beside the process \
            that writes the log. It reconnects with back-off (\(Self.defaultAttempts) failed attempts in a row end it \
            with exit 2, as a refused first connection does; refused credentials end it at once). It runs until SIGINT or SIGTERM (exit 0, \
            after the events in flight are acknowledged and the cursor committed); --stop-when-idle ends \
            it once everything in the log is acknowledged, --max-events N after N events.

            --create-stream NAME creates the JetStream stream NAME for the subjects <subject-prefix>> \
            when it does not exist (the prefix must then end with a dot). Prints a summary line at the \
            end: relayed N events (D duplicates), R reconnects, cursor NAME at P.

            \(NATSAuthenticationOptions.help)

            Example: eventlog relay /var/lib/orders --nats nats://127.0.0.1:4222 --subject-prefix orders. \
            --cursor relay --create-stream ORDERS
            """)

    static let defaultAttempts = 30

    @Argument(help: "The log directory.")
    var directory: String

    @Option(help: ArgumentHelp("The NATS server.", valueName: "url"))
    var nats = "nats://127.0.0.1:4222"

    @OptionGroup var authentication: NATSAuthenticationOptions

    @Option(name: .customLong("subject-prefix"), help: ArgumentHelp("Publish each event to this prefix followed by its stream.", valueName: "prefix"))
    var subjectPrefix: String

    @Option(help: ArgumentHelp("The log's durable cursor (created at the start of the log when missing).", valueName: "name"))
    var cursor: String

    @Option(name: .customLong("stream-prefix"), help: ArgumentHelp("Relay events of streams starting with this only.", valueName: "prefix"))
    var streamPrefix: String?

    @Option(name: .customLong("type"), help: ArgumentHelp("Relay events of this type only (repeatable).", valueName: "type"))
    var types: [String] = []

    @Option(name: .customLong("create-stream"), help: ArgumentHelp("Create this JetStream stream for <subject-prefix>> when missing.", valueName: "name"))
    var createStream: String?

    @Option(help: ArgumentHelp("Events in flight at most (1 to \(RelayOptions.maxWindow)).", valueName: "n"))
    var window = RelayOptions.defaultWindow

    @Option(name: .customLong("connect-attempts"), help: ArgumentHelp("Failed connection attempts in a row before giving up.", valueName: "n"))
    var connectAttempts = RelayCommand.defaultAttempts

    @Flag(name: .customLong("stop-when-idle"), help: "Stop once every event in the log is acknowledged and committed.")
    var stopWhenIdle = false

    @Option(name: .customLong("max-events"), help: ArgumentHelp("Stop after relaying this many events.", valueName: "n"))
    var maxEvents: Int?

    func validate() throws {
        if subjectPrefix.isEmpty || subjectPrefix.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ">") }) {
            throw ValidationError("--subject-prefix must be non-empty, without whitespace, '*' or '>'")
        }
        if createStream != nil && !subjectPrefix.hasSuffix(".") {
            throw ValidationError("--create-stream needs a --subject-prefix ending with '.' (the stream's subjects are <prefix>>)")
        }
        if cursor.isEmpty || cursor.utf8.count > CursorsCommand.maxCursorNameBytes {
            throw ValidationError("a cursor name is 1 to \(CursorsCommand.maxCursorNameBytes) UTF-8 bytes, got \(cursor.utf8.count)")
        }
        if !(1...RelayOptions.maxWindow).contains(window) { throw ValidationError("--window takes 1 to \(RelayOptions.maxWindow), got \(window)") }
        if connectAttempts < 1 { throw ValidationError("--connect-attempts takes 1 or more") }
        if let maxEvents, maxEvents < 1 { throw ValidationError("--max-events takes 1 or more") }
        if let refused = NATSAuthenticationOptions.refuseCredentialsInURL(nats) { throw refused }
        do { _ = try NATSURL(parsing: nats) } catch { throw ValidationError("--nats: \(error)") }
    }

    func run() throws {
        StopConditions.install()
        try reportingFailures(command: "relay") {
            let url = try NATSURL(parsing: nats)
            let credentials = try authentication.credentials()
            var logOptions = try LogOptions.cli(createIfMissing: false, readOnly: true)
            logOptions.allowsCursorCommits = true
            let log = try Log.open(at: directory, options: logOptions)
            defer { try? log.close() }
            var options = RelayOptions(
                subjectPrefix: subjectPrefix, cursor: cursor,
                filter: EventFilter(streamPrefix: streamPrefix, types: types.isEmpty ? nil : Set(types)),
                window: window, createStream: createStream, backoff: Backoff(maxAttempts: connectAttempts),
                stopWhenIdle: stopWhenIdle, maxEvents: maxEvents, credentials: credentials)
            options.ackTimeout = .seconds(10)
            let relay = Relay(log: log, url: url, options: options)
            let statistics: RelayStatistics
            do {
                statistics = try relay.run { StopConditions.signalled }
            } catch {
                throw CommandFailure("\(error)")
            }
            print(
                "relayed \(statistics.acknowledged) events (\(statistics.duplicates) duplicates), \(statistics.reconnects) reconnects, cursor \(cursor) at \(statistics.committedPosition)"
            )
        }
    }
}
