import ArgumentParser
import EventLog

/// `eventlog append DIR`: appends JSON Lines events from stdin and
/// acknowledges each on stdout once it is durable under the chosen policy.
struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append events read as JSON Lines from standard input.",
        discussion: """
            Each line is one event: {"stream": "order-1", "type": "OrderPlaced", "data": <any JSON value>, \
            "metadata": {"key": "value"}, "timestamp": <microseconds since 1970>, "id": "<UUID>", \
            "expected_version": 4, "key": "...", "tombstone": false}. All but "stream", "type" and "data" \
            are optional; empty lines are skipped. "data" is stored as the exact bytes it has on the line, \
            with content type application/json. Metadata keys event_id (UUID), schema_version (integer), \
            content_type, correlation_id and causation_id fill those fields; any other key becomes a header \
            and its value must be a string. "id" is the event id (metadata event_id; if both are given they \
            must agree). The camelCase names of earlier versions (expectedVersion, eventId, \
            schemaVersion, contentType, correlationId, causationId) are read too.

            Lines are appended in batches of up to --batch events; a batch is also cut as soon as no \
            further line is waiting on standard input. Once a batch is acknowledged under the durability \
            policy, one line {"position": P, "stream": "...", "version": V} per event is printed and \
            flushed: a line on standard output means that event is acknowledged. V is the event's version \
            in its stream.

            Expected versions: a number (the version of the stream's last event), any, no_stream or \
            stream_exists. A line's "expected_version" is checked against its stream's version right \
            before that line: the line starts a new batch when the pending one holds an event of its \
            stream. --expected-version applies to every stream before its first line in the input; later \
            batches of the stream expect the version the previous one left (so --expected-version \
            no_stream appends only to new streams). A conflict, a hard-deleted stream or an idempotency \
            conflict stops the command with exit code 3 and the line, the stream, the expected and the \
            actual version on standard error; nothing of the refused line's batch is written, and every \
            line before it is appended and acknowledged (the lines of its batch before it are appended \
            again, as a batch of their own).

            Retries: a batch whose events all have ids and repeat the last append to their streams (same \
            ids, same expectations) writes nothing and prints the original positions and versions. \
            Running the same input again is a retry when every stream's lines form the same, single \
            batch as before (the log recognises the last append to a stream only).

            A malformed line stops the command with exit code 2 and its line number on standard error, \
            after the valid lines before it were appended and acknowledged. Other failures exit with 1.
            """)

    enum DurabilityChoice: String, ExpressibleByArgument, CaseIterable {
        case always, interval, none
    }

    enum CompressionChoice: String, ExpressibleByArgument, CaseIterable {
        case none, lz4
    }

    @Argument(help: "The log directory (created when missing).")
    var directory: String

    @Option(help: "When an append is acknowledged: always (after fdatasync), interval (synced every --interval-ms), none (the OS decides).")
    var durability: DurabilityChoice = .always

    @Option(name: .customLong("interval-ms"), help: "The sync interval of --durability interval, in milliseconds.")
    var intervalMilliseconds: Int = 100

    @Option(help: "Compression of new batches.")
    var compression: CompressionChoice = .none

    @Option(help: "Most events in one batch.")
    var batch: Int = 100

    @Option(name: .customLong("segment-bytes"), help: "Size at which a segment is sealed (applies to new segments).")
    var segmentBytes: Int?

    @Option(
        name: .customLong("expected-version"),
        help: ArgumentHelp(
            "Every stream's expected version before its first line: a number, any, no_stream or stream_exists.",
            valueName: "version"))
    var expectedVersion: ExpectedVersionArgument?

    func validate() throws {
        guard batch >= 1, batch <= Limits.maxBatchRecords else {
            throw ValidationError("--batch must be within 1...\(Limits.maxBatchRecords), got \(batch)")
        }
        guard intervalMilliseconds >= 1, intervalMilliseconds <= 3_600_000 else {
            throw ValidationError("--interval-ms must be within 1...3600000, got \(intervalMilliseconds)")
        }
        if let segmentBytes, segmentBytes < Limits.minSegmentBytes || segmentBytes > Limits.maxSegmentBytes {
            throw ValidationError(
                "--segment-bytes must be within \(Limits.minSegmentBytes)...\(Limits.maxSegmentBytes), got \(segmentBytes)")
        }
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "append") {
            let log = try Log.open(at: directory, options: logOptions)
            var session = AppendSession(log: log, batchLimit: batch, expectedVersion: expectedVersion?.value)
            do {
                try session.run()
            } catch {
                // Close cleanly even after a malformed line: what was acknowledged stays, and the next open needs no recovery.
                try? log.close()
                throw error
            }
            try log.close()
        }
    }

    var logOptions: LogOptions {
        get throws {
            var options = try LogOptions.cli()
            switch durability {
            case .always: options.durability = .always
            case .interval: options.durability = .interval(.milliseconds(intervalMilliseconds))
            case .none: options.durability = .none
            }
            switch compression {
            case .none: options.compression = .none
            case .lz4: options.compression = .lz4
            }
            if let segmentBytes { options.segmentBytes = segmentBytes }
            return options
        }
    }
}
