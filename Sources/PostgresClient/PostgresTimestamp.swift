import Foundation

/// Formats and parses timestamps without `DateFormatter` (which is slow, not
/// `Sendable`, and locale-dependent).
enum PostgresTimestamp {
    private static let millisecondsPerDay: Int64 = 86_400_000

    /// `2026-11-24T10:00:00.123Z`: UTC, milliseconds rounded to nearest.
    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let days = floorDivide(milliseconds, millisecondsPerDay)
        var msOfDay = milliseconds - days * millisecondsPerDay
        let (year, month, day) = civil(fromDays: days)
        let hour = msOfDay / 3_600_000
        msOfDay %= 3_600_000
        let minute = msOfDay / 60_000
        msOfDay %= 60_000
        let second = msOfDay / 1000
        let millis = msOfDay % 1000
        var text = year < 0 ? "-" + pad(-year, 4) : pad(year, 4)
        text += "-" + pad(month, 2) + "-" + pad(day, 2)
        text += "T" + pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2) + "." + pad(millis, 3) + "Z"
        return text
    }

    /// Parses what PostgreSQL prints for `timestamptz` (DateStyle ISO), e.g.
    /// `2026-11-24 10:00:00.123+00`, `2026-11-24 10:00:00+05:30`, `1900-01-01 00:00:00+00:53:28`;
    /// also ISO 8601 with `T` and `Z`, a `timestamp` without offset (read as UTC), a bare
    /// date (midnight UTC), and `infinity` / `-infinity` (`Date.distantFuture` /
    /// `Date.distantPast`). Returns `nil` for anything else, including BC dates.
    static func parse(_ text: String) -> Date? {
        if text == "infinity" { return .distantFuture }
        if text == "-infinity" { return .distantPast }
        var scanner = ByteScanner(Array(text.utf8))

        guard let year = scanner.number(minDigits: 4, maxDigits: 7), scanner.take(UInt8(ascii: "-")),
            let month = scanner.number(minDigits: 2, maxDigits: 2), scanner.take(UInt8(ascii: "-")),
            let day = scanner.number(minDigits: 2, maxDigits: 2),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        // Whole seconds stay integral and the fraction is added last, relative to the
        // reference date, so microseconds survive the conversion to Double.
        var wholeSeconds = daysFromCivil(year: year, month: month, day: day) * 86_400
        var fraction = 0.0
        func makeDate(offset: Int = 0) -> Date {
            Date(timeIntervalSinceReferenceDate: Double(wholeSeconds - offset - 978_307_200) + fraction)
        }
        if scanner.atEnd { return makeDate() }

        guard scanner.take(UInt8(ascii: " ")) || scanner.take(UInt8(ascii: "T")),
            let hour = scanner.number(minDigits: 2, maxDigits: 2), scanner.take(UInt8(ascii: ":")),
            let minute = scanner.number(minDigits: 2, maxDigits: 2), scanner.take(UInt8(ascii: ":")),
            let second = scanner.number(minDigits: 2, maxDigits: 2),
            hour <= 24, minute <= 59, second <= 60
        else { return nil }
        wholeSeconds += hour * 3600 + minute * 60 + second
        if scanner.take(UInt8(ascii: ".")) {
            var scale = 1.0
            var digits = 0
            while let digit = scanner.digit() {
                fraction = fraction * 10 + Double(digit)
                scale *= 10
                digits += 1
            }
            guard digits > 0 else { return nil }
            fraction /= scale
        }
        if scanner.atEnd { return makeDate() }
        if scanner.take(UInt8(ascii: "Z")) {
            return scanner.atEnd ? makeDate() : nil
        }
        let sign: Int
        if scanner.take(UInt8(ascii: "+")) {
            sign = 1
        } else if scanner.take(UInt8(ascii: "-")) {
            sign = -1
        } else {
            return nil
        }
        guard let offsetHours = scanner.number(minDigits: 2, maxDigits: 2) else { return nil }
        var offset = offsetHours * 3600
        if scanner.take(UInt8(ascii: ":")) {
            guard let offsetMinutes = scanner.number(minDigits: 2, maxDigits: 2) else { return nil }
            offset += offsetMinutes * 60
            if scanner.take(UInt8(ascii: ":")) {
                guard let offsetSeconds = scanner.number(minDigits: 2, maxDigits: 2) else { return nil }
                offset += offsetSeconds
            }
        }
        guard scanner.atEnd else { return nil }
        return makeDate(offset: sign * offset)
    }

    // MARK: Calendar arithmetic (proleptic Gregorian, Howard Hinnant's algorithms)

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = (month + 9) % 12
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// A cursor over ASCII bytes.
private struct ByteScanner {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var atEnd: Bool { position == bytes.count }

    mutating func take(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    mutating func digit() -> Int? {
        guard position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else {
            return nil
        }
        defer { position += 1 }
        return Int(bytes[position] - UInt8(ascii: "0"))
    }

    mutating func number(minDigits: Int, maxDigits: Int) -> Int? {
        var value = 0
        var count = 0
        while count < maxDigits, let digit = digit() {
            value = value * 10 + digit
            count += 1
        }
        return count >= minDigits ? value : nil
    }
}
