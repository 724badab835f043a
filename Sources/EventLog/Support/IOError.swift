#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The library's own name for `EventLogIOError` (public under that name,
/// which does not collide with `NIOCore.IOError` in a server that imports both).
typealias IOError = EventLogIOError

/// A failed system call: which one, on which file, and the `errno` it returned
/// (`EventLogError.io`).
public struct EventLogIOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation, named after the system call (`pwrite`, `fdatasync`, …).
    public var operation: String
    /// The file or directory it was applied to.
    public var path: String
    /// The `errno` value.
    public var errno: Int32

    /// An error of `operation` on `path` with `errno` (for tests and tools
    /// that report such failures the library's way).
    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// True when the device is full (`ENOSPC`) or over quota (`EDQUOT`).
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }

    /// True for a failed `fsync` or `fdatasync` (of a file or a directory):
    /// what the file holds on disk is unknown, and the writer must stop
    /// (Format.md §11, "Durability").
    var isFailedSync: Bool { operation == "fsync" || operation == "fdatasync" }

    /// "`operation` failed on `path`: the system's message (errno N)".
    public var description: String {
        let message = String(cString: strerror(errno))
        return "\(operation) failed on \(path): \(message) (errno \(errno))"
    }
}
