import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why running the `eventlog` binary failed (not the binary's own failures,
/// which show in `CLIProcess.Output`).
struct CLIProcessError: Error, CustomStringConvertible {
    var description: String
}

/// The built `eventlog` binary, run as a real child process with pipes:
/// stdin writable, stdout and stderr read on background threads into
/// lock-protected buffers as they arrive.
///
/// Use `run(_:stdin:timeout:)` to run to completion, or `start(_:)` to drive
/// a long-running process: `writeLine`, `waitForLines`, `closeStdin`,
/// `waitForExit`, and `kill()` (SIGKILL, for crash tests). A process still
/// running when this object goes away is killed.
///
/// Thread-safe: every mutable field is guarded by one condition lock.
final class CLIProcess: @unchecked Sendable {
    /// How a finished process ended and everything it printed.
    struct Output: CustomStringConvertible {
        /// The exit code, or the signal number when `signaled`.
        var status: Int32
        /// True when a signal (e.g. SIGKILL) ended the process.
        var signaled: Bool
        var stdout: String
        var stderr: String
        /// Complete stdout lines (a final line without `\n` included).
        var lines: [String]

        var description: String { "status \(status)\(signaled ? " (signal)" : ""), stdout: \(stdout), stderr: \(stderr)" }
    }

    let arguments: [String]
    private let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    /// Shared with the reader threads and the termination handler, which
    /// must not keep this object alive (its deinit kills a forgotten child).
    private let state = State()

    /// Everything the reader threads and the termination handler write.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        // Guarded by `condition`.
        var stdoutBytes: [UInt8] = []
        var stderrBytes: [UInt8] = []
        var lines: [String] = []
        var partialLine: [UInt8] = []
        var stdoutOpen = true
        var stderrOpen = true
        var termination: (status: Int32, signaled: Bool)?
        var stdinClosed = false

        func withLock<R>(_ body: () -> R) -> R {
            condition.lock()
            defer { condition.unlock() }
            return body()
        }

        /// Files bytes read from stdout or stderr; an empty chunk is the end of the stream.
        func received(_ bytes: ArraySlice<UInt8>, fromStdout: Bool) {
            condition.lock()
            defer {
                condition.broadcast()
                condition.unlock()
            }
            guard fromStdout else {
                if bytes.isEmpty { stderrOpen = false } else { stderrBytes.append(contentsOf: bytes) }
                return
            }
            if bytes.isEmpty {
                if !partialLine.isEmpty { lines.append(String(decoding: partialLine, as: UTF8.self)) }
                partialLine = []
                stdoutOpen = false
                return
            }
            stdoutBytes.append(contentsOf: bytes)
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    lines.append(String(decoding: partialLine, as: UTF8.self))
                    partialLine.removeAll(keepingCapacity: true)
                } else {
                    partialLine.append(byte)
                }
            }
        }

        func terminated(status: Int32, signaled: Bool) {
            condition.lock()
            termination = (status, signaled)
            condition.broadcast()
            condition.unlock()
        }
    }

    // MARK: Starting

    /// Starts `eventlog` with `arguments`, or `executable`, another product
    /// of the build (a test's child program), found beside `eventlog`.
    /// The child's environment is this process's, without any `EVENTLOG_NATS_*` variable (NATS credentials a
    /// developer's shell may hold), plus `environment`.
    static func start(_ arguments: [String], executable: String? = nil, environment: [String: String] = [:]) throws -> CLIProcess {
        var url = try executableURL()
        if let executable { url = url.deletingLastPathComponent().appendingPathComponent(executable) }
        let child = CLIProcess(arguments: arguments)
        try child.launch(url, environment: environment)
        return child
    }

    /// Runs `eventlog` with `arguments` to completion, feeding it `stdin`, with `environment` added to its
    /// environment (as `start`). Kills it and throws when it takes longer than `timeout` seconds.
    static func run(
        _ arguments: [String], stdin: String = "", environment: [String: String] = [:], timeout: TimeInterval = 60
    ) throws -> Output {
        let child = try start(arguments, environment: environment)
        // The child may exit before reading everything (a malformed line): a broken pipe is expected then.
        try? child.write(stdin)
        child.closeStdin()
        guard let output = child.waitForExit(timeout: timeout) else {
            child.kill()
            throw CLIProcessError(description: "eventlog \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        return output
    }

    private init(arguments: [String]) {
        self.arguments = arguments
    }

    deinit {
        // A child nobody waited for would block on its stdin forever: end it.
        let running = state.withLock { state.termination == nil }
        if running && process.processIdentifier > 0 { Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    private func launch(_ executable: URL, environment: [String: String]) throws {
        _ = Self.ignoreSIGPIPE
        process.executableURL = executable
        process.arguments = arguments
        var childEnvironment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("EVENTLOG_NATS_") }
        childEnvironment.merge(environment) { $1 }
        process.environment = childEnvironment
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        let state = self.state
        process.terminationHandler = { process in
            state.terminated(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal)
        }
        try process.run()
        // Process closed the child's ends of the pipes in this process; read ours until EOF.
        Self.startReader(stdoutPipe.fileHandleForReading, fromStdout: true, into: state)
        Self.startReader(stderrPipe.fileHandleForReading, fromStdout: false, into: state)
    }

    /// A test process must survive writing to a child that already exited.
    private static let ignoreSIGPIPE: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Reads `handle` on its own thread until EOF. The thread holds the
    /// handle (so its descriptor stays open) and the state, not the `CLIProcess`.
    private static func startReader(_ handle: FileHandle, fromStdout: Bool, into state: State) {
        let thread = Thread {
            let fd = handle.fileDescriptor
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                state.received(chunk[0..<max(n, 0)], fromStdout: fromStdout)
                if n <= 0 { break }
            }
            withExtendedLifetime(handle) {}
        }
        thread.name = "CLIProcess.\(fromStdout ? "stdout" : "stderr")"
        thread.start()
    }

    // MARK: Driving

    /// Writes `text` to the child's stdin (blocks while the pipe is full).
    func write(_ text: String) throws {
        try stdinPipe.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Writes `line` and a newline to the child's stdin.
    func writeLine(_ line: String) throws {
        try write(line + "\n")
    }

    /// Closes the child's stdin (it sees the end of input). Safe to call twice.
    func closeStdin() {
        let wasClosed = state.withLock {
            defer { state.stdinClosed = true }
            return state.stdinClosed
        }
        if !wasClosed { try? stdinPipe.fileHandleForWriting.close() }
    }

    /// Waits until stdout holds at least `count` complete lines, stdout
    /// ends, or `timeout` seconds pass; returns the lines so far.
    @discardableResult
    func waitForLines(_ count: Int, timeout: TimeInterval) -> [String] {
        let deadline = Date(timeIntervalSinceNow: timeout)
        state.condition.lock()
        defer { state.condition.unlock() }
        while state.lines.count < count && state.stdoutOpen {
            if !state.condition.wait(until: deadline) { break }
        }
        return state.lines
    }

    /// The complete stdout lines so far.
    var lines: [String] { state.withLock { state.lines } }

    /// What the child wrote to stderr so far.
    var stderrText: String { state.withLock { String(decoding: state.stderrBytes, as: UTF8.self) } }

    var processIdentifier: Int32 { process.processIdentifier }

    /// Waits for the child to exit and its output to end; nil after `timeout` seconds.
    func waitForExit(timeout: TimeInterval) -> Output? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        state.condition.lock()
        defer { state.condition.unlock() }
        while state.termination == nil || state.stdoutOpen || state.stderrOpen {
            if !state.condition.wait(until: deadline) { return nil }
        }
        guard let termination = state.termination else { return nil }
        return Output(
            status: termination.status, signaled: termination.signaled,
            stdout: String(decoding: state.stdoutBytes, as: UTF8.self),
            stderr: String(decoding: state.stderrBytes, as: UTF8.self), lines: state.lines)
    }

    /// Sends SIGKILL (nothing runs in the child after it: a crash) and
    /// waits up to 10 s for it to be reaped; returns how it ended.
    @discardableResult
    func kill() -> Output? {
        let running = state.withLock { state.termination == nil }
        if running { Glibc.kill(process.processIdentifier, SIGKILL) }
        closeStdin()
        return waitForExit(timeout: 10)
    }

    // MARK: Finding the binary

    /// The `eventlog` binary: `$EVENTLOG_CLI` when set; else next to the test
    /// bundle in the build products directory; else the newest
    /// `.build*/debug/eventlog` in a directory above this file.
    static func executableURL(filePath: String = #filePath) throws -> URL {
        let fileManager = FileManager.default
        if let override = ProcessInfo.processInfo.environment["EVENTLOG_CLI"], fileManager.isExecutableFile(atPath: override) {
            return URL(fileURLWithPath: override)
        }
        var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let first = CommandLine.arguments.first {
            let argument0 = URL(fileURLWithPath: first)
            directories.append(argument0.deletingLastPathComponent())
            directories.append(argument0.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent("eventlog")
            if fileManager.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        var newest: (url: URL, modified: Date)?
        var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let entries = (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []
            for entry in entries where entry.hasPrefix(".build") {
                let candidate = directory.appendingPathComponent(entry).appendingPathComponent("debug/eventlog")
                guard fileManager.isExecutableFile(atPath: candidate.path),
                      let modified = (try? fileManager.attributesOfItem(atPath: candidate.path))?[.modificationDate] as? Date
                else { continue }
                if let current = newest, current.modified >= modified { continue }
                newest = (candidate, modified)
            }
            if newest != nil { break }
            directory.deleteLastPathComponent()
        }
        guard let newest else {
            throw CLIProcessError(description: "cannot find the eventlog binary (build it, or set EVENTLOG_CLI)")
        }
        return newest.url
    }
}
