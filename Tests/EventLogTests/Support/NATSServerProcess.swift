import Foundation
import NATSClient
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A real `nats-server -js` on a free loopback port, its store in a temporary
/// directory, run as a child process for one test: started by `start()`,
/// killed (SIGKILL) by `kill()` or when this object goes away; `restart()`
/// brings it back on the same port and store.
///
/// Tests skip (`NATSServerProcess.isAvailable` false) where no `nats-server`
/// binary is found: `$NATS_SERVER`, then `PATH`, then /usr/sbin and /usr/bin
/// (Debian's package installs /usr/sbin/nats-server; `scripts/install-dependencies.sh` installs it).
final class NATSServerProcess: @unchecked Sendable {
    static let binary: String? = {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["NATS_SERVER"] { candidates.append(override) }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(directory)/nats-server")
        }
        candidates += ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    static var isAvailable: Bool { binary != nil }
    static let skipMessage: Comment = "nats-server not found ($NATS_SERVER, PATH, /usr/sbin): install it (apt-get install nats-server) to run the NATS tests"

    let port: Int
    let storeDirectory: String
    /// Lines added to the configuration file (an `authorization { … }` block), nil: no file, command-line flags only.
    /// Set between `kill()` and `start()` to restart with other settings (from the test's thread only).
    var configuration: String?
    /// What the probe of `start()` and `JetStreamContents` connect with (the credentials `configuration` accepts).
    var credentials: NATSCredentials
    private let lock = NSLock()
    private var process: Process?

    var url: NATSURL { NATSURL(host: "127.0.0.1", port: port) }
    var urlText: String { "nats://127.0.0.1:\(port)" }

    /// A server storing JetStream's data in `storeDirectory`; with `configuration`, run from a configuration file
    /// (written beside the store: listen address, `jetstream { store_dir }`, then `configuration`'s lines), probed
    /// with `credentials`.
    init(storeDirectory: String, configuration: String? = nil, credentials: NATSCredentials = .none) throws {
        self.storeDirectory = storeDirectory
        self.configuration = configuration
        self.credentials = credentials
        self.port = try Self.freePort()
    }

    /// The server's log file (`<store>.log`).
    var logPath: String { storeDirectory + ".log" }

    /// The configuration file's path (`<store>.conf`).
    var configurationPath: String { storeDirectory + ".conf" }

    deinit { kill() }

    /// Starts the server and waits (up to 10 s) until it accepts connections and JetStream answers.
    func start() throws {
        guard let binary = Self.binary else { throw CLIProcessError(description: "no nats-server") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        if let configuration {
            let text = """
                listen: "127.0.0.1:\(port)"
                jetstream { store_dir: "\(storeDirectory)" }
                \(configuration)

                """
            try text.write(toFile: configurationPath, atomically: true, encoding: .utf8)
            process.arguments = ["-c", configurationPath]
        } else {
            process.arguments = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDirectory]
        }
        process.standardOutput = FileHandle.nullDevice
        // The server's log (stderr) goes to `<store>.log`: its end is in the error when the server does not start.
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath) ?? FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        lock.withLock { self.process = process }
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            if let connection = try? NATSConnection.connect(to: url, credentials: credentials, timeout: 1) {
                defer { connection.close() }
                if (try? JetStream(connection: connection).streamInfo("PROBE")) != nil || connection.info.jetStream { return }
            }
            usleep(20_000)
        }
        let log = String(decoding: (FileManager.default.contents(atPath: logPath) ?? Data()).suffix(2000), as: UTF8.self)
        throw CLIProcessError(description: "nats-server on port \(port) did not start within 10 s; its log ends: \(log)")
    }

    var processIdentifier: Int32? { lock.withLock { process?.processIdentifier } }

    /// SIGSTOP: the server stops reading and answering (a stalled server), its connections stay open.
    func stall() {
        if let pid = processIdentifier { Glibc.kill(pid, SIGSTOP) }
    }

    /// SIGCONT after `stall()`.
    func resume() {
        if let pid = processIdentifier { Glibc.kill(pid, SIGCONT) }
    }

    /// SIGKILL, and waits for it to end.
    func kill() {
        let process = lock.withLock { () -> Process? in
            defer { self.process = nil }
            return self.process
        }
        guard let process, process.isRunning else { return }
        // SIGKILL ends a stopped (stalled) process too, without letting it run first.
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Kills it and starts it again on the same port and store.
    func restart() throws {
        kill()
        try start()
    }

    /// A port the kernel just gave out for a listening socket (closed again at once).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CLIProcessError(description: "socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw CLIProcessError(description: "bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Reads a whole JetStream stream back (through a throwaway durable consumer), for checks.
enum JetStreamContents {
    static func all(_ server: NATSServerProcess, stream: String, expected: Int, timeout: Double = 20) throws -> [JetStreamMessage] {
        let connection = try NATSConnection.connect(to: server.url, credentials: server.credentials)
        defer { connection.close() }
        let jetStream = JetStream(connection: connection)
        let durable = "check\(UInt32.random(in: 0...UInt32.max))"
        try jetStream.createConsumer(stream: stream, JetStreamConsumerConfig(durableName: durable, maxAckPending: 100_000))
        defer { try? jetStream.deleteConsumer(stream: stream, durable: durable) }
        let puller = try JetStreamPuller(jetStream: jetStream, stream: stream, durable: durable, batch: 1000, expiresSeconds: 0.3)
        defer { puller.close() }
        var messages: [JetStreamMessage] = []
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            let batch = try puller.next(maxCount: 1000, timeout: 1)
            messages += batch
            if batch.isEmpty && puller.lastRequestWasEmpty && messages.count >= expected { break }
            if batch.isEmpty && puller.lastRequestWasEmpty && messages.count < expected { usleep(50_000) }
        }
        // A redelivery (same stream sequence) is the check's own doing, not a duplicate in the stream.
        var seen = Set<UInt64>()
        return messages.filter { seen.insert($0.streamSequence).inserted }.sorted { $0.streamSequence < $1.streamSequence }
    }
}
