import PostgresClient

extension Migrations {
    /// 10: `jobs_state_idx` indexed every row by its state, so each finished row (nearly all of them)
    /// cost PostgreSQL an entry in it. Rows are looked up by state only while unfinished (queued,
    /// scheduled, active); the finished are found by `finished_at` (retention, the finished ids).
    /// The index now holds the unfinished rows alone.
    static let unfinishedIndex = Migration(
        version: 10, name: "unfinished index",
        sql: """
            CREATE INDEX IF NOT EXISTS jobs_unfinished_idx ON jobs (state)
                WHERE state NOT IN ('completed', 'failed', 'cancelled');
            DROP INDEX IF EXISTS jobs_state_idx;
            """)
}
