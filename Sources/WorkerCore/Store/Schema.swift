import PostgresClient

/// The daemon's schema, applied at start under an advisory lock (`medianest-worker migrate` runs it alone).
public enum Schema {
    /// Advisory lock key for migrations: "medianest" folded into 63 bits.
    public static let lockKey: Int64 = 0x6D65_6469_616E_6573

    public static let migrations: [Migration] = [
        Migration(version: 1, name: "jobs", sql: """
            CREATE TABLE IF NOT EXISTS jobs (
                id           text PRIMARY KEY,
                queue        text NOT NULL,
                type         text NOT NULL,
                payload      jsonb,
                user_id      text,
                state        text NOT NULL,
                attempt      integer NOT NULL DEFAULT 0,
                max_attempts integer NOT NULL DEFAULT 1,
                error        text,
                result       jsonb,
                created_at   timestamptz NOT NULL DEFAULT now(),
                started_at   timestamptz,
                finished_at  timestamptz,
                updated_at   timestamptz NOT NULL DEFAULT now(),
                worker       text,
                raw          text
            );
            CREATE INDEX IF NOT EXISTS jobs_state_idx ON jobs (state);
            CREATE INDEX IF NOT EXISTS jobs_user_idx ON jobs (user_id) WHERE user_id IS NOT NULL;
            CREATE INDEX IF NOT EXISTS jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;
            """),
    ]
}
