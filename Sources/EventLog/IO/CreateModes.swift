#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The permission bits of every file and directory a log creates: the one
/// owner of the create mode (Format.md §2). By default only the owner can
/// read or write (files `0600`, directories `0700`); `LogOptions.fileMode`
/// may let the group or others read, never write.
///
/// The mode is given to `open`/`mkdir`, which the umask can only narrow:
/// nothing widens it afterwards.
struct CreateModes: Sendable, Equatable {
    /// Files: `0600`, plus `0040` and/or `0004`.
    let file: mode_t

    /// Directories: the file mode with an x bit wherever it has an r bit
    /// (`0600` → `0700`, `0640` → `0750`).
    var directory: mode_t { file | ((file & 0o444) >> 2) }

    static let ownerOnly = CreateModes(file: 0o600)

    /// True when `mode` lets the group or others write (a log no other user
    /// may tamper with is one whose files and directory they cannot write).
    static func isWritableByOthers(_ mode: mode_t) -> Bool { mode & 0o022 != 0 }

    /// The permission bits of `path` (not following a symbolic link), and
    /// whether it is a regular file or a directory; nil when it does not
    /// exist or cannot be looked at. The corresponding C function is `lstat`.
    static func permissions(of path: String) -> (mode: mode_t, isFileOrDirectory: Bool)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        let type = info.st_mode & S_IFMT
        return (info.st_mode & 0o7777, type == S_IFREG || type == S_IFDIR)
    }
}
