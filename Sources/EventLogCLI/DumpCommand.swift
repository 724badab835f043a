import ArgumentParser
import EventLog

/// `eventlog dump DIR`: prints events in position order, as text or JSON Lines.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print events in position order.",
        discussion: """
            Without --json, one line per event: position, time (ISO 8601, UTC, microseconds), stream, \
            version (v0, v1, ...), type, then the data as text when it is printable UTF-8, else \
            base64: and its base64.

            With --json, one JSON object per line with the keys position, stream, version, type, \
            timestamp (microseconds since 1970), data (the stored JSON value, when the content type is \
            application/json and the bytes are valid JSON) or data_base64 (otherwise), and metadata.

            The log is opened read-only, so dump works beside a running writer; it prints the events \
            that were appended when it started.
            """)

    @Argument(help: "The log directory.")
    var directory: String

    @Option(help: "The first position to print (default: the start of the log).")
    var from: UInt64?

    @Option(help: "Stop before this position: --to is exclusive (default: the end of the log).")
    var to: UInt64?

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        if let from, let to, to < from {
            throw ValidationError("--to (\(to)) is before --from (\(from)); --to is exclusive")
        }
    }

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "dump") {
            let log = try Log.open(at: directory, options: LogOptions(createIfMissing: false, readOnly: true))
            defer { try? log.close() }
            let start = from ?? log.startPosition
            let stop = to ?? .max
            guard start < stop else { return }
            var output = OutputWriter(fd: 1)
            let json = self.json
            do {
                try log.read(from: start, maxCount: Int(clamping: stop - start)) { event in
                    let metadata = try Self.metadata(of: event)
                    if json {
                        JSONEventFormat.write(event, metadata: metadata, into: &output)
                    } else {
                        Self.writeText(event, into: &output)
                    }
                    try output.appendLineEnd()
                }
                try output.flush()
            } catch let error as OutputError where error.isBrokenPipe {
                return  // the reader stopped listening (`dump | head`): not a failure
            } catch {
                // Print what was read before the damage, then report it.
                try? output.flush()
                throw error
            }
        }
    }

    private static func metadata(of event: EventView) throws -> EventMetadata {
        if event.metadataBytes.isEmpty { return EventMetadata() }
        do { return try event.metadata() } catch {
            throw CommandFailure("event \(event.position) has damaged metadata: \(error.description)")
        }
    }

    /// `42  2024-05-01T12:00:00.123456Z  order-1  v0  OrderPlaced  {"total":10}`
    static func writeText(_ event: EventView, into output: inout OutputWriter) {
        output.append(event.position)
        output.append("  ")
        output.appendISO8601(event.timestamp)
        output.append("  ")
        appendName(event.streamBytes, into: &output)
        output.append("  v")
        output.append(event.version)
        output.append("  ")
        appendName(event.typeBytes, into: &output)
        output.append("  ")
        if isPrintableUTF8(event.data) {
            output.append(event.data)
        } else {
            output.append("base64:")
            output.appendBase64(event.data)
        }
    }

    /// A name as is when printable, else as a quoted, escaped string (so it cannot break the line).
    private static func appendName(_ bytes: UnsafeRawBufferPointer, into output: inout OutputWriter) {
        if isPrintableUTF8(bytes) && !bytes.contains(UInt8(ascii: " ")) && !bytes.contains(UInt8(ascii: "\t")) {
            output.append(bytes)
        } else {
            output.appendJSONString(bytes)
        }
    }

    /// True when `bytes` are valid UTF-8 without control characters (a tab is allowed).
    static func isPrintableUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let value = scalar.value
                if value == 0x09 { continue }
                if value < 0x20 || value == 0x7F || (0x80...0x9F).contains(value) || value == 0x2028 || value == 0x2029 {
                    return false
                }
            case .error: return false
            case .emptyInput: return true
            }
        }
    }
}
