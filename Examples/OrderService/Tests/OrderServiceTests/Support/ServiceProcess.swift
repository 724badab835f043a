import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ServiceProcessError: Error, CustomStringConvertible {
    var description: String
}

/// The built `order-service` binary as a real child process on a free loopback port, its output in a file of
/// the test's directory. `start` waits until `GET /health` answers; `kill()` is SIGKILL (a crash),
/// `terminate()` SIGTERM (a graceful shutdown). A process still running when this object goes away is killed.
final class ServiceProcess: @unchecked Sendable {
    let dataDirectory: String
    let extraArguments: [String]
    let outputPath: String
    private let lock = NSLock()
    private var process: Process?
    private(set) var port = 0

    init(dataDirectory: String, outputPath: String, extraArguments: [String] = []) {
        self.dataDirectory = dataDirectory
        self.outputPath = outputPath
        self.extraArguments = extraArguments
    }

    deinit { kill() }

    /// Starts the service on a free port and waits (up to `timeout` seconds) for `GET /health` to answer 200.
    /// A port taken between choosing and binding it makes the service exit: then it tries another, thrice.
    func start(timeout: Double = 60) throws {
        var failures: [String] = []
        for _ in 0..<3 {
            let port = try Self.freePort()
            let process = Process()
            process.executableURL = try Self.binaryURL()
            process.arguments = ["--port", String(port), "--data-dir", dataDirectory] + extraArguments
            if !FileManager.default.fileExists(atPath: outputPath) {
                _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
            }
            guard let output = FileHandle(forWritingAtPath: outputPath) else {
                throw ServiceProcessError(description: "cannot write \(outputPath)")
            }
            output.seekToEndOfFile()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            lock.withLock {
                self.process = process
                self.port = port
            }
            let deadline = Date(timeIntervalSinceNow: timeout)
            while Date() < deadline && process.isRunning {
                if let health = try? HTTPClient.send(port: port, "GET", "/health", timeout: 2), health.status == 200 { return }
                usleep(50_000)
            }
            if process.isRunning {
                kill()
                throw ServiceProcessError(description: "order-service did not answer /health within \(timeout) s\n\(outputTail())")
            }
            failures.append("exit \(process.terminationStatus)")
        }
        throw ServiceProcessError(description: "order-service exited at start (\(failures)):\n\(outputTail())")
    }

    var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    /// SIGKILL, and waits for the process to end.
    func kill() {
        guard let process = take(), process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, and waits (up to `timeout` seconds) for the process to end; returns its exit status
    /// (nil when it had to be killed).
    @discardableResult
    func terminate(timeout: Double = 30) -> Int32? {
        guard let process = take(), process.isRunning else { return nil }
        Glibc.kill(process.processIdentifier, SIGTERM)
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    private func take() -> Process? {
        lock.withLock {
            defer { self.process = nil }
            return self.process
        }
    }

    /// The last lines the service printed (for failure messages).
    func outputTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// One request to the running service.
    func send(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws -> HTTPResult {
        try HTTPClient.send(port: port, method, path, headers: headers, body: body)
    }

    /// The built binary: `$ORDER_SERVICE_BINARY`, else `order-service` beside the test bundle (SwiftPM builds
    /// the executable the test target depends on into the same directory).
    static func binaryURL() throws -> URL {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["ORDER_SERVICE_BINARY"], fileManager.isExecutableFile(atPath: override) {
            return URL(fileURLWithPath: override)
        }
        var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let first = CommandLine.arguments.first {
            let argument0 = URL(fileURLWithPath: first)
            directories.append(argument0.deletingLastPathComponent())
            directories.append(argument0.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent("order-service")
            if fileManager.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw ServiceProcessError(description: "no order-service binary beside the tests (\(directories.map(\.path))); set ORDER_SERVICE_BINARY")
    }

    /// A port the kernel just gave out for a listening socket (closed again at once).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServiceProcessError(description: "socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ServiceProcessError(description: "bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A fresh directory under the system temporary directory, removed when the test ends (kept when
/// `ORDER_SERVICE_KEEP` is set, to look at a failed run's log and output).
final class TemporaryDirectory: @unchecked Sendable {
    let path: String

    init(_ label: String) {
        path = FileManager.default.temporaryDirectory.path + "/order-service-\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        if ProcessInfo.processInfo.environment["ORDER_SERVICE_KEEP"] == nil { try? FileManager.default.removeItem(atPath: path) }
    }

    func sub(_ name: String) -> String { path + "/" + name }
}

/// splitmix64: the seeded generator of the randomized tests (a seed replays a run's commands).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
