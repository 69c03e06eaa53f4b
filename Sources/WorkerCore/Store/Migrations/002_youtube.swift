import PostgresClient

extension Migrations {
    /// 2: `youtube_downloads`, the table the MediaNest API reads (`id`, `user_id`, `playlist_url`,
    /// `playlist_title`, `status`, `file_paths`, `plex_collection_id`, `created_at`, `completed_at`),
    /// plus the daemon's own columns. The API may have created the table already (with text ids,
    /// say): the table is only created when missing and the daemon's columns are added to it.
    static let youtube = Migration(
        version: 2, name: "youtube",
        sql: """
            CREATE TABLE IF NOT EXISTS youtube_downloads (
                id                 uuid PRIMARY KEY,
                user_id            text,
                playlist_url       text NOT NULL,
                playlist_title     varchar(500),
                status             text NOT NULL DEFAULT 'queued',
                file_paths         jsonb,
                plex_collection_id text,
                created_at         timestamptz NOT NULL DEFAULT now(),
                completed_at       timestamptz
            );
            ALTER TABLE youtube_downloads
                ADD COLUMN IF NOT EXISTS job_id     text,
                ADD COLUMN IF NOT EXISTS parent_id  text,
                ADD COLUMN IF NOT EXISTS url        text,
                ADD COLUMN IF NOT EXISTS extractor  text,
                ADD COLUMN IF NOT EXISTS video_id   text,
                ADD COLUMN IF NOT EXISTS title      text,
                ADD COLUMN IF NOT EXISTS channel    text,
                ADD COLUMN IF NOT EXISTS quality    text,
                ADD COLUMN IF NOT EXISTS format     text,
                ADD COLUMN IF NOT EXISTS stage      text,
                ADD COLUMN IF NOT EXISTS file_size  bigint,
                ADD COLUMN IF NOT EXISTS duplicate  boolean NOT NULL DEFAULT false,
                ADD COLUMN IF NOT EXISTS error      text,
                ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
            CREATE INDEX IF NOT EXISTS youtube_downloads_video_idx
                ON youtube_downloads (extractor, video_id, quality, format) WHERE status = 'completed';
            CREATE INDEX IF NOT EXISTS youtube_downloads_user_idx ON youtube_downloads (user_id);
            CREATE INDEX IF NOT EXISTS youtube_downloads_job_idx ON youtube_downloads (job_id);
            """)
}
