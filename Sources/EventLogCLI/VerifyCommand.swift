import ArgumentParser
import EventLog

/// `eventlog verify DIR`: checks every checksum and every index of a log.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every checksum and every index file of a log.",
        discussion: """
            Reads every byte of the log without changing it (it works beside a running writer). \
            Exits with 0 and a one-line summary when all is sound; otherwise prints one line per \
            problem, "FILE at byte OFFSET: REASON", and exits with 1.
            """)

    @Argument(help: "The log directory.")
    var directory: String

    func run() throws {
        ignoreBrokenPipeSignal()
        try reportingFailures(command: "verify") {
            let report = try Log.verify(at: directory)
            var output = OutputWriter(fd: 1)
            if report.isSound {
                output.append("sound: \(report.segments) segments, \(report.batches) batches, \(report.events) events, ")
                output.append("\(report.indexFiles) index files checked in \(directory)\n")
                try output.flush()
                return
            }
            for problem in report.problems {
                output.append("\(problem.file) at byte \(problem.offset): \(problem.reason)")
                try output.appendLineEnd()
            }
            try output.flush()
            let count = report.problems.count
            throw CommandFailure.finding(
                "\(count) \(count == 1 ? "problem" : "problems") found in \(directory) "
                    + "(\(report.segments) segments, \(report.batches) batches, \(report.events) events checked)")
        }
    }
}
