#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why reading input lines failed.
enum LineReaderError: Error {
    /// `read(2)` or `poll(2)` failed with this errno.
    case system(operation: String, errno: Int32)
    /// A line grew past `LineReader.maxLineBytes` without ending.
    case lineTooLong(maximum: Int)

    var description: String {
        switch self {
        case .system(let operation, let errno):
            return "cannot read standard input: \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .lineTooLong(let maximum):
            return "line is longer than \(maximum) bytes"
        }
    }
}

/// Reads lines from a file descriptor with its own buffer and `read(2)`,
/// and can tell, without blocking, whether another whole line is ready
/// (`poll(2)` with a zero timeout), which is what lets `append` cut a batch
/// as soon as its writer pauses.
///
/// Not thread-safe: one command owns it.
struct LineReader {
    /// The longest line accepted: an event's record is at most
    /// `Limits.maxRecordBytes` (data stored as is) plus metadata, so a line
    /// twice that long cannot hold a valid event.
    static let maxLineBytes = 8 << 20
    /// Bytes asked of each `read(2)`.
    static let readChunkBytes = 64 << 10

    let fd: Int32
    /// Unconsumed bytes are `storage[start..<end]`; `storage[end...]` is free space.
    private var storage: [UInt8]
    private var start = 0
    private var end = 0
    /// Where to resume looking for a newline (bytes before it hold none).
    private var scanned = 0
    private(set) var reachedEnd = false

    init(fd: Int32 = 0) {
        self.fd = fd
        storage = [UInt8](repeating: 0, count: Self.readChunkBytes * 2)
    }

    /// The next line without its `\n` (a final line may lack one), or nil at
    /// the end of input. Blocks until a whole line or the end arrives.
    mutating func nextLine() throws(LineReaderError) -> [UInt8]? {
        while true {
            if let line = takeLine() { return line }
            if reachedEnd { return nil }
            _ = try fill(blocking: true)
        }
    }

    /// Reads the next line without its `\n` into `line` (its storage reused:
    /// no allocation per line once it is large enough); false at the end of input.
    mutating func nextLine(into line: inout [UInt8]) throws(LineReaderError) -> Bool {
        while true {
            if let (lineEnd, next) = lineBounds() {
                line.removeAll(keepingCapacity: true)
                storage.withUnsafeBytes { bytes in
                    line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<lineEnd]))
                }
                start = next
                scanned = next
                return true
            }
            if reachedEnd { return false }
            _ = try fill(blocking: true)
        }
    }

    /// True when `nextLine()` would return at once: a whole line is
    /// buffered, or is readable right now, or the input has ended. Never blocks.
    mutating func hasLineReady() throws(LineReaderError) -> Bool {
        while true {
            if newlineIndex() != nil || reachedEnd { return true }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 0)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "poll", errno: errno)
            }
            if ready == 0 { return false }
            // Readable, hung up or in error: a read returns data, the end or
            // the error without blocking. No progress means nothing is ready.
            if try !fill(blocking: false) { return false }
        }
    }

    // MARK: Internals

    private mutating func newlineIndex() -> Int? {
        let newline = UInt8(ascii: "\n")
        let from = max(start, scanned)
        let found: Int? = storage.withUnsafeBytes { bytes in
            guard from < end, let base = bytes.baseAddress,
                  let hit = memchr(base + from, Int32(newline), end - from)
            else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        if let found { return found }
        scanned = end
        return nil
    }

    /// Where the next buffered line ends and the one after it starts (nil: no whole line is buffered).
    private mutating func lineBounds() -> (Int, Int)? {
        if let newline = newlineIndex() { return (newline, newline + 1) }
        if reachedEnd && start < end { return (end, end) }
        return nil
    }

    private mutating func takeLine() -> [UInt8]? {
        guard let (lineEnd, next) = lineBounds() else { return nil }
        let line = Array(storage[start..<lineEnd])
        start = next
        scanned = next
        return line
    }

    /// Reads one chunk into the buffer; sets `reachedEnd` at the end of
    /// input. Returns false when nothing changed (a non-blocking descriptor
    /// had nothing after all).
    private mutating func fill(blocking: Bool) throws(LineReaderError) -> Bool {
        if end - start > Self.maxLineBytes { throw .lineTooLong(maximum: Self.maxLineBytes) }
        makeRoom()
        while true {
            let got = storage.withUnsafeMutableBytes { bytes -> Int in
                guard let base = bytes.baseAddress else { return -1 }
                return read(fd, base + end, Self.readChunkBytes)
            }
            if got > 0 {
                end += got
                return true
            }
            if got == 0 {
                reachedEnd = true
                return true
            }
            let code = errno
            if code == EINTR { continue }
            guard code == EAGAIN || code == EWOULDBLOCK else { throw .system(operation: "read", errno: code) }
            // A non-blocking descriptor inherited from the caller.
            if !blocking { return false }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, -1) < 0 && errno != EINTR { throw .system(operation: "poll", errno: errno) }
        }
    }

    /// Ensures `readChunkBytes` of free space after `end`, moving the
    /// unconsumed bytes to the front first.
    private mutating func makeRoom() {
        if start > 0 {
            let pending = end - start
            if pending > 0 {
                storage.withUnsafeMutableBytes { bytes in
                    guard let base = bytes.baseAddress else { return }
                    memmove(base, base + start, pending)
                }
            }
            scanned = max(0, scanned - start)
            start = 0
            end = pending
        }
        let needed = end + Self.readChunkBytes
        if storage.count < needed {
            storage.append(contentsOf: repeatElement(0, count: max(needed, storage.count * 2) - storage.count))
        }
    }
}
