import PostgresClient

extension Migrations {
    /// 4: the audit trail of control actions: who asked (a socket peer by uid and user name, or
    /// `api` for commands that came through `P:control`), what, on what, when, and how it went.
    /// `control_entry` is the `P:control` entry a command travelled in, so every daemon may record
    /// it and it is still written once.
    static let operations = Migration(
        version: 4, name: "operations",
        sql: """
            CREATE TABLE IF NOT EXISTS audit (
                id            bigserial PRIMARY KEY,
                at            timestamptz NOT NULL DEFAULT now(),
                actor         text NOT NULL,
                peer_uid      integer,
                peer_pid      integer,
                source        text NOT NULL,
                action        text NOT NULL,
                target        text,
                ok            boolean NOT NULL,
                detail        text,
                worker        text,
                control_entry text UNIQUE
            );
            CREATE INDEX IF NOT EXISTS audit_at_idx ON audit (at);
            """)
}
