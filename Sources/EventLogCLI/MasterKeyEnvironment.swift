import EventLog

#if canImport(Glibc)
import Glibc
#endif

/// How every command finds an encrypted log's master key: from the
/// environment, never the command line (which `ps` shows).
///
/// - `EVENTLOG_MASTER_KEY_FILE`: a file holding the 32-byte key (raw, or 64
///   hexadecimal digits), readable by its owner only;
/// - else `EVENTLOG_MASTER_KEY`: the key as 64 hexadecimal digits.
///
/// A log created by a command (`append` to a new directory) is encrypted
/// when one of them is set, with the data key scope of
/// `EVENTLOG_DATA_KEY_SCOPE`: `log` (the default), `stream`, or
/// `prefix:C` (one key per stream name prefix up to the byte C).
enum MasterKeyEnvironment {
    static let fileVariable = "EVENTLOG_MASTER_KEY_FILE"
    static let keyVariable = "EVENTLOG_MASTER_KEY"
    static let scopeVariable = "EVENTLOG_DATA_KEY_SCOPE"

    static func value(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// The encryption the environment asks for, nil when it names no key.
    static func encryption() throws -> LogEncryption? {
        let provider: any KeyProvider
        if let path = value(fileVariable) {
            provider = FileKeyProvider(path: path)
        } else if value(keyVariable) != nil {
            provider = EnvironmentKeyProvider(variable: keyVariable)
        } else {
            return nil
        }
        return LogEncryption(keyProvider: provider, scope: try scope())
    }

    static func scope() throws -> DataKeyScope {
        guard let text = value(scopeVariable) else { return .log }
        switch text {
        case "log": return .log
        case "stream": return .stream
        default:
            if text.hasPrefix("prefix:"), text.utf8.count == 8, let byte = text.utf8.last {
                return .streamPrefix(separator: byte)
            }
            throw CommandFailure("\(scopeVariable) is \(text): expected log, stream or prefix:C (one separator character)")
        }
    }
}

extension LogOptions {
    /// The library's options, with the master key the environment gives
    /// (`MasterKeyEnvironment`): what every command opens a log with.
    static func cli(
        segmentBytes: Int = 128 << 20, durability: Durability = .always, compression: Compression = .none,
        createIfMissing: Bool = true, readOnly: Bool = false
    ) throws -> LogOptions {
        var options = LogOptions(
            segmentBytes: segmentBytes, durability: durability, compression: compression, createIfMissing: createIfMissing,
            readOnly: readOnly)
        options.encryption = try MasterKeyEnvironment.encryption()
        return options
    }
}
