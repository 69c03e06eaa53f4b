import PostgresClient

extension Migrations {
    /// 2: `youtube_downloads`, the MediaNest API's table, in the API's shape (UPSTREAM.md section 1)
    /// when it does not exist yet; an existing one is left as it is. The daemon's own columns live in
    /// `worker_downloads` (migration 8). No foreign key to `users`: that table is the API's, and a
    /// daemon running without the API has none.
    static let youtube = Migration(
        version: 2, name: "youtube",
        sql: """
            CREATE TABLE IF NOT EXISTS youtube_downloads (
                id                 text PRIMARY KEY,
                user_id            text NOT NULL,
                playlist_url       text NOT NULL,
                playlist_title     text,
                status             text NOT NULL DEFAULT 'queued',
                file_paths         jsonb,
                plex_collection_id text,
                created_at         timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
                completed_at       timestamp(3)
            );
            """)
}
