import ArgumentParser
import EventLog

/// `eventlog`: append to, read, check and describe an event log from the shell.
///
/// Every subcommand parses its arguments, calls the library and formats
/// the result; none of them touches the log's files itself.
@main
struct EventLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventlog",
        abstract: "Append to, read, follow, verify and inspect an EventLog directory, and manage its streams, cursors and retention.",
        discussion: """
            Exit codes: 0 success (also tail -f stopped by SIGINT or SIGTERM, or by its reader going \
            away); 1 an I/O error, damage, a missing or locked log (also tail --cursor, cursors \
            set|delete, config set and compact beside a writer), a missing cursor (cursors delete), a \
            hard-deleted stream read (dump --stream), a position removed by retention (dump --from), or \
            (verify) problems found; 2 a usage error (an unknown option, a malformed option value such \
            as config set --retain-age 5x) or a malformed input line (append); 3 a stream refused a \
            write (append, streams delete|truncate): a wrong expected version, a hard-deleted stream or \
            an idempotency conflict.
            """,
        version: "eventlog, writing EventLog format version \(Log.formatVersion)",
        subcommands: [
            AppendCommand.self, DumpCommand.self, TailCommand.self, VerifyCommand.self, InspectCommand.self, StreamsCommand.self,
            CursorsCommand.self, ConfigCommand.self, CompactCommand.self,
        ])

    /// Exit code of a usage error: 2, as every command's malformed input
    /// (ArgumentParser's own is 64).
    static let usageExitCode: Int32 = 2

    /// ArgumentParser's `main()`, with usage errors exiting with 2.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                writeToStandardError(fullMessage(for: error) + "\n")
                exit(withError: ExitCode(usageExitCode))
            }
            exit(withError: error)
        }
    }
}
