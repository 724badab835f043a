import EventLog
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

    @Test func credentialsInTheURLAreRefusedWithAdviceAndWithoutEchoingThem() throws {
        for command in [["relay", "/tmp/x", "--subject-prefix", "o.", "--cursor", "r"], ["inbox", "/tmp/x", "--stream", "S", "--durable", "d"]] {
            let output = try CLIProcess.run(command + ["--nats", "nats://alice:pw-Secret-42@127.0.0.1:4222"])
            #expect(output.status == 2 && !output.signaled, "\(output)")
            #expect(output.stderr.contains("credentials in the URL are refused") && output.stderr.contains("--nats-auth-file"), "\(output.stderr)")
            #expect(!output.stderr.contains("pw-Secret-42") && !output.stdout.contains("pw-Secret-42"), "\(output.stderr)")
        }
    }

    @Test func helpExplainsAuthentication() throws {
        for command in ["relay", "inbox"] {
            let help = try CLIProcess.run([command, "--help"])
            let text = help.stdout.replacingOccurrences(of: "\n", with: " ")
            for phrase in ["--nats-auth-file <file>", "--nats-credentials <file>", "EVENTLOG_NATS_TOKEN", "EVENTLOG_NATS_NKEY_SEED", "An option wins over the environment"] {
                #expect(text.contains(phrase), "\(command): \(phrase)")
            }
        }
    }

    @Test func badCredentialSourcesAreUsageErrorsThatShowNoSecret() throws {
        let dir = TemporaryDirectory("nats-auth-usage")
        let log = try Log.open(at: dir.sub("log"))
        try log.close()
        try "user=alice\npasword=pw-Secret-42\n".write(toFile: dir.sub("typo.auth"), atomically: true, encoding: .utf8)
        try "token=tok-Secret-42\n".write(toFile: dir.sub("token.auth"), atomically: true, encoding: .utf8)
        let relay = ["relay", dir.sub("log"), "--nats", "nats://127.0.0.1:1", "--subject-prefix", "o.", "--cursor", "r", "--connect-attempts", "1"]
        for (extra, environment, expected) in [
            (["--nats-auth-file", dir.sub("typo.auth")], [:], "--nats-auth-file \(dir.sub("typo.auth")) line 2: unknown key"),
            (["--nats-auth-file", dir.sub("missing.auth")], [:], "cannot read --nats-auth-file \(dir.sub("missing.auth"))"),
            (["--nats-auth-file", dir.sub("token.auth"), "--nats-credentials", dir.sub("token.auth")], [:], "exclude each other"),
            (["--nats-credentials", dir.sub("token.auth")], [:], "--nats-credentials: invalid NATS credentials"),
            ([], ["EVENTLOG_NATS_TOKEN": "tok-Secret-42", "EVENTLOG_NATS_USER": "alice", "EVENTLOG_NATS_PASSWORD": "pw-Secret-42"],
             "conflicting NATS credentials in the environment"),
        ] as [([String], [String: String], String)] {
            let output = try CLIProcess.run(relay + extra, environment: environment)
            #expect(output.status == 2 && output.stderr.hasPrefix("eventlog relay: ") && output.stderr.contains(expected), "\(output)")
            #expect(!output.stderr.contains("Secret-42"), "\(output.stderr)")
        }
    }

    @Test func aMissingLogIsAnIOError() throws {
        let output = try CLIProcess.run(["relay", "/nonexistent/eventlog-nats", "--subject-prefix", "o.", "--cursor", "r"])
        #expect(output.status == 2 && output.stderr.hasPrefix("eventlog relay: "), "\(output)")
    }
}
