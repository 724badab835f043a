import CMallocCounter
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock.
@inline(__always) public func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Nanoseconds on the monotonic clock (latency samples).
@inline(__always) func nanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Allocations made so far by the process (see CMallocCounter).
@inline(__always) public func allocations() -> UInt64 { malloc_counter_allocations() }

/// True when allocations made inside the Swift runtime are counted too
/// (the wrappers took the place of glibc's allocator process-wide).
public func allocationCountingWorks() -> Bool {
    let before = allocations()
    // swift_slowAlloc, inside libswiftCore: counted only if the wrappers
    // replaced the allocator for the whole process.
    let probe = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    probe.deallocate()
    return allocations() > before
}

/// Peak resident set of this process since the last `resetPeakRSS()`
/// (`VmHWM` of /proc/self/status), in bytes; `ru_maxrss` where that is
/// unreadable.
///
/// All systems run in one process, so each system's peak is measured from a
/// reset (`clear_refs` 5) taken just before its phases: it counts what the
/// process held then (the generator, the expectations) plus what the system
/// took, as a peer's own process would (`ru_maxrss` in common.h).
public func peakRSSBytes() -> UInt64 {
    if let kib = procStatus("VmHWM:") { return kib * 1024 }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return UInt64(usage.ru_maxrss) * 1024
}

/// The current resident set (`VmRSS`), in bytes; 0 where unreadable.
public func currentRSSBytes() -> UInt64 { (procStatus("VmRSS:") ?? 0) * 1024 }

/// Anonymous resident memory (`RssAnon`: heap, stacks, anonymous maps; not
/// the page cache of mapped files), in bytes; 0 where unreadable.
public func anonymousRSSBytes() -> UInt64 { (procStatus("RssAnon:") ?? 0) * 1024 }

/// Resident memory by kind, in bytes, from /proc/self/status: `RssAnon`
/// (heap, stacks, anonymous maps: what only swap could free), `RssFile`
/// (pages of mapped files, the page cache the kernel may reclaim) and
/// `RssShmem` (shared memory).
public struct ResidentMemory: Sendable, Equatable {
    public var anonymous: UInt64 = 0
    public var file: UInt64 = 0
    public var shmem: UInt64 = 0

    public init(anonymous: UInt64 = 0, file: UInt64 = 0, shmem: UInt64 = 0) {
        self.anonymous = anonymous
        self.file = file
        self.shmem = shmem
    }

    /// The larger of each kind.
    public func peaks(with other: ResidentMemory) -> ResidentMemory {
        ResidentMemory(anonymous: max(anonymous, other.anonymous), file: max(file, other.file), shmem: max(shmem, other.shmem))
    }

    /// Reads /proc/self/status into `buffer` (`capacity` bytes) and parses
    /// the three fields: allocates nothing, so a sampler thread does not
    /// disturb the phases' allocation counts. All zero where unreadable.
    public static func read(into buffer: UnsafeMutableRawPointer, capacity: Int) -> ResidentMemory {
        let fd = open("/proc/self/status", O_RDONLY)
        guard fd >= 0 else { return ResidentMemory() }
        defer { close(fd) }
        var count = 0
        while count < capacity {
            let n = Glibc.read(fd, buffer + count, capacity - count)
            if n <= 0 { break }
            count += n
        }
        let bytes = UnsafeRawBufferPointer(start: buffer, count: count)
        var memory = ResidentMemory()
        var line = 0
        while line < count {
            var end = line
            while end < count && bytes[end] != 0x0A { end += 1 }
            if bytes[line] == UInt8(ascii: "R"), end - line > 8 {
                let value = kibibytes(bytes, from: line, to: end) * 1024
                if matches(bytes, line, "RssAnon:") { memory.anonymous = value }
                else if matches(bytes, line, "RssFile:") { memory.file = value }
                else if matches(bytes, line, "RssShmem:") { memory.shmem = value }
            }
            line = end + 1
        }
        return memory
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard at + count <= bytes.count else { return false }
        let p = prefix.utf8Start
        for i in 0..<count where bytes[at + i] != p[i] { return false }
        return true
    }

    /// The decimal number in `bytes[from..<to]` (the line's digits).
    private static func kibibytes(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in from..<to where bytes[i] >= 0x30 && bytes[i] <= 0x39 { value = value * 10 + UInt64(bytes[i] - 0x30) }
        return value
    }
}

/// Samples `ResidentMemory` every 10 ms on a thread of its own and keeps
/// each kind's peak (/proc/self/status has a peak only for the total,
/// `VmHWM`): a spike shorter than the period can be missed. Allocates only
/// when started (the thread and its buffer), never while sampling.
public final class MemorySampler: @unchecked Sendable {
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 16384, alignment: 16)
    private let lock = NSLock()
    private var peak = ResidentMemory()
    /// Each kind's peak since the last `endPhase()` (or `begin()`).
    private var phasePeak = ResidentMemory()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)
    /// What the first sample found (the round's start).
    public private(set) var start = ResidentMemory()

    public init() {}

    deinit { buffer.deallocate() }

    /// Takes the first sample, then starts the thread.
    public func begin() {
        start = ResidentMemory.read(into: buffer, capacity: 16384)
        peak = start
        phasePeak = start
        let thread = Thread { [self] in
            while true {
                lock.lock()
                let stop = stopping
                lock.unlock()
                if stop { break }
                usleep(10_000)
                sample()
            }
            done.signal()
        }
        thread.stackSize = 1 << 18
        thread.start()
    }

    private func sample() {
        lock.lock()
        defer { lock.unlock() }
        let now = ResidentMemory.read(into: buffer, capacity: 16384)
        peak = peak.peaks(with: now)
        phasePeak = phasePeak.peaks(with: now)
    }

    /// Ends a phase: takes a sample and returns each kind's peak since the
    /// previous `endPhase()` (or `begin()`), then starts the next phase's
    /// peaks from that sample. What one phase left resident counts in the
    /// next one's peak too: its peak is what the process held at worst
    /// while it ran. Allocates nothing.
    public func endPhase() -> ResidentMemory {
        lock.lock()
        defer { lock.unlock() }
        let now = ResidentMemory.read(into: buffer, capacity: 16384)
        peak = peak.peaks(with: now)
        let result = phasePeak.peaks(with: now)
        phasePeak = now
        return result
    }

    /// Stops the thread (after a last sample) and returns each kind's peak.
    public func end() -> ResidentMemory {
        lock.lock()
        stopping = true
        lock.unlock()
        done.wait()
        sample()
        lock.lock()
        defer { lock.unlock() }
        return peak
    }
}

/// Returns freed heap memory to the system (`malloc_trim`), without
/// touching the peak-RSS mark.
public func trimHeap() { malloc_counter_trim() }

/// A "kB" field of /proc/self/status.
private func procStatus(_ field: String) -> UInt64? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix(field) {
        return UInt64(String(line.dropFirst(field.count).filter(\.isNumber)))
    }
    return nil
}

/// The 1-minute load average (/proc/loadavg): how busy the shared machine was.
public func loadAverage() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8),
          let first = text.split(separator: " ").first
    else { return 0 }
    return Double(first) ?? 0
}

/// Returns freed heap memory to the system and resets the peak-RSS mark to
/// the current RSS (Linux ≥ 4.0). Returns false where that is not possible.
@discardableResult
public func resetPeakRSS() -> Bool {
    malloc_counter_trim()
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return write(fd, "5", 1) == 1
}

/// Allocated bytes (`st_blocks * 512`) of all regular files below `path`,
/// as `dir_bytes` in peers/src/common.h.
public func allocatedBytes(under path: String) -> UInt64 {
    guard let dir = opendir(path) else { return 0 }
    defer { closedir(dir) }
    var total: UInt64 = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name == "." || name == ".." { continue }
        let child = path + "/" + name
        var info = stat()
        guard lstat(child, &info) == 0 else { continue }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: total += allocatedBytes(under: child)
        case S_IFREG: total += UInt64(info.st_blocks) * 512
        default: break
        }
    }
    return total
}

/// `fsync` of a file or directory, as `fsync_path` in common.h (errors ignored there too).
public func fsyncPath(_ path: String) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}

/// A fresh directory `${TMPDIR:-/tmp}/eventlog-bench.XXXXXX`.
public func makeTemporaryDirectory(prefix: String = "eventlog-bench") throws(BenchError) -> String {
    let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base + "/\(prefix).XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else { throw BenchError("mkdtemp in \(base): \(String(cString: strerror(errno)))") }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

public func removeTree(_ path: String) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    do { try FileManager.default.removeItem(atPath: path) } catch {
        printError("warning: could not remove \(path): \(error)")
    }
}

public func createDirectory(_ path: String) throws(BenchError) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw BenchError("cannot create \(path): \(error)")
    }
}

/// The machine the figures come from.
public struct Machine: Sendable {
    public let cores: Int
    public let memoryBytes: UInt64
    public let kernel: String
    public let cpu: String

    public static func current() -> Machine {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        var cpu = "unknown"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":")
        {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Machine(
            cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
            memoryBytes: UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE))),
            kernel: "\(field(name.sysname)) \(field(name.release)) \(field(name.machine))",
            cpu: cpu)
    }

    public var summary: String { "\(cores) cores (\(cpu)), \(memoryBytes >> 30) GiB, \(kernel)" }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// The library's source state the binary was built from, as far as git can
/// tell at run time: HEAD of the repository holding this package, and
/// whether Sources/ had uncommitted changes (the figures then belong to a
/// working tree, not to a commit).
public struct SourceState: Sendable {
    public let head: String
    public let modified: Bool

    public static func current() -> SourceState? {
        // Benchmarks/Sources/Harness/System.swift → the repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        guard let head = git(["-C", root, "rev-parse", "--short=12", "HEAD"]),
              let status = git(["-C", root, "status", "--porcelain", "--", "Sources", "Package.swift"])
        else { return nil }
        return SourceState(head: head, modified: !status.isEmpty)
    }

    private static func git(_ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public var description: String { head + (modified ? " + uncommitted changes in Sources/" : "") }
}
