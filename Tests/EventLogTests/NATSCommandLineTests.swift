import Foundation
import Testing

/// `eventlog relay` and `eventlog inbox` without a server: help with an example, usage errors exit 2.
@Suite struct NATSCommandLineTests {
    @Test func helpGivesAnExample() throws {
        for (command, example) in [
            ("relay", "relay /var/lib/orders --nats nats://127.0.0.1:4222 --subject-prefix orders. --cursor relay --create-stream ORDERS"),
            ("inbox", "inbox /var/lib/billing --nats nats://127.0.0.1:4222 --stream ORDERS --durable billing --into-stream-prefix orders/"),
        ] {
            let help = try CLIProcess.run([command, "--help"])
            #expect(help.status == 0, "\(help)")
            let text = help.stdout.replacingOccurrences(of: "\n", with: " ")
            #expect(text.contains("Example: eventlog " + example), "\(command): \(help.stdout)")
            #expect(!help.stdout.contains("\\\n") && !help.stdout.contains("\\("), "\(command): \(help.stdout)")
        }
    }

    @Test(arguments: [
        ["relay", "/tmp/x", "--subject-prefix", "o.", "--cursor", "r", "--window", "0"],
        ["relay", "/tmp/x", "--subject-prefix", "o *", "--cursor", "r"],
        ["relay", "/tmp/x", "--subject-prefix", "o.", "--cursor", "r", "--nats", "http://h:1"],
        ["relay", "/tmp/x", "--subject-prefix", "o."],
        ["inbox", "/tmp/x", "--stream", "S"],
        ["inbox", "/tmp/x", "--stream", "S.x", "--durable", "d"],
        ["inbox", "/tmp/x", "--stream", "S", "--durable", "d", "--batch", "0"],
        ["inbox", "/tmp/x", "--stream", "S", "--durable", "d", "--durability", "sometimes"],
    ])
    func usageErrorsExitTwo(_ arguments: [String]) throws {
        let output = try CLIProcess.run(arguments)
        #expect(output.status == 2 && !output.signaled, "\(arguments): \(output)")
        #expect(!output.stderr.isEmpty)
    }

    @Test func aMissingLogIsAnIOError() throws {
        let output = try CLIProcess.run(["relay", "/nonexistent/eventlog-nats", "--subject-prefix", "o.", "--cursor", "r"])
        #expect(output.status == 2 && output.stderr.hasPrefix("eventlog relay: "), "\(output)")
    }
}
