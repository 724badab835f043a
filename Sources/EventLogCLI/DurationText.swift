/// A duration as the tool's options write it: an integer followed by a
/// unit, `s`, `m`, `h` or `d` (`90s`, `30m`, `12h`, `7d`). Shared by
/// `config set --retain-age` and `dump --since`/`--until`.
enum DurationText {
    static let formats = "an integer followed by s, m, h or d (90s, 30m, 12h, 7d)"

    /// The unit letters and their length in seconds.
    private static let units: [Character: UInt64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]

    /// The duration `text` writes, as a count and the seconds of its unit;
    /// nil when malformed (no unit, other characters, a count above `UInt64.max`).
    static func parse(_ text: String) -> (count: UInt64, unitSeconds: UInt64)? {
        guard let last = text.last, let unit = units[last] else { return nil }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let count = UInt64(digits)
        else { return nil }
        return (count, unit)
    }

    /// The duration `text` writes, in seconds; nil when malformed or above `UInt64.max` seconds.
    static func seconds(_ text: String) -> UInt64? {
        guard let (count, unit) = parse(text) else { return nil }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
        return overflow ? nil : seconds
    }
}
