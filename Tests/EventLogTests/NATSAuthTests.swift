import Foundation
import Testing
@testable import EventLog
@testable import EventLogNATS
import NATSClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The relay and the inbox against real `nats-server`s that require credentials (user and password, token, user
/// NKey: the server verifies the NKey's signature of its nonce): the right credentials relay to JetStream, wrong or
/// missing ones end the run at once with `authorizationRefused` (library) or exit 2 (command), and no secret shows
/// in an error or on stderr. Skipped when no nats-server is installed.
@Suite(.serialized, .enabled(if: NATSServerProcess.isAvailable, NATSServerProcess.skipMessage))
struct NATSAuthTests {
    /// One way of authenticating: the server's `authorization` block, the right and a wrong credential as the library
    /// takes them, as a `--nats-auth-file`, and as environment variables, and the secrets that must never show.
    struct Method {
        var configuration: String
        var right: NATSCredentials
        var wrong: NATSCredentials
        var rightFile: String
        var wrongFile: String
        var rightEnvironment: [String: String]
        var secrets: [String]
    }

    static func method(_ name: String) -> Method {
        switch name {
        case "user":
            return Method(
                configuration: #"authorization { user: "relay-user", password: "pw-Right-7f3a" }"#,
                right: .userPassword(user: "relay-user", password: "pw-Right-7f3a"),
                wrong: .userPassword(user: "relay-user", password: "pw-Wrong-91c2"),
                rightFile: "user=relay-user\npassword=pw-Right-7f3a\n", wrongFile: "user=relay-user\npassword=pw-Wrong-91c2\n",
                rightEnvironment: ["EVENTLOG_NATS_USER": "relay-user", "EVENTLOG_NATS_PASSWORD": "pw-Right-7f3a"],
                secrets: ["pw-Right-7f3a", "pw-Wrong-91c2"])
        case "token":
            return Method(
                configuration: #"authorization { token: "tok-Right-5d1e" }"#,
                right: .token("tok-Right-5d1e"), wrong: .token("tok-Wrong-0b6c"),
                rightFile: "token=tok-Right-5d1e\n", wrongFile: "token=tok-Wrong-0b6c\n",
                rightEnvironment: ["EVENTLOG_NATS_TOKEN": "tok-Right-5d1e"],
                secrets: ["tok-Right-5d1e", "tok-Wrong-0b6c"])
        default:
            let right = NATSNKey.generate()
            let wrong = NATSNKey.generate()
            return Method(
                configuration: #"authorization { users: [ { nkey: "\#(right.publicKey)" } ] }"#,
                right: .nkey(right), wrong: .nkey(wrong),
                rightFile: "nkey-seed=\(right.seed)\n", wrongFile: "# not the server's key\nnkey-seed=\(wrong.seed)\n",
                rightEnvironment: ["EVENTLOG_NATS_NKEY_SEED": right.seed],
                secrets: [right.seed, wrong.seed])
        }
    }

    static let events = 25

    /// A log of `events` events in `dir`.
    static func makeLog(_ dir: TemporaryDirectory) throws {
        let log = try Log.open(at: dir.sub("log"))
        try Fixtures.append(log, 0..<events, batch: 5)
        try log.close()
    }

    static func relayOptions(cursor: String, credentials: NATSCredentials, backoff: Backoff = Backoff()) -> RelayOptions {
        RelayOptions(subjectPrefix: "auth.", cursor: cursor, createStream: "AUTH", backoff: backoff, stopWhenIdle: true, credentials: credentials)
    }

    @Test(arguments: ["user", "token", "nkey"])
    func theRightCredentialsRelayAndWrongOnesAreRefusedAtOnce(_ name: String) throws {
        let method = Self.method(name)
        let dir = TemporaryDirectory("nats-auth-\(name)")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"), configuration: method.configuration, credentials: method.right)
        try server.start()
        try Self.makeLog(dir)
        let log = try Log.open(at: dir.sub("log"))
        defer { try? log.close() }

        let stats = try Relay(log: log, url: server.url, options: Self.relayOptions(cursor: "relay", credentials: method.right)).run { false }
        #expect(stats.acknowledged == Self.events)
        #expect(try JetStreamContents.all(server, stream: "AUTH", expected: Self.events).count == Self.events)

        // Wrong and missing credentials: refused at the first connection, not retried. Retrying would take at least
        // 4 s (5 attempts, 1 s apart) and end in `gaveUp`.
        for credentials in [method.wrong, .none] {
            let started = Date()
            let error = #expect(throws: RelayError.self) {
                _ = try Relay(
                    log: log, url: server.url,
                    options: Self.relayOptions(
                        cursor: "wrong", credentials: credentials, backoff: Backoff(initial: .seconds(1), maximum: .seconds(1), maxAttempts: 5))
                ).run { false }
            }
            #expect(Date().timeIntervalSince(started) < 3, "\(String(describing: error))")
            guard case .nats(.authorizationRefused(let message))? = error else {
                Issue.record("not refused: \(String(describing: error))")
                continue
            }
            #expect(message.contains("Authorization Violation"), "\(message)")
            let text = "\(error!) \(String(reflecting: error!))"
            #expect(text.contains("authorization refused by the NATS server"), "\(text)")
            for secret in method.secrets { #expect(!text.contains(secret), "\(text)") }
        }
        #expect(try log.cursorPosition("wrong") == 0)
    }

    /// Credentials the server stops accepting (it restarts with another token) end a running relay at its reconnect
    /// (an idle relay reconnects when it has something to publish), at once, after what was acknowledged was
    /// committed.
    @Test func credentialsRefusedAtAReconnectEndTheRelay() throws {
        let method = Self.method("token")
        let dir = TemporaryDirectory("nats-auth-reconnect")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"), configuration: method.configuration, credentials: method.right)
        try server.start()
        try Self.makeLog(dir)
        let log = try Log.open(at: dir.sub("log"))
        defer { try? log.close() }
        var options = Self.relayOptions(
            cursor: "relay", credentials: method.right, backoff: Backoff(initial: .seconds(1), maximum: .seconds(1), maxAttempts: 5))
        options.stopWhenIdle = false
        let relay = Relay(log: log, url: server.url, options: options)
        let thread = BackgroundThread { try relay.run { false } }
        try NATSRelayTests.waitUntil(timeout: 20) { relay.statistics.committedPosition == UInt64(Self.events) }
        server.kill()
        server.configuration = #"authorization { token: "tok-Rotated-44aa" }"#
        server.credentials = .token("tok-Rotated-44aa")
        try server.start()
        try Fixtures.append(log, Self.events..<(Self.events + 5), batch: 5)
        let restarted = Date()
        // Retrying would take at least 4 s (5 attempts, 1 s apart) and end in `gaveUp`.
        let result = try #require(thread.join(timeout: 20))
        #expect(Date().timeIntervalSince(restarted) < 3)
        guard case .failure(RelayError.nats(.authorizationRefused)) = result else {
            Issue.record("not refused: \(result)")
            return
        }
        #expect(try log.cursorPosition("relay") == UInt64(Self.events))
    }

    @Test(arguments: ["user", "token", "nkey"])
    func theCommandTakesCredentialsFromAFileOrTheEnvironmentAndExitsTwoWhenRefused(_ name: String) throws {
        let method = Self.method(name)
        let dir = TemporaryDirectory("nats-auth-cli-\(name)")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"), configuration: method.configuration, credentials: method.right)
        try server.start()
        try Self.makeLog(dir)
        try method.rightFile.write(toFile: dir.sub("right.auth"), atomically: true, encoding: .utf8)
        try method.wrongFile.write(toFile: dir.sub("wrong.auth"), atomically: true, encoding: .utf8)
        func relay(cursor: String, _ extra: [String], environment: [String: String] = [:]) throws -> CLIProcess.Output {
            try CLIProcess.run(
                ["relay", dir.sub("log"), "--nats", server.urlText, "--subject-prefix", "auth.", "--cursor", cursor,
                 "--create-stream", "AUTH", "--stop-when-idle"] + extra,
                environment: environment, timeout: 30)
        }

        let fromFile = try relay(cursor: "file", ["--nats-auth-file", dir.sub("right.auth")])
        #expect(fromFile.status == 0 && fromFile.stdout.contains("relayed \(Self.events) events"), "\(fromFile)")
        let fromEnvironment = try relay(cursor: "env", [], environment: method.rightEnvironment)
        #expect(fromEnvironment.status == 0 && fromEnvironment.stdout.contains("relayed \(Self.events) events"), "\(fromEnvironment)")
        // The option wins over the environment.
        let overridden = try relay(cursor: "override", ["--nats-auth-file", dir.sub("right.auth")], environment: ["EVENTLOG_NATS_TOKEN": "tok-Wrong-0b6c"])
        #expect(overridden.status == 0, "\(overridden)")

        // Refused: exit 2 at once (the default 30 attempts with back-off would take about 50 s), no secret on stderr.
        for (extra, environment) in [(["--nats-auth-file", dir.sub("wrong.auth")], [:]), ([], [:] as [String: String])] {
            let started = Date()
            let refused = try relay(cursor: "refused", extra, environment: environment)
            #expect(refused.status == 2 && !refused.signaled, "\(refused)")
            #expect(Date().timeIntervalSince(started) < 10)
            #expect(refused.stderr.hasPrefix("eventlog relay: authorization refused by the NATS server"), "\(refused.stderr)")
            #expect(refused.stderr.contains("check the credentials"), "\(refused.stderr)")
            for secret in method.secrets { #expect(!refused.stderr.contains(secret) && !refused.stdout.contains(secret)) }
        }
        let log = try Log.open(at: dir.sub("log"), options: LogOptions(readOnly: true))
        defer { try? log.close() }
        #expect(try log.cursorPosition("file") == UInt64(Self.events))
        #expect(try log.cursorPosition("env") == UInt64(Self.events))
        #expect(try log.cursorPosition("refused") == 0)
    }

    @Test func theInboxAuthenticatesToo() throws {
        let method = Self.method("token")
        let dir = TemporaryDirectory("nats-auth-inbox")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"), configuration: method.configuration, credentials: method.right)
        try server.start()
        try Self.makeLog(dir)
        do {
            let log = try Log.open(at: dir.sub("log"))
            defer { try? log.close() }
            _ = try Relay(log: log, url: server.url, options: Self.relayOptions(cursor: "relay", credentials: method.right)).run { false }
        }
        func inbox(_ environment: [String: String]) throws -> CLIProcess.Output {
            try CLIProcess.run(
                ["inbox", dir.sub("copy"), "--nats", server.urlText, "--stream", "AUTH", "--durable", "copy", "--stop-when-idle"],
                environment: environment, timeout: 30)
        }
        let refused = try inbox(["EVENTLOG_NATS_TOKEN": "tok-Wrong-0b6c"])
        #expect(refused.status == 2 && refused.stderr.contains("authorization refused by the NATS server"), "\(refused)")
        #expect(!refused.stderr.contains("tok-Wrong-0b6c"))
        let consumed = try inbox(method.rightEnvironment)
        #expect(consumed.status == 0 && consumed.stdout.contains("appended \(Self.events) messages"), "\(consumed)")

        // The library's inbox: refused at once as well.
        let copy = try Log.open(at: dir.sub("copy2"))
        defer { try? copy.close() }
        let error = #expect(throws: RelayError.self) {
            _ = try Inbox(
                log: copy, url: server.url,
                options: InboxOptions(
                    stream: "AUTH", durable: "copy2", backoff: Backoff(initial: .seconds(1), maximum: .seconds(1), maxAttempts: 5),
                    stopWhenIdle: true, credentials: method.wrong)
            ).run { false }
        }
        guard case .nats(.authorizationRefused)? = error else {
            Issue.record("not refused: \(String(describing: error))")
            return
        }
    }

    /// A server that refuses at once (its `-ERR` and its close may come before the client's PING is even written, or,
    /// without `afterConnect`, before the connection object exists): `authorizationRefused`, every time, quickly
    /// (not after the 5 s timeout), and no trap of an unfulfilled promise (a debug build's check).
    @Test(arguments: [false, true])
    func aRefusalThatClosesAtOnceIsAuthorizationRefused(afterConnect: Bool) throws {
        let server = try FakeNATSServer(
            info: #"{"server_id":"fake","max_payload":1048576,"headers":true,"auth_required":true}"#,
            thenClose: "-ERR 'Authorization Violation'\r\n", afterConnect: afterConnect)
        let started = Date()
        for _ in 0..<50 {
            let error = #expect(throws: NATSError.self) {
                _ = try NATSConnection.connect(to: server.url, credentials: .token("tok-Secret-1"), timeout: 5)
            }
            #expect(error == .authorizationRefused("Authorization Violation"))
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    /// A request or a flush on a connection that closed fails with `connectionClosed` (and its promise with it: an
    /// unfulfilled one traps in a debug build).
    @Test func requestsOnAClosedConnectionFailCleanly() throws {
        let dir = TemporaryDirectory("nats-closed")
        let server = try NATSServerProcess(storeDirectory: dir.sub("js"))
        try server.start()
        let connection = try NATSConnection.connect(to: server.url)
        connection.close()
        #expect(throws: NATSError.connectionClosed) { _ = try connection.request(subject: "x", payload: [], timeout: 1) }
        #expect(throws: NATSError.connectionClosed) { try connection.flush(timeout: 1) }
    }

    @Test func aServerThatRequiresTLSIsRefusedClearly() throws {
        let server = try FakeNATSServer(info: #"{"server_id":"fake","version":"2.9.10","max_payload":1048576,"headers":true,"tls_required":true}"#)
        let started = Date()
        let error = #expect(throws: NATSError.self) { _ = try NATSConnection.connect(to: server.url, timeout: 5) }
        #expect(error == .tlsRequired)
        #expect(Date().timeIntervalSince(started) < 3)
        #expect("\(NATSError.tlsRequired)".contains("requires TLS, which this build does not support"))

        let dir = TemporaryDirectory("nats-auth-tls")
        try Self.makeLog(dir)
        let tls = try FakeNATSServer(info: #"{"server_id":"fake","max_payload":1048576,"headers":true,"tls_required":true}"#)
        let output = try CLIProcess.run(
            ["relay", dir.sub("log"), "--nats", "nats://127.0.0.1:\(tls.port)", "--subject-prefix", "x.", "--cursor", "c"], timeout: 30)
        #expect(output.status == 2 && output.stderr.contains("requires TLS, which this build does not support"), "\(output)")
    }
}

/// A TCP listener on a loopback port that greets each connection with one INFO line and then reads until the client
/// closes, or, with `thenClose`, sends those bytes too and closes: at once, or, `afterConnect`, once the client's
/// first bytes (its CONNECT) came, as nats-server refuses credentials (a stand-in for a server whose INFO and answer
/// the test chooses). Stops when this object goes away.
final class FakeNATSServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32

    var url: NATSURL { NATSURL(host: "127.0.0.1", port: port) }

    init(info: String, thenClose: String? = nil, afterConnect: Bool = false) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw CLIProcessError(description: "socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            close(listener)
            throw CLIProcessError(description: "bind or listen failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        fd = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        let greeting = Array("INFO \(info)\r\n".utf8)
        let refusal = thenClose.map { Array($0.utf8) }
        let thread = Thread {
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }  // the listener was closed
                _ = greeting.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                var buffer = [UInt8](repeating: 0, count: 4096)
                func receive() -> Int { buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) } }
                if let refusal {
                    if afterConnect { _ = receive() }
                    _ = refusal.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                } else {
                    while receive() > 0 {}
                }
                close(client)
            }
        }
        thread.start()
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
