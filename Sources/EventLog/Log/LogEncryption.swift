#if canImport(Glibc)
import Glibc
#endif

/// Supplies the master key of an encrypted log: 32 bytes (AES-256). The
/// master key never touches the disk; it wraps the log's data keys, which
/// the key store `eventlog.keys` holds (Format.md §16).
///
/// Implement it to fetch the key from your KMS or secret manager;
/// `EnvironmentKeyProvider` and `FileKeyProvider` cover the simple cases.
/// Called once per open (and by `Log.rotateMasterKey(to:)`), on the
/// opening thread.
public protocol KeyProvider: Sendable {
    /// The 32-byte master key.
    /// - Throws: any error; the open fails with it.
    func masterKey() throws -> [UInt8]
}

/// A master key given as bytes (tests, or a key the caller fetched itself).
public struct StaticKeyProvider: KeyProvider {
    let key: [UInt8]
    /// - Parameter key: 32 bytes.
    public init(key: [UInt8]) { self.key = key }
    public func masterKey() throws -> [UInt8] { key }
}

/// The master key from an environment variable, as 64 hexadecimal digits.
public struct EnvironmentKeyProvider: KeyProvider {
    /// The variable's name.
    public let variable: String
    public init(variable: String = "EVENTLOG_MASTER_KEY") { self.variable = variable }
    public func masterKey() throws -> [UInt8] {
        guard let value = getenv(variable).map({ String(cString: $0) }) else {
            throw EventLogError.invalidArgument("the environment variable \(variable) (the master key) is not set")
        }
        return try MasterKeyText.decode(value, source: "the environment variable \(variable)")
    }
}

/// The master key from a file: 32 raw bytes, or 64 hexadecimal digits
/// (a trailing newline allowed). The file must not be readable or writable
/// by the group or others (`chmod 600`): a key anyone can read protects nothing.
public struct FileKeyProvider: KeyProvider {
    public let path: String
    public init(path: String) { self.path = path }
    public func masterKey() throws -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw EventLogError.invalidArgument("cannot read the master key file \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw EventLogError.insecurePermissions(path: path, mode: UInt32(info.st_mode & 0o7777))
        }
        guard info.st_size <= 4096 else {
            throw EventLogError.invalidArgument("the master key file \(path) is \(info.st_size) bytes: expected 32 bytes or 64 hexadecimal digits")
        }
        guard let file = fopen(path, "rb") else {
            throw EventLogError.invalidArgument("cannot read the master key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: 4097)
        let count = fread(&bytes, 1, bytes.count, file)
        bytes.removeSubrange(count...)
        if bytes.count == 32 { return bytes }
        return try MasterKeyText.decode(String(decoding: bytes, as: UTF8.self), source: "the master key file \(path)")
    }
}

/// Master keys written as 64 hexadecimal digits.
enum MasterKeyText {
    static func decode(_ text: String, source: String) throws(EventLogError) -> [UInt8] {
        let digits = Array(text.trimmingSuffixWhitespace().utf8)
        guard digits.count == 64 else {
            throw .invalidArgument("\(source) holds \(digits.count) characters: expected 64 hexadecimal digits (32 bytes)")
        }
        var key = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 {
            guard let high = hexValue(digits[2 * i]), let low = hexValue(digits[2 * i + 1]) else {
                throw .invalidArgument("\(source) is not hexadecimal: expected 64 hexadecimal digits (32 bytes)")
            }
            key[i] = high << 4 | low
        }
        return key
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension String {
    fileprivate func trimmingSuffixWhitespace() -> Substring {
        var end = endIndex
        while end > startIndex, let last = self[..<end].last, last.isWhitespace { end = index(before: end) }
        return self[..<end]
    }
}

/// Which data key seals an event (Format.md §16). Chosen when the log is
/// created and kept in its key store; an open of an existing log uses the
/// stored one.
public enum DataKeyScope: Sendable, Equatable {
    /// One data key for the whole log. `Log.forgetStream(_:)` is refused.
    case log
    /// One data key per stream: `Log.forgetStream(_:)` forgets one stream.
    case stream
    /// One data key per stream name prefix: the name up to (not including)
    /// the first `separator` byte, or the whole name without one; e.g. with
    /// `/`, `customer-42/orders` and `customer-42/profile` share the key of
    /// `customer-42`, and forgetting either forgets both.
    case streamPrefix(separator: UInt8)

    /// The stored code and separator (Format.md §16, header bytes 12–13).
    var stored: (scope: UInt8, separator: UInt8) {
        switch self {
        case .log: return (0, 0)
        case .stream: return (1, 0)
        case .streamPrefix(let separator): return (2, separator)
        }
    }

    init(scope: UInt8, separator: UInt8) {
        switch scope {
        case 0: self = .log
        case 1: self = .stream
        default: self = .streamPrefix(separator: separator)
        }
    }

    /// The scope name of a stream: the bytes that name its data key.
    @inline(__always)
    func scopeName(of stream: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        switch self {
        case .log: return UnsafeRawBufferPointer(rebasing: stream[0..<0])
        case .stream: return stream
        case .streamPrefix(let separator):
            guard let end = stream.firstIndex(of: separator) else { return stream }
            return UnsafeRawBufferPointer(rebasing: stream[0..<end])
        }
    }
}

/// Encryption at rest (`LogOptions.encryption`): every event's data and
/// metadata sealed with AES-256-GCM under a data key, the data keys
/// wrapped by a master key from `keyProvider` (Format.md §5.1, §16).
/// Stream names, event types, versions, timestamps and keys stay readable:
/// the indexes and compaction need them without the key.
public struct LogEncryption: Sendable {
    /// Where the master key comes from.
    public var keyProvider: any KeyProvider
    /// How data keys are assigned; used when the log is created.
    public var scope: DataKeyScope

    public init(keyProvider: any KeyProvider, scope: DataKeyScope = .log) {
        self.keyProvider = keyProvider
        self.scope = scope
    }
}
