/// Every error the library throws. Each case carries what a caller needs to
/// act on it, and `description` is a message a person can act on.
public enum EventLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed (including a full disk: `EventLogIOError.isDiskFull`).
    case io(EventLogIOError)
    /// Bytes that should be valid are not: a checksum mismatch, an impossible
    /// length, a broken chain. `file` and `offset` locate the damage.
    case corruption(file: String, offset: Int64, reason: String)
    /// Cursor `name` was in a damaged region of the cursor journal (`file`,
    /// at byte `offset`): its position is unknown, so it is not used until
    /// it is reset, deleted, or `Log.repair` settles it (Format.md §15).
    case cursorDamaged(name: String, file: String, offset: Int64)
    /// A file written by a format version this build does not read.
    case unsupportedFormatVersion(file: String, found: Int, supported: Int)
    /// A file that is not part of this log: wrong magic, or another log's id.
    case foreignFile(file: String, reason: String)
    /// A segment is missing between two others (the log would be shorter than it is).
    case missingSegment(expectedBasePosition: UInt64, found: String)
    /// An argument breaks a named limit (`Limits`).
    case limitExceeded(limit: String, value: Int, maximum: Int)
    /// An argument is wrong for another reason.
    case invalidArgument(String)
    /// A position past the end of the log, or before its start.
    case positionOutOfRange(position: UInt64, start: UInt64, end: UInt64)
    /// A read of one position that retention removed (the log now starts at
    /// `start`), or that scavenging removed from a rewritten segment (its
    /// stream was deleted or truncated; the position is at or after `start`).
    case positionRemoved(position: UInt64, start: UInt64)
    /// An fsync (or a write) failed earlier; the writer refuses appends until
    /// the log is reopened, because what reached the disk is unknown.
    case writerStopped(reason: String)
    /// The log is closed.
    case closed
    /// Another process (or another `Log` in this one) has the log open for
    /// writing. A `Log` this process released without `close()` is waited
    /// for (its background writes, at most 30 s) before an open refuses.
    case locked(path: String)
    /// No log exists at the path (opening read-only, or without `create`).
    case notFound(path: String)
    /// The operation needs a writable log.
    case readOnly
    /// The log directory, or a file or directory in it, can be written by
    /// its group or by others (`mode`, the permission bits): such a log is
    /// not opened, since another user could have changed it. `chmod go-w` it.
    case insecurePermissions(path: String, mode: UInt32)
    /// An append's expectation of a stream's version did not hold; nothing was
    /// written. `actual` is the stream's version (nil: no stream).
    case wrongExpectedVersion(stream: String, expected: ExpectedVersion, actual: UInt64?)
    /// The stream was hard-deleted: it cannot be read or written.
    case streamDeleted(stream: String)
    /// An append repeated some, but not all, of the events (by event id) of
    /// the previous append to the stream: neither a retry nor a new append.
    case idempotencyConflict(stream: String, reason: String)
    /// The log is encrypted (Format.md §16) and was opened without a key
    /// provider (`LogOptions.encryption`), or a plain log was opened with one.
    case encryptionMismatch(path: String, reason: String)
    /// The master key the key provider gave is not the log's (`file`: its
    /// key store). Nothing was read or changed.
    case wrongMasterKey(file: String)
    /// A sealed batch (`file`, at byte `offset`) names data key `keyID`,
    /// which the log's key store does not hold: the key store lost it
    /// (damage, or a key store from another copy of the log). Never taken
    /// as a forgotten key.
    case dataKeyMissing(file: String, offset: Int64, keyID: UInt32)
    /// A sealed payload whose checksum holds did not open under its data key
    /// (`file`, at byte `offset`): the key is wrong, or the bytes were changed
    /// together with their checksum.
    case sealBroken(file: String, offset: Int64, keyID: UInt32)

    /// Any error of the library's internals as an `EventLogError`.
    /// The failed sync this error reports, if it is one (`EventLogIOError.isFailedSync`).
    var failedSync: EventLogIOError? {
        if case .io(let error) = self, error.isFailedSync { return error }
        return nil
    }

    static func wrapping(_ error: any Error) -> EventLogError {
        if let error = error as? EventLogError { return error }
        if let error = error as? IOError { return .io(error) }
        return .invalidArgument("\(error)")
    }

    /// A message a person can act on: what failed, the file and byte offset
    /// where there is one, and what to do where the case says.
    public var description: String {
        switch self {
        case .io(let error): return error.description
        case .corruption(let file, let offset, let reason): return "corruption in \(file) at byte \(offset): \(reason)"
        case .cursorDamaged(let name, let file, let offset):
            return "cursor \(name) is damaged (\(file) at byte \(offset)): reset or delete it, or run eventlog repair"
        case .unsupportedFormatVersion(let file, let found, let supported):
            return "\(file) has format version \(found); this build reads version \(supported) only"
        case .foreignFile(let file, let reason): return "\(file) does not belong to this log: \(reason)"
        case .missingSegment(let base, let found):
            return "segment with base position \(base) is missing (found \(found) instead)"
        case .limitExceeded(let limit, let value, let maximum): return "\(limit) is \(value), above the maximum of \(maximum)"
        case .invalidArgument(let message): return "invalid argument: \(message)"
        case .positionOutOfRange(let position, let start, let end):
            return "position \(position) is outside the log [\(start), \(end))"
        case .positionRemoved(let position, let start):
            if position >= start {
                return "position \(position) was removed by scavenging (its stream was deleted or truncated); the log starts at position \(start)"
            }
            return "position \(position) was removed by retention; the log now starts at position \(start)"
        case .writerStopped(let reason): return "the writer stopped after a failed write or sync (\(reason)); reopen the log"
        case .closed: return "the log is closed"
        case .locked(let path): return "\(path) is open for writing by another process"
        case .notFound(let path): return "no event log at \(path)"
        case .readOnly: return "the log was opened read-only"
        case .insecurePermissions(let path, let mode):
            let digits = String(mode, radix: 8)
            return "\(path) has mode \(String(repeating: "0", count: max(0, 4 - digits.count)) + digits), which lets its group or others write it; a log that other users "
                + "can change is not opened (run chmod go-w on it)"
        case .wrongExpectedVersion(let stream, let expected, let actual):
            return "stream \(stream): expected version \(expected), actual \(actual.map(String.init) ?? "no stream")"
        case .streamDeleted(let stream): return "stream \(stream) was deleted"
        case .idempotencyConflict(let stream, let reason): return "stream \(stream): \(reason)"
        case .encryptionMismatch(let path, let reason): return "\(path): \(reason)"
        case .wrongMasterKey(let file):
            return "\(file): the master key given is not this log's (its check value differs); nothing was read"
        case .dataKeyMissing(let file, let offset, let keyID):
            return "\(file) at byte \(offset): sealed under data key \(keyID), which the key store does not hold (lost, not forgotten)"
        case .sealBroken(let file, let offset, let keyID):
            return "\(file) at byte \(offset): the sealed payload does not open under data key \(keyID) (a wrong key, or bytes changed together with their checksum)"
        }
    }
}
