import ArgumentParser
import EventLog
import Logging

/// `eventlog`: append to, read, check and describe an event log from the shell.
///
/// Every subcommand parses its arguments, calls the library and formats
/// the result; none of them touches the log's files itself.
@main
struct EventLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eventlog",
        abstract: "Append to, read, follow, verify, repair, inspect, measure (stats), export and import an EventLog directory, and manage its streams, cursors and retention.",
        discussion: """
            Exit codes, the same for every command: 0 success (also tail -f stopped by SIGINT or \
            SIGTERM, or by its reader going away); 1 a finding: damage, problems verify found, a \
            repair planned but not applied (repair without --yes), a hard-deleted stream read (dump --stream), a position removed by retention (dump --from); 2 a \
            usage or I/O error: an unknown option, a malformed option value (config set --retain-age \
            5x) or input line (append), a stream or cursor that does not exist (streams delete|truncate, \
            cursors delete), a missing log, a log locked by a writer (tail --cursor, cursors set|delete, \
            config set, compact, repair and streams delete|truncate beside one), a failed read or write, a \
            NATS server that relay or inbox could not reach or use after their retries; 3 a \
            refused write: a stream refused it (append, streams delete|truncate): a wrong expected \
            version, a hard-deleted stream or an idempotency conflict; or repair --yes refused a repair \
            that would lose what only the log's files hold.
            """,
        version: "eventlog, writing EventLog format version \(Log.formatVersion)",
        subcommands: [
            AppendCommand.self, DumpCommand.self, TailCommand.self, VerifyCommand.self, RepairCommand.self, InspectCommand.self,
            StatsCommand.self, StreamsCommand.self, CursorsCommand.self, ConfigCommand.self, CompactCommand.self, ExportCommand.self,
            ImportCommand.self, RelayCommand.self, InboxCommand.self,
        ])

    /// Exit code of a usage error: 2, as every command's malformed input
    /// (ArgumentParser's own is 64).
    static let usageExitCode: Int32 = 2

    /// ArgumentParser's `main()`, with usage errors exiting with 2.
    static func main() {
        // The library's messages go to stderr from `warning` up (damage an open went
        // around, a torn tail cut, a slow sync); its `info` (an open's summary, rolls,
        // compaction runs) would only clutter a command's output.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
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
