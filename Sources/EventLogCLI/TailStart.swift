import ArgumentParser
import EventLog

/// Where `tail --from` starts: `start`, `end`, a position (`1200`), the last
/// N events before the end (`-5`), or the first event at or after an RFC
/// 3339 time (`2026-11-29T10:00:00Z`).
enum TailStart: Equatable, Sendable {
    case start
    case end
    case position(UInt64)
    /// The last N events (of those the filters pass) before the end of the log.
    case last(UInt64)
    case time(Timestamp)

    static let formats = "start, end, a position, -N (the last N events) or an RFC 3339 time such as 2026-11-29T10:00:00Z"

    static func parse(_ text: String) throws -> TailStart {
        switch text {
        case "start": return .start
        case "end": return .end
        default: break
        }
        if let position = digits(text) { return .position(position) }
        if text.hasPrefix("-"), let count = digits(text.dropFirst()) { return .last(count) }
        if let time = TimestampArgument.parseISO8601(text) { return .time(time) }
        throw ValidationError("expected \(formats)")
    }

    /// ASCII decimal digits only; nil when empty, malformed or above `UInt64.max`.
    private static func digits(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(text)
    }

    private static func digits(_ text: String) -> UInt64? { digits(Substring(text)) }

    /// The subscription's start in `log`; `accepts` is what `filter` leaves
    /// to check (an exact stream name), for counting the last N events.
    func startPoint(in log: Log, filter: EventFilter, accepts: (EventView) -> Bool) throws -> StartPoint {
        switch self {
        case .start: return .start
        case .end: return .end
        case .position(let position): return .position(position)
        case .time(let time): return .timestamp(time)
        case .last(let count): return .position(try Self.firstOfLast(count, in: log, filter: filter, accepts: accepts))
        }
    }

    /// The position of the first of the last `count` events that `filter` and
    /// `accepts` pass, in the log as this process sees it now (the start of
    /// the log when fewer pass; its end for 0). Reads back from the end in
    /// windows of `count` positions growing fourfold, so it reads at most
    /// about four times the span those events take, never the whole log
    /// unless they need it.
    static func firstOfLast(_ count: UInt64, in log: Log, filter: EventFilter, accepts: (EventView) -> Bool) throws -> UInt64 {
        let start = log.startPosition
        let end = log.endPosition
        guard count > 0, end > start else { return end }
        // The last `count` positions that passed, oldest at `oldest` once full.
        var window = count
        while true {
            let from = end - min(window, end - start)
            var passed = [UInt64]()
            passed.reserveCapacity(Int(clamping: min(count, 1 << 16)))
            var oldest = 0
            try log.read(from: from, filter: filter) { event in
                guard event.position < end, accepts(event) else { return }
                if UInt64(passed.count) < count {
                    passed.append(event.position)
                } else {
                    passed[oldest] = event.position
                    oldest = (oldest + 1) % passed.count
                }
            }
            if UInt64(passed.count) == count { return passed[oldest] }
            if from == start { return start }
            window = window.multipliedReportingOverflow(by: 4).overflow ? .max : window * 4
        }
    }
}
