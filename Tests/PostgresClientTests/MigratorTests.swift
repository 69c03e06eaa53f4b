import Foundation
import Testing

@testable import PostgresClient

extension DatabaseTests {
    @Suite("Migrator")
    struct MigratorTests {
        static let migrations = [
            Migration(version: 2, name: "add_items_name", sql: "ALTER TABLE items ADD COLUMN name text; INSERT INTO log VALUES (2)"),
            Migration(
                version: 1, name: "create_items",
                sql: "CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE log (v int); INSERT INTO log VALUES (1)"),
            Migration(
                version: 3, name: "slow_index",
                sql: "SELECT pg_sleep(0.2); CREATE INDEX items_name ON items (name); INSERT INTO log VALUES (3)"),
        ]

        static func recorded(_ pool: PostgresPool) async throws -> [Int] {
            try await pool.query("SELECT version FROM schema_migrations ORDER BY version").rows.map { try $0.int("version") }
        }

        static func lockKey() -> Int64 { Int64.random(in: 1...Int64.max) }

        @Test func runsOnceThenHasNothingToDo() async throws {
            try await TestDatabase.withPool { pool, _ in
                let key = Self.lockKey()
                #expect(try await Migrator.migrate(pool, migrations: Self.migrations, lockKey: key) == [1, 2, 3])
                #expect(try await Migrator.migrate(pool, migrations: Self.migrations, lockKey: key) == [])
                #expect(try await Self.recorded(pool) == [1, 2, 3])
                let names = try await pool.query("SELECT name, applied_at FROM schema_migrations ORDER BY version").rows
                #expect(try names.map { try $0.string("name") } == ["create_items", "add_items_name", "slow_index"])
                #expect(try names.allSatisfy { abs(try $0.date("applied_at").timeIntervalSinceNow) < 60 })
                #expect(try await pool.query("SELECT v FROM log ORDER BY v").rows.map { try $0.int("v") } == [1, 2, 3])

                let more = Self.migrations + [Migration(version: 4, name: "more", sql: "INSERT INTO log VALUES (4)")]
                #expect(try await Migrator.migrate(pool, migrations: more, lockKey: key) == [4])
            }
        }

        @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
            try await TestDatabase.withSchema { configuration in
                let key = Self.lockKey()
                let first = PostgresPool(configuration: configuration, size: 2)
                let second = PostgresPool(configuration: configuration, size: 2)
                async let a = Migrator.migrate(first, migrations: Self.migrations, lockKey: key)
                async let b = Migrator.migrate(second, migrations: Self.migrations, lockKey: key)
                let (appliedByA, appliedByB) = try await (a, b)
                #expect(Set(appliedByA).isDisjoint(with: appliedByB))
                #expect((appliedByA + appliedByB).sorted() == [1, 2, 3])
                let counts = try await first.query("SELECT version, count(*) AS c FROM schema_migrations GROUP BY version ORDER BY version")
                    .rows
                #expect(try counts.map { try $0.int("version") } == [1, 2, 3])
                #expect(try counts.allSatisfy { try $0.int("c") == 1 })
                #expect(try await first.query("SELECT v FROM log ORDER BY v").rows.map { try $0.int("v") } == [1, 2, 3])
                await first.close()
                await second.close()
            }
        }

        @Test func failingMigrationRollsBackAndReleasesTheLock() async throws {
            try await TestDatabase.withPool { pool, configuration in
                let key = Self.lockKey()
                let broken = [
                    Self.migrations[1],
                    Migration(version: 2, name: "broken", sql: "CREATE TABLE half_done (x int); INSERT INTO log VALUES (2); SELECT 1/0"),
                    Migration(version: 3, name: "after", sql: "INSERT INTO log VALUES (3)"),
                ]
                let error = await capturePostgresError { _ = try await Migrator.migrate(pool, migrations: broken, lockKey: key) }
                guard case .query(let message, let sqlState, _) = error else {
                    Issue.record("expected .query, got \(String(describing: error))")
                    return
                }
                #expect(message.hasPrefix("migration 2 (broken) failed: "))
                #expect(message.contains("division by zero"))
                #expect(sqlState == "22012")
                #expect(try await Self.recorded(pool) == [1])
                #expect(try await pool.query("SELECT to_regclass('half_done') IS NULL AS gone").rows[0].bool("gone"))
                #expect(try await pool.query("SELECT v FROM log ORDER BY v").rows.map { try $0.int("v") } == [1])

                // The advisory lock was released: another session can take it at once.
                let other = try await TestDatabase.connect(configuration)
                defer { other.close() }
                #expect(try await other.query("SELECT pg_try_advisory_lock($1) AS got", [PostgresBind(key)]).rows[0].bool("got"))
                _ = try await other.query("SELECT pg_advisory_unlock($1)", [PostgresBind(key)])

                // Fixed, it goes through.
                let fixed = [broken[0], Migration(version: 2, name: "fixed", sql: "INSERT INTO log VALUES (2)"), broken[2]]
                #expect(try await Migrator.migrate(pool, migrations: fixed, lockKey: key) == [2, 3])
                #expect(try await pool.query("SELECT v FROM log ORDER BY v").rows.map { try $0.int("v") } == [1, 2, 3])
            }
        }

        @Test func waitsForTheLockHolder() async throws {
            try await TestDatabase.withPool { pool, configuration in
                let key = Self.lockKey()
                let holder = try await TestDatabase.connect(configuration)
                defer { holder.close() }
                _ = try await holder.query("SELECT pg_advisory_lock($1)", [PostgresBind(key)])
                let started = ContinuousClock.now
                async let applied = Migrator.migrate(pool, migrations: Self.migrations, lockKey: key)
                try await Task.sleep(for: .milliseconds(300))
                _ = try await holder.query("SELECT pg_advisory_unlock($1)", [PostgresBind(key)])
                #expect(try await applied == [1, 2, 3])
                #expect(ContinuousClock.now - started >= .milliseconds(300))
            }
        }

        @Test func duplicateVersionsAreRefused() async throws {
            try await TestDatabase.withPool { pool, _ in
                let error = await capturePostgresError {
                    _ = try await Migrator.migrate(
                        pool,
                        migrations: [
                            Migration(version: 1, name: "a", sql: "SELECT 1"),
                            Migration(version: 1, name: "b", sql: "SELECT 2"),
                        ], lockKey: Self.lockKey())
                }
                #expect(error?.description.contains("version 1") == true)
                let table = try await pool.query("SELECT to_regclass('schema_migrations') IS NULL AS absent").rows[0]
                #expect(try table.bool("absent"))
            }
        }
    }
}
