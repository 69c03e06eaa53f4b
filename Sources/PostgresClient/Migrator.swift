/// One schema change: SQL run once, recorded by version.
public struct Migration: Sendable {
    /// Unique, increasing number; migrations run in version order.
    public let version: Int
    /// A short name, recorded beside the version and used in error messages.
    public let name: String
    /// The SQL, possibly several statements. It runs inside a transaction the migrator
    /// opens, so it must not contain `BEGIN`/`COMMIT` nor statements that refuse to run
    /// in a transaction (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …).
    public let sql: String

    /// Makes a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Brings a database schema up to date.
public enum Migrator {
    /// The table that records applied migrations.
    public static let tableName = "schema_migrations"

    /// Applies, in version order, each migration not yet recorded in
    /// `schema_migrations(version int primary key, name text, applied_at timestamptz)`
    /// (created if missing, in the first schema of the `search_path`), each in its own
    /// transaction together with its record, all under `pg_advisory_lock(lockKey)` held
    /// on one connection (released afterwards, also on error), so several hosts can
    /// start at once: the later ones wait, then find nothing left to do.
    ///
    /// - Returns: the versions applied now, ascending (empty when up to date).
    /// - Throws: `PostgresError`. A failing migration is rolled back (earlier ones in the
    ///   same run stay applied) and reported as `.query` whose message starts with
    ///   `migration <version> (<name>) failed:` and keeps the server's SQLSTATE and detail.
    ///   Two migrations with the same version throw `.query` with no SQLSTATE before
    ///   anything runs.
    public static func migrate(_ pool: PostgresPool, migrations: [Migration], lockKey: Int64) async throws -> [Int] {
        var seen = Set<Int>()
        for migration in migrations where !seen.insert(migration.version).inserted {
            throw PostgresError.query(
                message: "migration version \(migration.version) appears more than once", sqlState: nil, detail: nil)
        }
        let ordered = migrations.sorted { $0.version < $1.version }
        return try await pool.withConnection { connection in
            _ = try await connection.query("SELECT pg_advisory_lock($1)", [PostgresBind(lockKey)])
            let applied: [Int]
            do {
                applied = try await apply(ordered, on: connection)
            } catch {
                await unlock(connection, lockKey)
                throw error
            }
            await unlock(connection, lockKey)
            return applied
        }
    }

    private static func apply(_ migrations: [Migration], on connection: PostgresConnection) async throws(PostgresError) -> [Int] {
        try await connection.execute(
            script: """
                CREATE TABLE IF NOT EXISTS \(tableName) (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
        let done = Set(try await connection.query("SELECT version FROM \(tableName)").rows.compactMap { $0.optionalInt("version") })
        var applied: [Int] = []
        for migration in migrations where !done.contains(migration.version) {
            try await connection.execute(script: "BEGIN")
            do throws(PostgresError) {
                try await connection.execute(script: migration.sql)
                _ = try await connection.query(
                    "INSERT INTO \(tableName) (version, name, applied_at) VALUES ($1, $2, now())",
                    [PostgresBind(migration.version), PostgresBind(migration.name)])
                try await connection.commit()
            } catch {
                if connection.isInTransaction && connection.isHealthy {
                    try? await connection.execute(script: "ROLLBACK")
                }
                throw describe(error, migration)
            }
            applied.append(migration.version)
        }
        return applied
    }

    /// Releases the advisory lock. If that fails while the session lives on, the
    /// connection is closed: ending the session is what releases the lock then.
    private static func unlock(_ connection: PostgresConnection, _ lockKey: Int64) async {
        do {
            _ = try await connection.query("SELECT pg_advisory_unlock($1)", [PostgresBind(lockKey)])
        } catch {
            connection.close()
        }
    }

    private static func describe(_ error: PostgresError, _ migration: Migration) -> PostgresError {
        let prefix = "migration \(migration.version) (\(migration.name)) failed: "
        switch error {
        case .query(let message, let sqlState, let detail):
            return .query(message: prefix + message, sqlState: sqlState, detail: detail)
        case .connection(let reason):
            return .connection(prefix + reason)
        default:
            return error
        }
    }
}
