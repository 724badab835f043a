import CMallocCounter
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock.
@inline(__always) func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Allocations made so far by the process (see CMallocCounter).
@inline(__always) func allocations() -> UInt64 { malloc_counter_allocations() }

/// True when allocations made inside the Swift runtime are counted too
/// (the wrappers took the place of glibc's allocator process-wide).
func allocationCountingWorks() -> Bool {
    let before = allocations()
    // swift_slowAlloc, inside libswiftCore: counted only if the wrappers
    // replaced the allocator for the whole process.
    let probe = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    probe.deallocate()
    return allocations() > before
}

/// `ru_maxrss`: the process's peak resident set, in bytes.
func peakRSSBytes() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return UInt64(usage.ru_maxrss) * 1024
}

/// Allocated bytes (`st_blocks * 512`) of all regular files below `path`,
/// as `dir_bytes` in peers/src/common.h.
func allocatedBytes(under path: String) -> UInt64 {
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

/// A fresh directory `${TMPDIR:-/tmp}/eventlog-bench.XXXXXX`.
func makeTemporaryDirectory() throws(BenchError) -> String {
    let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base + "/eventlog-bench.XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else { throw BenchError("mkdtemp in \(base): \(String(cString: strerror(errno)))") }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

func removeTree(_ path: String) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    do { try FileManager.default.removeItem(atPath: path) } catch {
        FileHandle.standardError.write(Data("warning: could not remove \(path): \(error)\n".utf8))
    }
}

func createDirectory(_ path: String) throws(BenchError) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw BenchError("cannot create \(path): \(error)")
    }
}

struct Machine {
    let cores: Int
    let memoryBytes: UInt64
    let kernel: String

    static func current() -> Machine {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        return Machine(
            cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)),
            memoryBytes: UInt64(sysconf(Int32(_SC_PHYS_PAGES))) * UInt64(sysconf(Int32(_SC_PAGESIZE))),
            kernel: "\(field(name.sysname)) \(field(name.release)) \(field(name.machine))")
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// The library's source state the binary was built from, as far as git can
/// tell at run time: HEAD of the repository holding this package, and
/// whether Sources/ had uncommitted changes (the figures then belong to a
/// working tree, not to a commit).
struct SourceState {
    let head: String
    let modified: Bool

    static func current() -> SourceState? {
        // Benchmarks/Sources/eventlog-bench/System.swift → the repository root.
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

    var description: String { head + (modified ? " + uncommitted changes in Sources/" : "") }
}
