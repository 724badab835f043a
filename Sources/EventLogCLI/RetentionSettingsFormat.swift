import ArgumentParser
import EventLog

/// A retention setting given to `config set`: a new value, or `none` to clear it.
enum SettingChange<Value: Sendable & Equatable>: Sendable, Equatable {
    case clear
    case set(Value)

    var value: Value? {
        switch self {
        case .clear: return nil
        case .set(let value): return value
        }
    }
}

/// The values of `config set`'s options, and how `config`, `config set` and
/// `inspect` print a log's `LogSettings` (text rows and the JSON object).
enum RetentionSettingsFormat {
    // MARK: Parsing

    static let durationFormats = "\(DurationText.formats), or none"
    static let sizeFormats = "bytes, or an integer followed by K, M, G or T (powers of 1024: 512M, 10G), or none"

    /// The longest retain age the settings file holds (microseconds up to `Int64.max`).
    static let maxAgeSeconds = UInt64(Int64.max) / 1_000_000

    /// `90s`, `30m`, `12h`, `7d` (1 second or more), or `none`.
    static func parseDuration(_ text: String) throws -> SettingChange<Duration> {
        if text.lowercased() == "none" { return .clear }
        guard let (count, unit) = DurationText.parse(text) else { throw ValidationError("expected \(durationFormats)") }
        guard count > 0 else { throw ValidationError("the retain age must be at least 1s") }
        // The settings file keeps microseconds in a signed range (Format.md §3.2).
        guard count <= maxAgeSeconds / unit else { throw ValidationError("the retain age must be at most \(maxAgeSeconds)s") }
        return .set(.seconds(Int64(count * unit)))
    }

    /// `1048576`, `512K`, `10G` (powers of 1024; 1 byte or more), or `none`.
    static func parseSize(_ text: String) throws -> SettingChange<UInt64> {
        if text.lowercased() == "none" { return .clear }
        let units: [Character: UInt64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40]
        var digits = Substring(text)
        var unit: UInt64 = 1
        if let last = text.last, let multiplier = units[Character(last.lowercased())] {
            unit = multiplier
            digits = digits.dropLast()
        }
        guard let count = decimal(digits) else { throw ValidationError("expected \(sizeFormats)") }
        guard count > 0 else { throw ValidationError("the retain bytes must be at least 1") }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw ValidationError("the size is too large") }
        return .set(bytes)
    }

    /// `relay,audit` (names of 1 to 255 UTF-8 bytes, none twice); an empty string is no cursors.
    static func parseCursorList(_ text: String) throws -> [String] {
        if text.isEmpty { return [] }
        var names: [String] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
            guard !name.isEmpty else { throw ValidationError("expected cursor names separated by commas, without an empty one") }
            guard name.utf8.count <= Limits.maxCursorNameBytes else {
                throw ValidationError("a cursor name is at most \(Limits.maxCursorNameBytes) UTF-8 bytes")
            }
            guard !names.contains(name) else { throw ValidationError("the cursor \(name) is named twice") }
            names.append(name)
        }
        guard names.count <= Limits.maxRetentionCursors else {
            throw ValidationError("at most \(Limits.maxRetentionCursors) cursors, got \(names.count)")
        }
        return names
    }

    /// ASCII decimal digits only (no sign, no spaces); nil when empty, malformed or above `UInt64.max`.
    private static func decimal(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(text)
    }

    // MARK: Printing

    /// A retain age in whole seconds (the library keeps whole seconds; a finer part is dropped).
    static func seconds(_ age: Duration) -> Int64 { age.components.seconds }

    /// `7d`, `12h (43200 seconds)`... as `config` prints it; `unlimited` when unset.
    static func describeAge(_ age: Duration?) -> String {
        guard let age else { return "unlimited" }
        let seconds = seconds(age)
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds % size == 0 && seconds >= size {
            return "\(seconds / size)\(unit) (\(seconds) seconds)"
        }
        return "\(seconds)s"
    }

    /// `8192 bytes (8K)`, `1000 bytes`; `unlimited` when unset.
    static func describeSize(_ bytes: UInt64?) -> String {
        guard let bytes else { return "unlimited" }
        for (unit, shift) in [("T", UInt64(40)), ("G", 30), ("M", 20), ("K", 10)] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes) bytes (\(bytes >> shift)\(unit))"
        }
        return "\(bytes) bytes"
    }

    /// The lines `config` prints: `retain age`, `retain bytes`, `retain cursors`,
    /// `key compaction`, `tombstones` (their retention).
    static func textRows(_ settings: LogSettings) -> [(String, String)] {
        [
            ("retain age", describeAge(settings.retainAge)),
            ("retain bytes", describeSize(settings.retainBytes)),
            ("retain cursors", settings.retainCursors.isEmpty ? "none" : settings.retainCursors.joined(separator: ", ")),
            ("key compaction", settings.keyCompaction ? "on" : "off"),
            ("tombstones", "kept \(seconds(settings.tombstoneRetention))s"),
        ]
    }

    /// Labels padded to the widest, two spaces, then the value: the style of `inspect`'s header.
    static func writeRows(_ rows: [(String, String)], into output: inout OutputWriter) {
        let labelWidth = rows.map(\.0.count).max() ?? 0
        for (label, value) in rows {
            output.append(label + String(repeating: " ", count: labelWidth - label.count + 2) + value + "\n")
        }
    }

    /// `{"retain_age_seconds":604800,"retain_bytes":null,"retain_cursors":["relay"],"key_compaction":false,"tombstone_retention_seconds":86400}`
    static func writeJSON(_ settings: LogSettings, into output: inout OutputWriter) {
        output.append("{\"retain_age_seconds\":")
        if let age = settings.retainAge { output.append(seconds(age)) } else { output.append("null") }
        output.append(",\"retain_bytes\":")
        if let bytes = settings.retainBytes { output.append(bytes) } else { output.append("null") }
        output.append(",\"retain_cursors\":[")
        for (i, name) in settings.retainCursors.enumerated() {
            if i > 0 { output.append(byte: UInt8(ascii: ",")) }
            output.appendJSONString(name)
        }
        output.append("],\"key_compaction\":")
        output.append(settings.keyCompaction ? "true" : "false")
        output.append(",\"tombstone_retention_seconds\":")
        output.append(seconds(settings.tombstoneRetention))
        output.append("}")
    }
}

extension Log {
    /// Opens the log in `directory` for writing, for a command that changes
    /// it and closes it again: no background retention (a short-lived
    /// writer), and a lock held by another process named as such.
    static func openForCommand(_ directory: String, purpose: String) throws -> Log {
        var options = try LogOptions.cli(createIfMissing: false)
        options.maintenanceInterval = nil
        do {
            return try Log.open(at: directory, options: options)
        } catch let error as EventLogError {
            guard case .locked = error else { throw error }
            throw CommandFailure("\(error.description): \(purpose) needs the log not to be open by a writer")
        }
    }

    /// Opens the log in `directory` read-only (works beside a running writer).
    static func openReadOnly(_ directory: String) throws -> Log {
        var options = try LogOptions.cli(createIfMissing: false, readOnly: true)
        options.maintenanceInterval = nil
        return try Log.open(at: directory, options: options)
    }
}
