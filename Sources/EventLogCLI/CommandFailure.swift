import ArgumentParser
import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failure that ends a command: the message for stderr and the exit code.
///
/// Exit codes (the scripts' contract): 1 for I/O errors, corruption, a
/// locked or missing log, a position retention removed (every
/// `EventLogError` that is not a stream's refusal, `positionRemoved`
/// included: see `reportingFailures`); 2 for malformed input to `append`; 3 when a
/// stream refuses a write (a wrong expected version, a hard-deleted stream,
/// an idempotency conflict). Usage errors exit with 2 too (`EventLogCommand.main`).
struct CommandFailure: Error {
    static let failureExitCode: Int32 = 1
    static let malformedInputExitCode: Int32 = 2
    static let streamConflictExitCode: Int32 = 3

    var message: String
    var exitCode: Int32

    init(_ message: String, exitCode: Int32 = CommandFailure.failureExitCode) {
        self.message = message
        self.exitCode = exitCode
    }

    static func malformed(line: Int, _ reason: String) -> CommandFailure {
        CommandFailure("line \(line): \(reason)", exitCode: malformedInputExitCode)
    }

    /// A write the stream refused (`line 7: stream order-1: expected version 4, actual 6`).
    static func streamConflict(line: Int? = nil, _ error: EventLogError) -> CommandFailure {
        CommandFailure((line.map { "line \($0): " } ?? "") + error.description, exitCode: streamConflictExitCode)
    }
}

extension EventLogError {
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
        throw ExitCode(CommandFailure.failureExitCode)
    } catch let exit as ExitCode {
        throw exit
    } catch {
        writeToStandardError("eventlog \(command): \(error)\n")
        throw ExitCode(CommandFailure.failureExitCode)
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
