import ArgumentParser
import EventLog
import EventLogNATS
import NATSClient

/// `eventlog inbox DIR`: appends the messages of a JetStream stream to the log,
/// once each. Every action is `EventLogNATS.Inbox`.
struct InboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbox",
        abstract: "Append the messages of a NATS JetStream stream to the log, once each.",
        discussion: """
            Consumes the JetStream stream --stream with the durable pull consumer --durable (created \
            when missing, explicit acknowledgements), appends each fetched batch to the log as one \
            atomic batch, makes it durable, and only then acknowledges its messages. A message becomes \
            an event of stream <into-stream-prefix><its EventLog-Stream header, else its subject> and type \
            <its EventLog-Type header, else its subject>, with the metadata of its EventLog-* headers (as \
            relay writes them); it keeps Nats-Stream, Nats-Sequence, Nats-Consumer and Nats-Msg-Id as \
            free headers. A message delivered again (its acknowledgement was lost, or inbox was killed \
            between append and acknowledgement) is recognised by its Nats-Msg-Id, else its stream \
            sequence, and is not appended twice; the record of what may still come again is kept in the \
            log itself, from the cursor inbox.<stream>.<durable> on.

            The log is opened as its writer (created when missing). It reconnects with back-off \
            (\(RelayCommand.defaultAttempts) failed attempts in a row end it with exit 2) and runs until SIGINT or \
            SIGTERM (exit 0); --stop-when-idle ends it once a fetch finds nothing, --max-messages N \
            after N messages. Prints: appended N messages (D duplicates), R reconnects.

            \(NATSAuthenticationOptions.help)

            Example: eventlog inbox /var/lib/billing --nats nats://127.0.0.1:4222 --stream ORDERS \
            --durable billing --into-stream-prefix orders/
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Option(help: ArgumentHelp("The NATS server.", valueName: "url"))
    var nats = "nats://127.0.0.1:4222"

    @OptionGroup var authentication: NATSAuthenticationOptions

    @Option(help: ArgumentHelp("The JetStream stream to consume.", valueName: "name"))
    var stream: String

    @Option(help: ArgumentHelp("The durable pull consumer's name.", valueName: "name"))
    var durable: String

    @Option(name: .customLong("into-stream-prefix"), help: ArgumentHelp("Put this before each local stream name.", valueName: "prefix"))
    var intoStreamPrefix = ""

    @Option(help: ArgumentHelp("Messages per fetch and per appended batch (1 to \(InboxOptions.maxBatch)).", valueName: "n"))
    var batch = 1000

    @Option(name: .customLong("ack-wait"), help: ArgumentHelp("A created consumer's ack wait, in seconds.", valueName: "seconds"))
    var ackWait = 30.0

    @Option(name: .customLong("connect-attempts"), help: ArgumentHelp("Failed connection attempts in a row before giving up.", valueName: "n"))
    var connectAttempts = RelayCommand.defaultAttempts

    @Option(help: ArgumentHelp("Durability of the appends: always|interval|none (interval and none sync before acknowledging).", valueName: "d"))
    var durability = "always"

    @Flag(name: .customLong("stop-when-idle"), help: "Stop once a fetch finds nothing to consume.")
    var stopWhenIdle = false

    @Option(name: .customLong("max-messages"), help: ArgumentHelp("Stop after handling this many messages.", valueName: "n"))
    var maxMessages: Int?

    func validate() throws {
        for (name, value) in [("--stream", stream), ("--durable", durable)]
        where value.isEmpty || value.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ">") }) {
            throw ValidationError("\(name) must be non-empty, without whitespace, '.', '*' or '>'")
        }
        if !(1...InboxOptions.maxBatch).contains(batch) { throw ValidationError("--batch takes 1 to \(InboxOptions.maxBatch), got \(batch)") }
        if !(ackWait > 0) { throw ValidationError("--ack-wait takes a positive number of seconds") }
        if connectAttempts < 1 { throw ValidationError("--connect-attempts takes 1 or more") }
        if let maxMessages, maxMessages < 1 { throw ValidationError("--max-messages takes 1 or more") }
        if !["always", "interval", "none"].contains(durability) { throw ValidationError("--durability takes always, interval or none, got \(durability)") }
        if let refused = NATSAuthenticationOptions.refuseCredentialsInURL(nats) { throw refused }
        do { _ = try NATSURL(parsing: nats) } catch { throw ValidationError("--nats: \(error)") }
    }

    func run() throws {
        StopConditions.install()
        try reportingFailures(command: "inbox") {
            let url = try NATSURL(parsing: nats)
            let credentials = try authentication.credentials()
            var logOptions = try LogOptions.cli()
            switch durability {
            case "interval": logOptions.durability = .interval(.milliseconds(100))
            case "none": logOptions.durability = .none
            default: logOptions.durability = .always
            }
            let log = try Log.open(at: directory, options: logOptions)
            var closed = false
            defer { if !closed { try? log.close() } }
            let options = InboxOptions(
                stream: stream, durable: durable, intoStreamPrefix: intoStreamPrefix, batch: batch, ackWait: .seconds(ackWait),
                backoff: Backoff(maxAttempts: connectAttempts), stopWhenIdle: stopWhenIdle, maxMessages: maxMessages,
                credentials: credentials)
            let inbox = Inbox(log: log, url: url, options: options)
            let statistics: InboxStatistics
            do {
                statistics = try inbox.run { StopConditions.signalled }
            } catch {
                throw CommandFailure("\(error)")
            }
            closed = true
            try log.close()
            print("appended \(statistics.appended) messages (\(statistics.duplicates) duplicates), \(statistics.reconnects) reconnects")
        }
    }
}
