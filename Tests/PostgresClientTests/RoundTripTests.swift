import Foundation
import Testing

@testable import PostgresClient

extension DatabaseTests {
    @Suite("Binds round-trip through PostgreSQL")
    struct RoundTripTests {
        @Test func everyScalarType() async throws {
            try await TestDatabase.withPool { pool, _ in
                let date = Date(timeIntervalSince1970: 1_795_514_400.123)
                let uuid = UUID()
                let result = try await pool.query(
                    """
                    SELECT $1::text AS s, $2::int AS i, $3::bigint AS b, $4::float8 AS d, $5::bool AS t,
                           $6::timestamptz AS ts, $7::jsonb ->> 'title' AS j, $8::uuid AS u, $9::numeric AS n
                    """,
                    [
                        PostgresBind("héllo"), PostgresBind(-42), PostgresBind(Int64.max), PostgresBind(Double.pi),
                        PostgresBind(true), PostgresBind(date), PostgresBind(json: #"{"title":"Ünïcode \"quoted\""}"#),
                        PostgresBind(uuid), PostgresBind(12.5),
                    ])
                let row = try #require(result.rows.first)
                #expect(try row.string("s") == "héllo")
                #expect(try row.int("i") == -42)
                #expect(try row.int64("b") == Int64.max)
                #expect(try row.double("d") == Double.pi)
                #expect(try row.bool("t") == true)
                #expect(abs(try row.date("ts").timeIntervalSince(date)) < 1e-6)
                #expect(try row.string("j") == #"Ünïcode "quoted""#)
                #expect(try row.uuid("u") == uuid)
                #expect(try row.double("n") == 12.5)
                #expect(result.affectedRows == 1)
                #expect(result.commandTag == "SELECT 1")
            }
        }

        @Test func nullsOfEveryType() async throws {
            try await TestDatabase.withPool { pool, _ in
                let result = try await pool.query(
                    """
                    SELECT $1::text AS s, $2::int AS i, $3::bigint AS b, $4::float8 AS d, $5::bool AS t,
                           $6::timestamptz AS ts, $7::jsonb AS j, $8::text[] AS a, $9::bigint[] AS ia, $10::uuid AS u
                    """,
                    [
                        PostgresBind(String?.none), PostgresBind(Int?.none), PostgresBind(Int64?.none),
                        PostgresBind(Double?.none), PostgresBind(Bool?.none), PostgresBind(Date?.none),
                        PostgresBind(json: nil), .null, nil, PostgresBind(UUID?.none),
                    ])
                let row = try #require(result.rows.first)
                #expect(row.values.allSatisfy { $0 == nil })
                #expect(row.columns == ["s", "i", "b", "d", "t", "ts", "j", "a", "ia", "u"])
                #expect(row.optionalDate("ts") == nil)
                #expect(row.optionalInt("i") == nil)
            }
        }

        @Test func numericExtremes() async throws {
            try await TestDatabase.withPool { pool, _ in
                let values: [Double] = [0, -0.0, 1e-300, 1.7976931348623157e308, 0.1, -123.456, .infinity, -.infinity]
                for value in values {
                    let row = try await pool.query("SELECT $1::float8 AS d", [PostgresBind(value)]).rows[0]
                    #expect(try row.double("d") == value, "\(value)")
                }
                let nan = try await pool.query("SELECT $1::float8 AS d", [PostgresBind(Double.nan)]).rows[0]
                #expect(try nan.double("d").isNaN)
                let ints = try await pool.query(
                    "SELECT $1::bigint AS lo, $2::bigint AS hi", [PostgresBind(Int64.min), PostgresBind(Int64.max)]
                ).rows[0]
                #expect(try ints.int64("lo") == Int64.min)
                #expect(try ints.int64("hi") == Int64.max)
            }
        }

        @Test func awkwardTextIsStoredVerbatim() async throws {
            try await TestDatabase.withPool { pool, _ in
                _ = try await pool.query("CREATE TABLE notes (id int PRIMARY KEY, body text)")
                let texts = [
                    "héllo wörld 🎬 日本語 ✓",
                    "it's \"quoted\"",
                    #"C:\path\to\file \n not a newline \\ two"#,
                    "'); DROP TABLE notes; --",
                    "$1 $2 ?",
                    "{braces,and,commas}",
                    "",
                    "line one\nline two\ttab",
                    String(repeating: "long ", count: 20_000),
                ]
                for (id, text) in texts.enumerated() {
                    let inserted = try await pool.query(
                        "INSERT INTO notes (id, body) VALUES ($1, $2)", [PostgresBind(id), PostgresBind(text)])
                    #expect(inserted.affectedRows == 1)
                }
                let rows = try await pool.query("SELECT id, body FROM notes ORDER BY id").rows
                #expect(try rows.map { try $0.string("body") } == texts)
                // The injection-looking text did nothing: the table is still there.
                #expect(try await pool.query("SELECT count(*) AS n FROM notes").rows[0].int("n") == texts.count)
            }
        }

        @Test func textArrays() async throws {
            try await TestDatabase.withPool { pool, _ in
                let elements: [String?] = [
                    "plain", #"with "quotes""#, #"back\slash"#, #"\"#, "{braces}", "}", "comma,separated",
                    "NULL", "null", "", " spaced ", "ünïcödé 🎬", nil, "'single'", "a\nb",
                ]
                let rows = try await pool.query(
                    "SELECT v, i FROM unnest($1::text[]) WITH ORDINALITY AS t(v, i) ORDER BY i",
                    [PostgresBind(array: elements)]
                ).rows
                #expect(rows.map { $0["v"] } == elements)
                #expect(try rows.map { try $0.int("i") } == Array(1...elements.count))

                let empty = try await pool.query("SELECT cardinality($1::text[]) AS n", [PostgresBind(array: [String?]())])
                #expect(try empty.rows[0].int("n") == 0)
            }
        }

        @Test func integerArrays() async throws {
            try await TestDatabase.withPool { pool, _ in
                let elements: [Int64?] = [1, nil, Int64.min, Int64.max, 0]
                let rows = try await pool.query(
                    "SELECT v FROM unnest($1::bigint[]) WITH ORDINALITY AS t(v, i) ORDER BY i",
                    [PostgresBind(array: elements)]
                ).rows
                #expect(rows.map { $0.optionalString("v").flatMap { Int64($0) } } == elements)
                let small = try await pool.query(
                    "SELECT array_length($1::int[], 1) AS n", [PostgresBind(array: [Int?](arrayLiteral: 1, 2, nil))])
                #expect(try small.rows[0].int("n") == 3)
            }
        }

        @Test func json() async throws {
            try await TestDatabase.withPool { pool, _ in
                let text = #"{"title": "Café \"Noir\" \\ 🎬", "paths": ["/a/b", "/c"], "n": 3}"#
                let row = try await pool.query(
                    "SELECT $1::jsonb ->> 'title' AS title, jsonb_array_length($1::jsonb -> 'paths') AS paths, $1::jsonb AS whole",
                    [PostgresBind(json: text)]
                ).rows[0]
                #expect(try row.string("title") == #"Café "Noir" \ 🎬"#)
                #expect(try row.int("paths") == 2)
                let bad = await capturePostgresError {
                    _ = try await pool.query("SELECT $1::jsonb AS j", [PostgresBind(json: "{not json")])
                }
                #expect(bad?.sqlState == "22P02")
            }
        }

        @Test func timestampsInAnyTimeZone() async throws {
            let connection = try await TestDatabase.connect()
            defer { connection.close() }
            let instant = Date(timeIntervalSince1970: 1_795_514_400.5)  // 2026-11-24 10:00:00.5 UTC
            for (zone, suffix) in [
                ("UTC", "+00"), ("Asia/Kolkata", "+05:30"), ("America/St_Johns", "-03:30"), ("America/Los_Angeles", "-08"),
            ] {
                try await connection.execute(script: "SET TIME ZONE '\(zone)'")
                let row = try await connection.query("SELECT $1::timestamptz AS t", [PostgresBind(instant)]).rows[0]
                let text = try row.string("t")
                #expect(text.hasSuffix(".5" + suffix), "\(zone): \(text)")
                #expect(abs(try row.date("t").timeIntervalSince(instant)) < 1e-6, "\(zone): \(text)")
            }
            try await connection.execute(script: "SET TIME ZONE 'UTC'")
            let whole = try await connection.query(
                "SELECT '2026-11-24 10:00:00+00'::timestamptz AS t, '2026-11-24 10:00:00.123456+00'::timestamptz AS micro"
            ).rows[0]
            #expect(try whole.string("t") == "2026-11-24 10:00:00+00")
            #expect(try whole.date("t") == Date(timeIntervalSince1970: 1_795_514_400))
            #expect(abs(try whole.date("micro").timeIntervalSince1970 - 1_795_514_400.123456) < 1e-6)
            let infinite = try await connection.query("SELECT 'infinity'::timestamptz AS t").rows[0]
            #expect(try infinite.date("t") == .distantFuture)
        }

        @Test func typedAccessAndDecodingErrorsOnRealRows() async throws {
            try await TestDatabase.withPool { pool, _ in
                let row = try await pool.query("SELECT 1 AS one, NULL::int AS nothing, 'x' AS letter, true AS yes, now() AS at").rows[0]
                #expect(try row.int("one") == 1)
                #expect(try row.bool("yes"))
                #expect(abs(try row.date("at").timeIntervalSinceNow) < 60)
                for column in ["letter", "nothing", "absent"] {
                    let error = await capturePostgresError { _ = try row.int(column) }
                    guard case .decoding(let reason) = error else {
                        Issue.record("expected .decoding for \(column), got \(String(describing: error))")
                        continue
                    }
                    #expect(reason.contains("\"\(column)\""))
                }
                #expect(row.optionalInt("nothing") == nil)
                #expect(row.optionalInt("letter") == nil)
            }
        }

        @Test func nulCharacterIsRefusedBeforeSending() async throws {
            try await TestDatabase.withPool { pool, _ in
                let error = await capturePostgresError { _ = try await pool.query("SELECT $1::text AS t", [PostgresBind("a\0b")]) }
                #expect(error?.sqlState == "22021")
                #expect(error?.description.contains("$1") == true)
                let after = try await pool.query("SELECT 1 AS one")
                #expect(try after.rows[0].int("one") == 1)
            }
        }
    }
}
