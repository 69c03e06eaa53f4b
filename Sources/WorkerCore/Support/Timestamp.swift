import Foundation

/// RFC 3339 timestamps in UTC with milliseconds, as the contract writes them (`2026-11-24T10:00:00.123Z`).
package enum Timestamp {
    /// Milliseconds since the Unix epoch, now.
    package static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (fast: no Foundation formatter).
    package static func format(milliseconds ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int32(ms % 1000)
        // The digits written one by one into the separators' places: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        var out = Array("0000-00-00T00:00:00.000Z".utf8)
        func put(_ value: Int32, at offset: Int, width: Int) {
            var v = max(value, 0)
            for i in stride(from: offset + width - 1, through: offset, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(parts.tm_year + 1900, at: 0, width: 4)
        put(parts.tm_mon + 1, at: 5, width: 2)
        put(parts.tm_mday, at: 8, width: 2)
        put(parts.tm_hour, at: 11, width: 2)
        put(parts.tm_min, at: 14, width: 2)
        put(parts.tm_sec, at: 17, width: 2)
        put(millis, at: 20, width: 3)
        return String(decoding: out, as: UTF8.self)
    }

    /// Now, formatted.
    package static func now() -> String { format(milliseconds: nowMilliseconds()) }

    /// Parses an RFC 3339 timestamp (`Z` or `±HH:MM` offset, optional fraction of any length) to
    /// epoch milliseconds; nil when it is not one (see ``check(_:)`` for why).
    package static func parse(_ text: String) -> Int64? {
        try? check(text).get()
    }

    /// Why a text is not an RFC 3339 timestamp (`day 30 is past the end of February 2026`).
    package struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// The reason, as a phrase.
        package var description: String
    }

    /// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t` or a space
    /// also separating date and time) to epoch milliseconds, range-checking every part: month
    /// 1–12, day within its month (29 February only in leap years), hour 0–23, minute 0–59, second
    /// 0–59 (a leap second, 60, is refused: epoch milliseconds cannot hold it), offset hours 0–23
    /// and offset minutes 0–59. Digits of the fraction past milliseconds are dropped.
    package static func check(_ text: String) -> Result<Int64, Problem> {
        func problem(_ reason: String) -> Result<Int64, Problem> { .failure(Problem(description: reason)) }
        let bytes = Array(text.utf8)
        func number(_ from: Int, _ length: Int) -> Int? {
            guard from + length <= bytes.count else { return nil }
            var value = 0
            for b in bytes[from..<(from + length)] {
                guard b >= 48 && b <= 57 else { return nil }
                value = value * 10 + Int(b - 48)
            }
            return value
        }
        func byte(_ at: Int, _ allowed: UInt8...) -> Bool { at < bytes.count && allowed.contains(bytes[at]) }
        guard let year = number(0, 4), byte(4, 45), let month = number(5, 2), byte(7, 45), let day = number(8, 2),
            byte(10, 84, 116, 32), let hour = number(11, 2), byte(13, 58), let minute = number(14, 2), byte(16, 58),
            let second = number(17, 2)
        else { return problem("the form is YYYY-MM-DDTHH:MM:SS with Z or an offset ±HH:MM") }
        guard (1...12).contains(month) else { return problem("month \(month) is not 1 to 12") }
        let monthDays = daysIn(month: month, year: year)
        guard (1...monthDays).contains(day) else {
            return problem(
                day == 0
                    ? "day 0 does not exist" : "day \(day) is past the end of \(monthNames[month - 1]) \(year), which has \(monthDays) days"
            )
        }
        guard hour < 24 else { return problem("hour \(hour) is not 0 to 23") }
        guard minute < 60 else { return problem("minute \(minute) is not 0 to 59") }
        guard second < 60 else { return problem("second \(second) is not 0 to 59") }
        var index = 19
        var millis = 0
        if byte(index, 46) {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 3 { millis = millis * 10 + Int(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return problem("a '.' must be followed by digits of a second") }
            // (A range digits..<3 would trap for a fraction longer than milliseconds.)
            if digits < 3 { for _ in digits..<3 { millis *= 10 } }
        }
        guard index < bytes.count else { return problem("the offset is missing: end with Z or ±HH:MM") }
        var offsetMinutes = 0
        switch bytes[index] {
        case 90, 122: index += 1
        case 43, 45:
            guard let oh = number(index + 1, 2), byte(index + 3, 58), let om = number(index + 4, 2) else {
                return problem("the offset must be Z or ±HH:MM")
            }
            guard oh < 24 else { return problem("offset hour \(oh) is not 0 to 23") }
            guard om < 60 else { return problem("offset minute \(om) is not 0 to 59") }
            offsetMinutes = (oh * 60 + om) * (bytes[index] == 45 ? -1 : 1)
            index += 6
        default: return problem("the offset must be Z or ±HH:MM")
        }
        guard index == bytes.count else { return problem("there is text after the offset") }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        let secs = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return .success(secs * 1000 + Int64(millis))
    }

    private static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ]

    /// Days in a month of the proleptic Gregorian calendar.
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
