#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress report on standard error, redrawn in place
/// (`\r`): only when standard error is a terminal, and only once the work
/// has taken `delaySeconds` (a quick run prints nothing). `finish()` clears it.
struct ProgressLine {
    /// Nothing is drawn before the work has taken this long.
    static let delaySeconds = 0.5
    /// Redrawn at most this often.
    static let intervalSeconds = 0.1

    private let enabled: Bool
    private let start: Double
    private var lastDrawn = 0.0
    private var drawn = false

    init(enabled: Bool = isatty(2) == 1) {
        self.enabled = enabled
        start = Self.now()
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Seconds since the work began.
    var elapsed: Double { Self.now() - start }

    /// Draws `text` after a bar of `done` of `total` (when the delay has passed and the last draw is old enough).
    mutating func update(done: Int, total: Int, _ text: String) {
        guard enabled else { return }
        let now = Self.now()
        guard now - start >= Self.delaySeconds, now - lastDrawn >= Self.intervalSeconds else { return }
        lastDrawn = now
        let width = 30
        let filled = total > 0 ? min(width, done * width / total) : 0
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + text + "\u{1B}[K"
        _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        drawn = true
    }

    /// Clears the line, if one was drawn.
    mutating func finish() {
        guard drawn else { return }
        let clear = "\r\u{1B}[K"
        _ = clear.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        drawn = false
    }
}
