import ArgumentParser
import EventLog

/// A bound of `dump --since` and `--until`: an RFC 3339 time
/// (`2026-11-29T10:00:00Z`, `2026-11-29T10:00:00.250+01:00`; a date alone
/// means its midnight in UTC), or a duration back from now (`90s`, `30m`,
/// `1h`, `7d`), taken when the command starts.
enum TimeBound {
    static let formats = "an RFC 3339 time such as 2026-11-29T10:00:00Z (fractional seconds and a +HH:MM offset allowed) "
        + "or a duration back from now, \(DurationText.formats)"

    /// The microseconds since 1970 that `text` names; `now` is where a duration counts back from.
    static func parse(_ text: String, now: Timestamp = currentTimestamp()) throws -> Timestamp {
        if let time = TimestampArgument.parseISO8601(text) { return time }
        guard let (count, unit) = DurationText.parse(text) else {
            throw ValidationError("expected \(formats)")
        }
        let maxSeconds = UInt64(Int64.max) / 1_000_000
        guard count <= maxSeconds / unit else { throw ValidationError("the duration must be at most \(maxSeconds)s") }
        let (time, overflow) = now.subtractingReportingOverflow(Int64(count * unit) * 1_000_000)
        guard !overflow else { throw ValidationError("the duration reaches before the earliest time there is") }
        return time
    }
}
