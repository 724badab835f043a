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
            "metadata": {"key": "value"}, "timestamp": <microseconds since 1970>}. "metadata" and \
            "timestamp" are optional; empty lines are skipped. "data" is stored as the exact bytes it has \
            on the line, with content type application/json. Metadata keys eventId (UUID), schemaVersion \
            (integer), contentType, correlationId and causationId fill those fields; any other key becomes \
            a header and its value must be a string.

            Lines are appended in batches of up to --batch events; a batch is also cut as soon as no \
            further line is waiting on standard input. Once a batch is acknowledged under the durability \
            policy, one line {"position": P, "stream": "..."} per event is printed and flushed: a line on \
            standard output means that event is acknowledged.

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
            var session = AppendSession(log: log, batchLimit: batch)
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
        var options = LogOptions()
        switch durability {
        case .always: options.durability = .always
        case .interval: options.durability = .interval(milliseconds: intervalMilliseconds)
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

/// The read–batch–append–acknowledge loop of `eventlog append`.
struct AppendSession {
    /// Input bytes gathered into one batch at most: with the record
    /// framing, a batch stays well under `Limits.maxBatchBytes`.
    static let maxPendingBytes = 16 << 20

    let log: Log
    let batchLimit: Int
    private var input = LineReader(fd: 0)
    private var output = OutputWriter(fd: 1)
    /// Parsed events not yet appended, with their line numbers.
    private var pending: [(event: NewEvent, line: Int)] = []
    private var pendingBytes = 0
    private var lineNumber = 0

    init(log: Log, batchLimit: Int) {
        self.log = log
        self.batchLimit = batchLimit
        pending.reserveCapacity(batchLimit)
    }

    mutating func run() throws {
        while let line = try nextLine() {
            lineNumber += 1
            if !isBlank(line) {
                let event: NewEvent
                do { event = try JSONEventLine.parse(line) } catch {
                    try appendPending()
                    throw CommandFailure.malformed(line: lineNumber, error.reason)
                }
                pending.append((event, lineNumber))
                pendingBytes += line.count
            }
            if !pending.isEmpty, try pending.count >= batchLimit || pendingBytes >= Self.maxPendingBytes || !lineReady() {
                try appendPending()
            }
        }
        try appendPending()
    }

    /// The next input line; on a read failure the pending events are appended first.
    private mutating func nextLine() throws -> [UInt8]? {
        do { return try input.nextLine() } catch {
            try appendPending()
            throw failure(error)
        }
    }

    /// Whether another line can be read without waiting (else the batch is cut now).
    private mutating func lineReady() throws -> Bool {
        do { return try input.hasLineReady() } catch {
            try appendPending()
            throw failure(error)
        }
    }

    /// A line too long to be an event is malformed (exit 2); a failed read is not (exit 1).
    private func failure(_ error: LineReaderError) -> CommandFailure {
        switch error {
        case .lineTooLong: return .malformed(line: lineNumber + 1, error.description)
        case .system: return CommandFailure(error.description)
        }
    }

    /// Appends the pending events and acknowledges them. A batch holds as
    /// many of them as the log accepts; an event the log refuses as the
    /// first of a batch (too large, stream name too long) is malformed.
    private mutating func appendPending() throws {
        var next = 0
        while next < pending.count {
            var refused: (index: Int, error: EventLogError)?
            let events = pending
            let first = next
            let range = try log.appendBatch { (batch: inout BatchBuilder) throws(EventLogError) in
                for index in first..<events.count {
                    // The builder checks every limit before it encodes: a refused event leaves the batch as it was.
                    do throws(EventLogError) { try batch.append(events[index].event) } catch {
                        refused = (index, error)
                        return
                    }
                }
            }
            for (offset, position) in range.enumerated() {
                acknowledge(position: position, stream: pending[first + offset].event.stream)
            }
            do { try output.flush() } catch {
                throw CommandFailure(
                    "\(error.description); the events before position \(range.upperBound) are in the log, but not all were acknowledged")
            }
            if range.isEmpty {
                // Refused as the first event of a batch: the event itself breaks a limit.
                throw CommandFailure.malformed(
                    line: pending[first].line, refused?.error.description ?? "the log accepted no event of the batch")
            }
            // Otherwise the batch was full, or the next event is refused: it starts the next batch.
            next = first + range.count
        }
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
    }

    private mutating func acknowledge(position: UInt64, stream: String) {
        output.append("{\"position\": ")
        output.append(position)
        output.append(", \"stream\": ")
        output.appendJSONString(stream)
        output.append("}\n")
    }

    private func isBlank(_ line: [UInt8]) -> Bool {
        line.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
    }
}
