import EventLog

/// The read–batch–append–acknowledge loop of `eventlog append`.
///
/// Batches and expectations: each batch is one `Log.append(_:expecting:)`.
/// A stream's expectation in a batch is the one of its first line there:
/// the line's own `expectedVersion`, else (with `--expected-version`) the
/// version this input's previous batch left the stream at, or the
/// `--expected-version` value before the stream's first batch. A line with
/// its own expectation starts a new batch when the pending one already
/// holds an event of its stream, so it is checked against the version
/// right before that line.
///
/// When a stream refuses a batch (a wrong expected version, a hard-deleted
/// stream, an idempotency conflict), nothing of it is written; the refused
/// line is the first of that stream in the batch. The lines before it are
/// then appended again as a batch of their own (they do not depend on the
/// refused one) and acknowledged, and the command ends with exit code 3
/// naming the refused line: a conflict never costs a line before it.
struct AppendSession {
    /// Input bytes gathered into one batch at most: with the record
    /// framing, a batch stays well under `Limits.maxBatchBytes`.
    static let maxPendingBytes = 16 << 20

    /// A parsed line waiting for its batch.
    struct PendingLine {
        var event: NewEvent
        /// The line's own `expectedVersion`.
        var expected: ExpectedVersion?
        var line: Int
    }

    let log: Log
    let batchLimit: Int
    /// `--expected-version`: every stream's expectation before its first event in the input.
    let inputExpectation: ExpectedVersion?
    private var input = LineReader(fd: 0)
    private var output = OutputWriter(fd: 1)
    private var pending: [PendingLine] = []
    /// The streams with an event in `pending`.
    private var pendingStreams: Set<String> = []
    private var pendingBytes = 0
    private var lineNumber = 0
    /// With `--expected-version` only: the version this input's batches left
    /// each stream at (one entry per stream of the input).
    private var versionsLeft: [String: UInt64] = [:]

    init(log: Log, batchLimit: Int, expectedVersion: ExpectedVersion? = nil) {
        self.log = log
        self.batchLimit = batchLimit
        self.inputExpectation = expectedVersion
        pending.reserveCapacity(batchLimit)
    }

    mutating func run() throws {
        while let line = try nextLine() {
            lineNumber += 1
            if !isBlank(line) {
                let parsed: JSONEventLine.Parsed
                do { parsed = try JSONEventLine.parseLine(line) } catch {
                    try appendPending()
                    throw CommandFailure.malformed(line: lineNumber, error.reason)
                }
                if parsed.expectedVersion != nil, pendingStreams.contains(parsed.event.stream) {
                    try appendPending()
                }
                pending.append(PendingLine(event: parsed.event, expected: parsed.expectedVersion, line: lineNumber))
                pendingStreams.insert(parsed.event.stream)
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

    /// A line too long to be an event is malformed; a failed read is an I/O error (both exit 2).
    private func failure(_ error: LineReaderError) -> CommandFailure {
        switch error {
        case .lineTooLong: return .malformed(line: lineNumber + 1, error.description)
        case .system: return CommandFailure(error.description)
        }
    }

    // MARK: Appending

    /// Appends the pending lines and acknowledges them.
    private mutating func appendPending() throws {
        try appendLines(0..<pending.count)
        pending.removeAll(keepingCapacity: true)
        pendingStreams.removeAll(keepingCapacity: true)
        pendingBytes = 0
    }

    /// Appends `lines` of `pending` in as many batches as the log needs.
    private mutating func appendLines(_ lines: Range<Int>) throws {
        var next = lines.lowerBound
        while next < lines.upperBound {
            next = try appendBatch(next..<lines.upperBound)
        }
    }

    /// Appends a prefix of `lines` as one batch and acknowledges it; returns
    /// the index after it. The batch holds as many lines as the log accepts:
    /// a line the log refuses as the first of a batch (too large, stream
    /// name too long) is malformed; a line its stream refuses ends the command.
    private mutating func appendBatch(_ lines: Range<Int>) throws -> Int {
        let result: AppendResult
        do {
            result = try log.append(pending[lines].map(\.event), expecting: expectations(lines))
        } catch let error as EventLogError {
            if let stream = error.refusingStream {
                let refused = lines.first { pending[$0].event.stream == stream } ?? lines.lowerBound
                // Nothing was written: the lines before the refused one go in a batch of their own.
                try appendLines(lines.lowerBound..<refused)
                throw CommandFailure.streamConflict(line: pending[refused].line, error)
            }
            guard let (index, refusal) = refusedEvent(lines) else { throw error }
            if index == lines.lowerBound { throw CommandFailure.malformed(line: pending[index].line, refusal.description) }
            // The batch is full, or the event at `index` breaks a limit: it starts the next batch.
            return try appendBatch(lines.lowerBound..<index)
        }
        try acknowledge(result, lines)
        return lines.upperBound
    }

    /// Each stream's expectation in a batch of `lines` (see the type's comment).
    private func expectations(_ lines: Range<Int>) -> [String: ExpectedVersion] {
        var expecting: [String: ExpectedVersion] = [:]
        var seen = Set<String>()
        for index in lines where seen.insert(pending[index].event.stream).inserted {
            let stream = pending[index].event.stream
            if let own = pending[index].expected {
                expecting[stream] = own
            } else if let inputExpectation {
                expecting[stream] = versionsLeft[stream].map { .exact($0) } ?? inputExpectation
            }
        }
        return expecting
    }

    /// Builds `lines` as a batch without committing it, to find the first
    /// event the log refuses and why (nil when it refuses none).
    private func refusedEvent(_ lines: Range<Int>) -> (index: Int, error: EventLogError)? {
        struct Abandoned: Error {}
        var refused: (index: Int, error: EventLogError)?
        _ = try? log.appendBatch { (batch: inout BatchBuilder) throws in
            for index in lines {
                do { try batch.append(pending[index].event) } catch {
                    refused = (index, (error as? EventLogError) ?? .invalidArgument("\(error)"))
                    break
                }
            }
            throw Abandoned()  // a dry run: nothing is written
        }
        return refused
    }

    // MARK: Acknowledging

    /// Prints `{"position": P, "stream": "...", "version": V}` for each line
    /// of an appended batch, and flushes: a line printed is a line acknowledged.
    private mutating func acknowledge(_ result: AppendResult, _ lines: Range<Int>) throws {
        var nextVersion: [String: UInt64] = [:]
        for versions in result.streams {
            nextVersion[versions.stream] = versions.firstVersion
            if inputExpectation != nil { versionsLeft[versions.stream] = versions.lastVersion }
        }
        // A retry wrote nothing: its lines get the positions the original events have.
        let retried = result.wasRetry ? try originalPositions(result) : [:]
        var retriedTaken: [String: Int] = [:]
        for (offset, index) in lines.enumerated() {
            let stream = pending[index].event.stream
            guard let version = nextVersion[stream] else {
                throw CommandFailure("the log reported no version for stream \(stream) of line \(pending[index].line)")
            }
            nextVersion[stream] = version + 1
            var position = result.positions.lowerBound + UInt64(offset)
            if result.wasRetry {
                let taken = retriedTaken[stream, default: 0]
                guard let original = retried[stream], taken < original.count else {
                    throw CommandFailure("the retried events of stream \(stream) are not where the log said")
                }
                position = original[taken]
                retriedTaken[stream] = taken + 1
            }
            output.append("{\"position\": ")
            output.append(position)
            output.append(", \"stream\": ")
            output.appendJSONString(stream)
            output.append(", \"version\": ")
            output.append(version)
            output.append("}\n")
        }
        do { try output.flush() } catch {
            throw CommandFailure(
                "\(error.description); the events before position \(result.positions.upperBound) are in the log, but not all were acknowledged")
        }
    }

    /// The positions of a retried append's original events, per stream in
    /// version order (the retry may interleave its streams differently).
    private func originalPositions(_ result: AppendResult) throws -> [String: [UInt64]] {
        var positions: [String: [UInt64]] = [:]
        try log.read(from: result.positions.lowerBound, maxCount: result.positions.count) { event in
            if !event.isMarker { positions[event.stream, default: []].append(event.position) }
        }
        return positions
    }

    private func isBlank(_ line: [UInt8]) -> Bool {
        line.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
    }
}
