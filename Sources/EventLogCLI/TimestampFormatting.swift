import EventLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension OutputWriter {
    /// Appends `timestamp` as ISO 8601 in UTC with microseconds,
    /// `2024-05-01T12:00:00.123456Z`, without allocating. A time the C
    /// library cannot break down is written as `@` and its microseconds.
    mutating func appendISO8601(_ timestamp: Timestamp) {
        var seconds = timestamp / 1_000_000
        var micros = timestamp % 1_000_000
        if micros < 0 {
            seconds -= 1
            micros += 1_000_000
        }
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else {
            append(byte: UInt8(ascii: "@"))
            append(timestamp)
            return
        }
        append(Int(parts.tm_year) + 1900, zeroPaddedTo: 4)
        append(byte: UInt8(ascii: "-"))
        append(Int(parts.tm_mon) + 1, zeroPaddedTo: 2)
        append(byte: UInt8(ascii: "-"))
        append(Int(parts.tm_mday), zeroPaddedTo: 2)
        append(byte: UInt8(ascii: "T"))
        append(Int(parts.tm_hour), zeroPaddedTo: 2)
        append(byte: UInt8(ascii: ":"))
        append(Int(parts.tm_min), zeroPaddedTo: 2)
        append(byte: UInt8(ascii: ":"))
        append(Int(parts.tm_sec), zeroPaddedTo: 2)
        append(byte: UInt8(ascii: "."))
        append(Int(micros), zeroPaddedTo: 6)
        append(byte: UInt8(ascii: "Z"))
    }
}

/// `timestamp` as ISO 8601 in UTC with microseconds (for tables).
func iso8601(_ timestamp: Timestamp) -> String {
    var writer = OutputWriter(fd: -1)
    writer.appendISO8601(timestamp)
    return String(decoding: writer.buffer, as: UTF8.self)
}
