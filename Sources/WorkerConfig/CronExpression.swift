import Foundation

/// A classic five-field cron expression: `minute hour day-of-month month day-of-week`.
///
/// Each field is `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma-separated
/// list of those. Months may be written `jan`–`dec` and weekdays `sun`–`sat` (0 and 7 are both
/// Sunday). The macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`) and
/// `@hourly` stand for their usual expressions. As in Vixie cron, when both day fields are
/// restricted (neither starts with `*`) a day matches if either matches.
package struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// Why a cron text was refused.
    package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// What is wrong, e.g. `minute field: 61 is out of range 0–59`.
        package var message: String
        /// `message`.
        package var description: String { message }
    }

    /// The text as written (trimmed).
    package let text: String
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64
    private let months: UInt64
    private let daysOfWeek: UInt64
    private let dayOfMonthRestricted: Bool
    private let dayOfWeekRestricted: Bool

    /// `text`.
    package var description: String { text }

    /// Parses `text`, throwing a ``ParseError`` that says which field is wrong and why.
    package init(_ text: String) throws(ParseError) {
        let trimmed = text.trimmingWhitespace()
        self.text = trimmed
        var expression = trimmed
        if trimmed.hasPrefix("@") {
            guard let expanded = Self.macros[trimmed.lowercased()] else {
                throw ParseError(
                    message: "unknown macro \(trimmed); expected one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly")
            }
            expression = expanded
        }
        let fields = expression.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(message: "expected 5 fields (minute hour day-of-month month day-of-week), got \(fields.count)")
        }
        minutes = try Self.field(fields[0], name: "minute", range: 0...59, names: [:])
        hours = try Self.field(fields[1], name: "hour", range: 0...23, names: [:])
        daysOfMonth = try Self.field(fields[2], name: "day-of-month", range: 1...31, names: [:])
        months = try Self.field(fields[3], name: "month", range: 1...12, names: Self.monthNames)
        var weekdays = try Self.field(fields[4], name: "day-of-week", range: 0...7, names: Self.weekdayNames)
        if weekdays & (1 << 7) != 0 { weekdays = (weekdays | 1) & ~(1 << 7) }
        daysOfWeek = weekdays
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")

        if !dayOfWeekRestricted {
            // A day-of-month that no chosen month has would never fire.
            let longest = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            let possible = (1...12).contains { month in
                months & (1 << month) != 0
                    && (1...longest[month - 1]).contains { daysOfMonth & (1 << $0) != 0 }
            }
            guard possible else {
                throw ParseError(message: "the day-of-month and month fields never meet, so it would never fire")
            }
        }
    }

    /// Whether the expression fires in the minute that contains `date`, in `timeZone`.
    package func matches(_ date: Date, timeZone: TimeZone = .current) -> Bool {
        let parts = calendar(timeZone).dateComponents([.month, .day, .hour, .minute, .weekday], from: date)
        return months & (1 << parts.month!) != 0 && dayMatches(day: parts.day!, weekday: parts.weekday! - 1)
            && hours & (1 << parts.hour!) != 0 && minutes & (1 << parts.minute!) != 0
    }

    /// The first minute strictly after `date` at which the expression fires, in `timeZone`;
    /// `nil` if none comes within eight years.
    package func next(after date: Date, timeZone: TimeZone = .current) -> Date? {
        let calendar = calendar(timeZone)
        let start = date.timeIntervalSinceReferenceDate
        var time = Date(timeIntervalSinceReferenceDate: (start / 60).rounded(.down) * 60 + 60)
        guard let startYear = calendar.dateComponents([.year], from: time).year else { return nil }
        while true {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: time)
            guard let year = parts.year, let month = parts.month, let day = parts.day,
                let hour = parts.hour, let minute = parts.minute, let weekday = parts.weekday,
                year <= startYear + 8
            else { return nil }
            if months & (1 << month) == 0 {
                var first = DateComponents(year: month == 12 ? year + 1 : year, month: month == 12 ? 1 : month + 1, day: 1)
                first.hour = 0
                guard let next = calendar.date(from: first) else { return nil }
                time = next
            } else if !dayMatches(day: day, weekday: weekday - 1) {
                guard let next = calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: time)) else { return nil }
                time = next
            } else if hours & (1 << hour) == 0 {
                time = time.addingTimeInterval(Double((60 - minute) * 60))
            } else if minutes & (1 << minute) == 0 {
                time = time.addingTimeInterval(60)
            } else {
                return time
            }
        }
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        let byMonth = daysOfMonth & (1 << day) != 0
        let byWeek = daysOfWeek & (1 << weekday) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted { return byMonth || byWeek }
        return byMonth && byWeek
    }

    private func calendar(_ timeZone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        return calendar
    }

    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String: Int]) throws(ParseError) -> UInt64 {
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, !item.isEmpty else {
                throw ParseError(message: "\(name) field: \"\(item)\" is not a value, range or step")
            }
            var step = 1
            if parts.count == 2 {
                guard let value = Int(parts[1]), value >= 1 else {
                    throw ParseError(message: "\(name) field: step \"\(parts[1])\" must be a whole number ≥ 1")
                }
                step = value
            }
            let base = parts[0]
            var low: Int
            var high: Int
            if base == "*" {
                low = range.lowerBound
                high = range.upperBound
                if name == "day-of-week" { high = 6 }
            } else {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else {
                    throw ParseError(message: "\(name) field: \"\(base)\" is not a value or range")
                }
                low = try value(bounds[0], name: name, range: range, names: names)
                high =
                    bounds.count == 2
                    ? try value(bounds[1], name: name, range: range, names: names)
                    : (parts.count == 2 ? range.upperBound : low)
                guard low <= high else {
                    throw ParseError(message: "\(name) field: range \(base) runs backwards")
                }
            }
            for number in stride(from: low, through: high, by: step) { bits |= 1 << number }
        }
        return bits
    }

    private static func value(_ text: Substring, name: String, range: ClosedRange<Int>, names: [String: Int]) throws(ParseError) -> Int {
        if let named = names[text.lowercased()] { return named }
        guard let number = Int(text) else {
            throw ParseError(message: "\(name) field: \"\(text)\" is not a number")
        }
        guard range.contains(number) else {
            throw ParseError(message: "\(name) field: \(number) is out of range \(range.lowerBound)–\(range.upperBound)")
        }
        return number
    }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames: [String: Int] = [
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
        "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
    ]
    private static let weekdayNames: [String: Int] = [
        "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
    ]
}
