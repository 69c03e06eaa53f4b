import PostgresClient

extension Migrations {
    /// 1: the durable record of every job.
    static let jobs = Migration(
        version: 1, name: "jobs",
        sql: """
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
            """)
}
