import ArgumentParser
import EventLog

/// A point in time given on the command line (`cursors set --time`):
/// microseconds since 1970 (`1700000000123456`), or an ISO 8601 timestamp,
/// `2024-05-01T12:00:00Z`, with up to 9 fractional digits (cut to
/// microseconds) and `Z` or a `+HH:MM` / `-HH:MM` offset; a date alone,
/// `2024-05-01`, means its midnight in UTC.
struct TimestampArgument: ExpressibleByArgument, Equatable {
    var microseconds: Timestamp

    init(microseconds: Timestamp) {
        self.microseconds = microseconds
    }

    init?(argument: String) {
        if let micros = Int64(argument) {
            microseconds = micros
        } else if let micros = Self.parseISO8601(argument) {
            microseconds = micros
        } else {
            return nil
        }
    }

    static let formats = "microseconds since 1970 or an ISO 8601 time such as 2024-05-01T12:00:00.5Z"

    /// `YYYY-MM-DD[(T| )HH:MM:SS[.fraction](Z|±HH:MM)]`; nil when malformed or out of range.
    static func parseISO8601(_ text: String) -> Timestamp? {
        var scanner = DigitScanner(Array(text.utf8))
        guard let year = scanner.number(digits: 4), scanner.skip("-"),
              let month = scanner.number(digits: 2), scanner.skip("-"),
              let day = scanner.number(digits: 2),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        let days = daysSince1970(year: year, month: month, day: day)
        if scanner.atEnd { return days * 86_400_000_000 }

        guard scanner.skip("T") || scanner.skip("t") || scanner.skip(" "),
              let hour = scanner.number(digits: 2), scanner.skip(":"),
              let minute = scanner.number(digits: 2), scanner.skip(":"),
              let second = scanner.number(digits: 2),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var micros: Int64 = 0
        if scanner.skip(".") {
            var digits = 0
            while let digit = scanner.digit() {
                digits += 1
                if digits <= 6 { micros = micros * 10 + Int64(digit) }
            }
            guard (1...9).contains(digits) else { return nil }
            var scale = digits
            while scale < 6 {
                micros *= 10
                scale += 1
            }
        }
        var offsetSeconds: Int64 = 0
        if scanner.skip("Z") || scanner.skip("z") {
        } else if let sign = scanner.sign() {
            guard let hours = scanner.number(digits: 2), scanner.skip(":"), let minutes = scanner.number(digits: 2),
                  hours < 24, minutes < 60
            else { return nil }
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard scanner.atEnd else { return nil }
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return seconds * 1_000_000 + micros
    }

    /// Days from 1970-01-01 to the given date of the proleptic Gregorian
    /// calendar (Howard Hinnant's `days_from_civil`).
    static func daysSince1970(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// Reads fixed-width decimal fields and separators from ASCII bytes.
private struct DigitScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
        index += 1
        return true
    }

    mutating func digit() -> Int? {
        guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
        defer { index += 1 }
        return Int(bytes[index] - UInt8(ascii: "0"))
    }

    /// Exactly `digits` decimal digits.
    mutating func number(digits: Int) -> Int64? {
        var value: Int64 = 0
        for _ in 0..<digits {
            guard let digit = digit() else { return nil }
            value = value * 10 + Int64(digit)
        }
        return value
    }

    /// +1 for `+`, -1 for `-`, nil for anything else.
    mutating func sign() -> Int64? {
        if skip("+") { return 1 }
        if skip("-") { return -1 }
        return nil
    }
}
