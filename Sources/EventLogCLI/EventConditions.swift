import EventLog

/// The conditions `dump` checks on each event itself, besides `--type` and
/// `--stream-prefix` (which the library's `EventFilter` applies): its time
/// within [`--since`, `--until`) and every `--meta KEY=VALUE`.
struct EventConditions {
    var since: Timestamp?
    /// Exclusive.
    var until: Timestamp?
    var metadata: [MetadataCondition] = []

    /// True when nothing is checked.
    var isEmpty: Bool { since == nil && until == nil && metadata.isEmpty }

    /// - Throws: a finding (exit 1) when the event's metadata is damaged.
    func matches(_ event: EventView) throws -> Bool {
        if let since, event.timestamp < since { return false }
        if let until, event.timestamp >= until { return false }
        if metadata.isEmpty { return true }
        if event.metadataBytes.isEmpty { return false }
        let decoded = try DumpCommand.metadata(of: event)
        return metadata.allSatisfy { $0.matches(decoded) }
    }
}
