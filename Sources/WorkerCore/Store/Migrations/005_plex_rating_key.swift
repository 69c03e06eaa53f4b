import PostgresClient

extension Migrations {
    /// 5: once the Plex item of a download as a column of `youtube_downloads`; the rating key now
    /// lives in `worker_downloads` (migration 8), so a new install has nothing to do here.
    static let plexRatingKey = Migration(version: 5, name: "youtube_downloads.plex_rating_key", sql: "SELECT 1;")
}
