import Foundation
import Testing

@testable import WorkerConfig

@Suite("CronExpression")
struct CronExpressionTests {
    let utc = TimeZone(identifier: "UTC")!

    func date(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        return formatter.date(from: text)!
    }

    @Test func everyFifteenMinutes() throws {
        let cron = try CronExpression("*/15 * * * *")
        #expect(cron.next(after: date("2025-01-01T10:07:30Z"), timeZone: utc) == date("2025-01-01T10:15:00Z"))
        #expect(cron.next(after: date("2025-01-01T10:15:00Z"), timeZone: utc) == date("2025-01-01T10:30:00Z"))
        #expect(cron.next(after: date("2025-01-01T23:59:00Z"), timeZone: utc) == date("2025-01-02T00:00:00Z"))
        #expect(cron.matches(date("2025-01-01T10:45:10Z"), timeZone: utc))
    }

    @Test func namesRangesAndLists() throws {
        let cron = try CronExpression("30 9-17/4 * jan,JUL mon-fri")
        // 2025-01-04 is a Saturday: next is Monday the 6th at 09:30.
        #expect(cron.next(after: date("2025-01-03T17:31:00Z"), timeZone: utc) == date("2025-01-06T09:30:00Z"))
        #expect(cron.next(after: date("2025-01-06T09:30:00Z"), timeZone: utc) == date("2025-01-06T13:30:00Z"))
        #expect(cron.next(after: date("2025-01-31T17:30:00Z"), timeZone: utc) == date("2025-07-01T09:30:00Z"))
    }

    @Test func eitherDayFieldWhenBothAreRestricted() throws {
        let cron = try CronExpression("0 0 13 * 5")
        // 2025-06-06 is a Friday, before the 13th.
        #expect(cron.next(after: date("2025-06-01T00:00:00Z"), timeZone: utc) == date("2025-06-06T00:00:00Z"))
    }

    @Test func sundayIsZeroOrSeven() throws {
        let seven = try CronExpression("0 0 * * 7")
        let zero = try CronExpression("0 0 * * sun")
        // 2025-01-05 is a Sunday.
        #expect(seven.next(after: date("2025-01-01T00:00:00Z"), timeZone: utc) == date("2025-01-05T00:00:00Z"))
        #expect(zero.next(after: date("2025-01-01T00:00:00Z"), timeZone: utc) == date("2025-01-05T00:00:00Z"))
        let cron = try CronExpression("@weekly")
        #expect(cron.next(after: date("2025-01-01T00:00:00Z"), timeZone: utc) == date("2025-01-05T00:00:00Z"))
    }

    @Test func leapDay() throws {
        let cron = try CronExpression("0 12 29 2 *")
        #expect(cron.next(after: date("2025-01-01T00:00:00Z"), timeZone: utc) == date("2028-02-29T12:00:00Z"))
    }

    @Test func otherTimeZone() throws {
        let cron = try CronExpression("@daily")
        let kolkata = TimeZone(identifier: "Asia/Kolkata")!
        #expect(cron.next(after: date("2025-01-01T00:00:00Z"), timeZone: kolkata) == date("2025-01-01T18:30:00Z"))
        let hourly = try CronExpression("@hourly")
        #expect(hourly.next(after: date("2025-01-01T00:10:00Z"), timeZone: kolkata) == date("2025-01-01T00:30:00Z"))
    }

    @Test(arguments: ["", "* * * * * *", "a * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "1,,2 * * * *", "*/x * * * *"])
    func refusesBadExpressions(text: String) {
        #expect(throws: CronExpression.ParseError.self) { try CronExpression(text) }
    }
}
