import ArgumentParser
import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failure that ends a command: the message for stderr and the exit code.
///
/// Exit codes (the scripts' contract, the same for every command): 1 for a
/// finding (damage, a position retention removed, a hard-deleted stream
/// read, problems `verify` found); 2 for a usage error (an unknown option,
/// a malformed option value or input line, a stream or cursor that does
/// not exist) or an I/O error (a missing or locked log, a failed read or
/// write); 3 for a refused write: a stream refuses it (a wrong expected
/// version, a hard-deleted stream, an idempotency conflict), or `repair
/// --yes` refuses to carry out a repair that would lose what only the log's
/// files hold. `EventLogError.exitCode`
/// classifies the library's errors; ArgumentParser's usage errors exit 2
/// through `EventLogCommand.main`.
struct CommandFailure: Error {
    static let findingExitCode: Int32 = 1
    static let usageOrIOExitCode: Int32 = 2
    static let malformedInputExitCode: Int32 = usageOrIOExitCode
    static let refusedWriteExitCode: Int32 = 3

    var message: String
    var exitCode: Int32

    init(_ message: String, exitCode: Int32 = CommandFailure.usageOrIOExitCode) {
        self.message = message
        self.exitCode = exitCode
    }

    /// A finding about the log's contents (exit 1).
    static func finding(_ message: String) -> CommandFailure {
        CommandFailure(message, exitCode: findingExitCode)
    }

    static func malformed(line: Int, _ reason: String) -> CommandFailure {
        CommandFailure("line \(line): \(reason)", exitCode: malformedInputExitCode)
    }

    /// A write the stream refused (`line 7: stream order-1: expected version 4, actual 6`).
    static func streamConflict(line: Int? = nil, _ error: EventLogError) -> CommandFailure {
        CommandFailure((line.map { "line \($0): " } ?? "") + error.description, exitCode: refusedWriteExitCode)
    }
}

extension EventLogError {
    /// A command's exit code for this error: 1 for damage and other findings
    /// about the log's contents, 3 for a stream's refusal of a write, 2 for
    /// the rest (I/O, a missing or locked log, a bad argument, a format
    /// version this build cannot read).
    var exitCode: Int32 {
        switch self {
        case .corruption, .cursorDamaged, .foreignFile, .missingSegment, .positionRemoved, .streamDeleted:
            return CommandFailure.findingExitCode
        case .wrongExpectedVersion, .idempotencyConflict: return CommandFailure.refusedWriteExitCode
        default: return CommandFailure.usageOrIOExitCode
        }
    }

    /// The errors by which a stream refuses a write (exit code 3), with the stream's name.
    var refusingStream: String? {
        switch self {
        case .wrongExpectedVersion(let stream, _, _), .streamDeleted(let stream), .idempotencyConflict(let stream, _):
            return stream
        default:
            return nil
        }
    }
}

/// Runs a command's body, turning every error into a message on stderr and
/// an `ExitCode`, so no command ends with a trap or an unexplained status.
func reportingFailures(command: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as CommandFailure {
        writeToStandardError("eventlog \(command): \(failure.message)\n")
        throw ExitCode(failure.exitCode)
    } catch let error as EventLogError {
        writeToStandardError("eventlog \(command): \(error.description)\n")
        throw ExitCode(error.exitCode)
    } catch let exit as ExitCode {
        throw exit
    } catch {
        writeToStandardError("eventlog \(command): \(error)\n")
        throw ExitCode(CommandFailure.usageOrIOExitCode)
    }
}

/// Writes `message` to fd 2 unbuffered, ignoring failures (there is nowhere left to report them).
func writeToStandardError(_ message: String) {
    var message = message
    message.withUTF8 { bytes in
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = write(2, base + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            done += n
        }
    }
}

/// Makes a write to a closed pipe fail with `EPIPE` instead of killing the
/// process, so a command can report it (or stop quietly) and still close the log.
func ignoreBrokenPipeSignal() {
    signal(SIGPIPE, SIG_IGN)
}

/// Runs a library call under typed throws: every error the library throws
/// is an `EventLogError` (README, "Errors"); anything else would be a bug,
/// reported as an invalid argument rather than lost.
func library<T>(_ body: () throws -> T) throws(EventLogError) -> T {
    do { return try body() } catch let error as EventLogError { throw error } catch { throw .invalidArgument("\(error)") }
}
