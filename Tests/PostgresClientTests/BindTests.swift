import Foundation
import Testing

@testable import PostgresClient

@Suite("PostgresBind text encoding")
struct BindTests {
    @Test func scalars() {
        #expect(PostgresBind("héllo").text == "héllo")
        #expect(PostgresBind(String?.none).text == nil)
        #expect(PostgresBind(42).text == "42")
        #expect(PostgresBind(Int?.none) == .null)
        #expect(PostgresBind(Int64.min).text == "-9223372036854775808")
        #expect(PostgresBind(0.1).text == "0.1")
        #expect(PostgresBind(1e-300).text == "1e-300")
        #expect(PostgresBind(Double.infinity).text == "Infinity")
        #expect(PostgresBind(-Double.infinity).text == "-Infinity")
        #expect(PostgresBind(Double.nan).text == "NaN")
        #expect(PostgresBind(true).text == "true")
        #expect(PostgresBind(false).text == "false")
        #expect(PostgresBind(json: #"{"a":1}"#).text == #"{"a":1}"#)
        let uuid = UUID(uuidString: "0F4A5D2E-1B2C-4D3E-8F90-A1B2C3D4E5F6")!
        #expect(PostgresBind(uuid).text == "0f4a5d2e-1b2c-4d3e-8f90-a1b2c3d4e5f6")
    }

    @Test func literals() {
        let binds: [PostgresBind] = ["text", 7, true, nil]
        #expect(binds.map(\.text) == ["text", "7", "true", nil])
        #expect(PostgresBind.null.text == nil)
    }

    @Test func dates() {
        // 2026-11-24T10:00:00.123Z
        let date = Date(timeIntervalSince1970: 1_795_514_400.123)
        #expect(PostgresBind(date).text == "2026-11-24T10:00:00.123Z")
        #expect(PostgresBind(Date(timeIntervalSince1970: 0)).text == "1970-01-01T00:00:00.000Z")
        #expect(PostgresBind(Date(timeIntervalSince1970: -0.001)).text == "1969-12-31T23:59:59.999Z")
        #expect(PostgresBind(Date(timeIntervalSince1970: 951_782_400)).text == "2000-02-29T00:00:00.000Z")
        // Rounds to the nearest millisecond rather than truncating 0.1229999…
        #expect(PostgresBind(Date(timeIntervalSince1970: 1.9996)).text == "1970-01-01T00:00:02.000Z")
        #expect(PostgresBind(Date?.none).text == nil)
    }

    @Test func textArrays() {
        #expect(PostgresBind(array: [String?]()).text == "{}")
        #expect(PostgresBind(array: ["a", "b\"c", nil]).text == #"{"a","b\"c",NULL}"#)
        #expect(PostgresBind(array: [#"back\slash"#, "{x,y}", "NULL", ""]).text == #"{"back\\slash","{x,y}","NULL",""}"#)
    }

    @Test func integerArrays() {
        #expect(PostgresBind(array: [Int64(1), nil, -3]).text == "{1,NULL,-3}")
        #expect(PostgresBind(array: [Int64?]()).text == "{}")
        #expect(PostgresBind(array: [Int?](arrayLiteral: 5, nil)).text == "{5,NULL}")
    }
}

@Suite("Timestamp text")
struct TimestampTests {
    private static let base = Date(timeIntervalSince1970: 1_795_514_400)  // 2026-11-24 10:00:00 UTC

    @Test(arguments: [
        ("2026-11-24 10:00:00+00", 0.0),
        ("2026-11-24 10:00:00.123+00", 0.123),
        ("2026-11-24 10:00:00.5+00", 0.5),
        ("2026-11-24 10:00:00.123456+00", 0.123456),
        ("2026-11-24 15:30:00+05:30", 0.0),
        ("2026-11-24 06:30:00.25-03:30", 0.25),
        ("2026-11-24 02:00:00-08", 0.0),
        ("2026-11-24T10:00:00Z", 0.0),
        ("2026-11-24T10:00:00.123Z", 0.123),
        ("2026-11-24 10:00:00", 0.0),
        ("2026-11-24 10:53:28+00:53:28", 0.0),
    ])
    func parses(text: String, fraction: Double) throws {
        let date = try #require(PostgresTimestamp.parse(text))
        #expect(abs(date.timeIntervalSince(Self.base) - fraction) < 1e-6, "\(text) → \(date)")
    }

    @Test func datesInfinityAndHistory() throws {
        #expect(PostgresTimestamp.parse("2026-11-24") == Date(timeIntervalSince1970: 1_795_478_400))
        #expect(PostgresTimestamp.parse("infinity") == .distantFuture)
        #expect(PostgresTimestamp.parse("-infinity") == .distantPast)
        #expect(PostgresTimestamp.parse("1969-12-31 23:59:59.999+00") == Date(timeIntervalSince1970: -0.001))
        #expect(PostgresTimestamp.parse("2000-02-29 00:00:00+00") == Date(timeIntervalSince1970: 951_782_400))
        #expect(PostgresTimestamp.parse("10000-01-01 00:00:00+00") == Date(timeIntervalSince1970: 253_402_300_800))
    }

    @Test(arguments: [
        "", "garbage", "2026-13-01 00:00:00+00", "2026-02-29 00:00:00+00", "2026-11-24 25:00:00+00",
        "2026-11-24 10:00:00 BC", "2026-11-24 10:00:00.+00", "2026-11-24 10:00+00", "2026-11-24 10:00:00+5",
        "2026-11-24 10:00:00+00:3", "26-11-24 10:00:00+00", "2026-11-24 10:00:00+00 ",
    ])
    func refuses(text: String) {
        #expect(PostgresTimestamp.parse(text) == nil, "\(text)")
    }

    @Test func formatAndParseAgree() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: -2_208_988_800_000...4_102_444_800_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let text = PostgresTimestamp.format(date)
            guard let parsed = PostgresTimestamp.parse(text) else {
                Issue.record("could not parse \(text)")
                return
            }
            #expect(abs(parsed.timeIntervalSince(date)) < 1e-6, "\(text)")
        }
    }
}

@Suite("PostgresRow typed access")
struct RowTests {
    let row = PostgresRow(
        columns: ["id", "name", "flag", "score", "at", "missing_value", "id", "big", "uid"],
        values: [
            "7", "Zoë", "t", "2.5", "2026-11-24 10:00:00.123+00", nil, "8", "9223372036854775807",
            "0f4a5d2e-1b2c-4d3e-8f90-a1b2c3d4e5f6",
        ])

    @Test func readsValues() throws {
        #expect(row["name"] == "Zoë")
        #expect(row[1] == "Zoë")
        #expect(row[99] == nil)
        #expect(row["id"] == "7", "the first column of a name wins")
        #expect(try row.int("id") == 7)
        #expect(try row.int64("big") == Int64.max)
        #expect(try row.string("name") == "Zoë")
        #expect(try row.bool("flag"))
        #expect(try row.double("score") == 2.5)
        #expect(abs(try row.date("at").timeIntervalSince1970 - 1_795_514_400.123) < 1e-6)
        #expect(try row.uuid("uid") == UUID(uuidString: "0F4A5D2E-1B2C-4D3E-8F90-A1B2C3D4E5F6"))
        #expect(row.optionalString("missing_value") == nil)
        #expect(row.optionalInt("missing_value") == nil)
        #expect(row.optionalInt("name") == nil)
        #expect(row.optionalDate("missing_value") == nil)
        #expect(row.optionalDate("at") != nil)
        #expect(row.optionalInt("id") == 7)
        #expect(row.contains("flag"))
        #expect(!row.contains("nope"))
    }

    @Test func decodingErrorsNameTheColumn() {
        func failure(_ body: () throws -> Void) -> String? {
            do {
                try body()
                return nil
            } catch {
                guard case .decoding(let reason) = error as? PostgresError else { return "wrong error: \(error)" }
                return reason
            }
        }
        #expect(failure { _ = try row.string("missing_value") }?.contains("\"missing_value\" is NULL") == true)
        #expect(failure { _ = try row.string("nope") }?.contains("no column named \"nope\"") == true)
        #expect(failure { _ = try row.int("name") }?.contains("\"name\" is not an integer") == true)
        #expect(failure { _ = try row.bool("id") }?.contains("\"id\" is not a boolean") == true)
        #expect(failure { _ = try row.double("name") }?.contains("\"name\" is not a number") == true)
        #expect(failure { _ = try row.date("name") }?.contains("\"name\" is not a timestamp") == true)
        #expect(failure { _ = try row.int64("score") } != nil)
        #expect(failure { _ = try row.uuid("name") } != nil)
    }

    @Test func doubleSpellings() {
        #expect(PostgresRow.parseDouble("Infinity") == .infinity)
        #expect(PostgresRow.parseDouble("-Infinity") == -.infinity)
        #expect(PostgresRow.parseDouble("NaN")?.isNaN == true)
        #expect(PostgresRow.parseDouble("1e-05") == 1e-05)
        #expect(PostgresRow.parseDouble("-12.50") == -12.5)
        #expect(PostgresRow.parseDouble("inf") == nil)
        #expect(PostgresRow.parseDouble("0x10") == nil)
        #expect(PostgresRow.parseDouble("") == nil)
    }
}
