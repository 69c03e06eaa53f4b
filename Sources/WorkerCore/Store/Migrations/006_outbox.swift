import PostgresClient

extension Migrations {
    /// 6: rows written from the records outbox. `jobs.seq` is the outbox entry id of the record a
    /// row was last written from (milliseconds · 2²⁰ + sequence): a row is only replaced by a newer
    /// record, so records written twice or out of order never move a row backwards. `audit.record_id`
    /// is the outbox entry an audit row came from, so a row written twice is still stored once.
    static let outbox = Migration(
        version: 6, name: "outbox",
        sql: """
            ALTER TABLE jobs ADD COLUMN IF NOT EXISTS seq bigint;
            ALTER TABLE audit ADD COLUMN IF NOT EXISTS record_id text;
            CREATE UNIQUE INDEX IF NOT EXISTS audit_record_idx ON audit (record_id);
            """)
}
