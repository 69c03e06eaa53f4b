import PostgresClient

extension Migrations {
    /// 5: the Plex item of a download, beside its collection.
    static let plexRatingKey = Migration(
        version: 5, name: "youtube_downloads.plex_rating_key",
        sql: """
            ALTER TABLE youtube_downloads ADD COLUMN IF NOT EXISTS plex_rating_key text;
            """)
}
