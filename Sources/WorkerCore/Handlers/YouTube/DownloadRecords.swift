import Foundation
import JSON
import Logging
import PostgresClient

/// The `youtube_downloads` rows (contract section 6): one per download id, upserted at every
/// step, so a row the API created first is updated rather than duplicated. Writes that only
/// follow progress are best effort (a PostgreSQL outage never fails a download); the duplicate
/// and quota look-ups are real queries.
struct DownloadRecords: Sendable {
    let pool: PostgresPool
    let logger: Logger

    /// What a job knows about its download when it starts.
    struct Start: Sendable {
        var id: String
        var userId: String?
        var url: String
        var jobId: String
        var parentId: String?
        var playlistTitle: String?
        var quality: String
        var format: String
    }

    /// A finished file recorded for another download.
    struct Existing: Sendable {
        var id: String
        var path: String
        var size: Int64?
    }

    /// Inserts the row or takes over the API's: status `downloading`, stage `metadata`.
    func begin(_ s: Start) async {
        await write(
            "begin",
            """
            INSERT INTO youtube_downloads (id, user_id, playlist_url, playlist_title, status, job_id, parent_id, url,
                                           quality, format, stage, error, updated_at)
            VALUES ($1, $2, $3, left($4, 500), 'downloading', $5, $6, $3, $7, $8, 'metadata', NULL, now())
            ON CONFLICT (id) DO UPDATE SET
                user_id = COALESCE(youtube_downloads.user_id, EXCLUDED.user_id),
                playlist_url = COALESCE(youtube_downloads.playlist_url, EXCLUDED.playlist_url),
                playlist_title = COALESCE(EXCLUDED.playlist_title, youtube_downloads.playlist_title),
                status = 'downloading', job_id = EXCLUDED.job_id, parent_id = EXCLUDED.parent_id, url = EXCLUDED.url,
                quality = EXCLUDED.quality, format = EXCLUDED.format, stage = 'metadata', error = NULL,
                duplicate = false, updated_at = now()
            """,
            [
                PostgresBind(s.id), PostgresBind(s.userId), PostgresBind(s.url), PostgresBind(s.playlistTitle),
                PostgresBind(s.jobId), PostgresBind(s.parentId), PostgresBind(s.quality), PostgresBind(s.format),
            ])
    }

    /// Records what the metadata said.
    func described(_ id: String, extractor: String, videoId: String?, title: String?, channel: String?, playlistTitle: String?) async {
        await write(
            "describe",
            """
            UPDATE youtube_downloads SET extractor = $2, video_id = $3, title = $4, channel = $5,
                playlist_title = COALESCE(left($6, 500), playlist_title), updated_at = now()
            WHERE id = $1
            """,
            [
                PostgresBind(id), PostgresBind(extractor), PostgresBind(videoId), PostgresBind(title),
                PostgresBind(channel), PostgresBind(playlistTitle),
            ])
    }

    /// Moves the row to a stage (`downloading`, `merging`, `converting`, `thumbnail`, `moving`).
    func stage(_ id: String, _ stage: String) async {
        let status = stage == "downloading" || stage == "metadata" ? "downloading" : "processing"
        await write(
            "stage", "UPDATE youtube_downloads SET status = $2, stage = $3, updated_at = now() WHERE id = $1",
            [PostgresBind(id), PostgresBind(status), PostgresBind(stage)])
    }

    /// The download is in the library.
    func completed(_ id: String, paths: [String], size: Int64?, duplicate: Bool, error: String? = nil) async {
        let json = "[" + paths.map { JSONText.quote($0) }.joined(separator: ",") + "]"
        await write(
            "complete",
            """
            UPDATE youtube_downloads SET status = 'completed', stage = NULL, file_paths = $2::jsonb, file_size = $3,
                duplicate = $4, error = $5, completed_at = now(), updated_at = now()
            WHERE id = $1
            """, [PostgresBind(id), PostgresBind(json), PostgresBind(size), PostgresBind(duplicate), PostgresBind(error)])
    }

    /// The job ended without a file: `failed`, `cancelled`, or `queued` again for a retry.
    func ended(_ id: String, status: String, error: String?) async {
        await write(
            "end",
            """
            UPDATE youtube_downloads SET status = $2, stage = NULL, error = $3, updated_at = now()
            WHERE id = $1 AND status <> 'completed'
            """, [PostgresBind(id), PostgresBind(status), PostgresBind(error)])
    }

    /// Completed downloads of the same video at the same quality and format, newest first.
    func existing(
        extractor: String, videoId: String, quality: String, format: String, except id: String
    ) async throws(PostgresError) -> [Existing] {
        let result = try await pool.query(
            """
            SELECT id::text AS id, file_paths->>0 AS path, file_size FROM youtube_downloads
            WHERE extractor = $1 AND video_id = $2 AND quality = $3 AND format = $4 AND status = 'completed'
              AND id::text <> $5 AND jsonb_typeof(file_paths) = 'array'
            ORDER BY completed_at DESC NULLS LAST LIMIT 5
            """, [PostgresBind(extractor), PostgresBind(videoId), PostgresBind(quality), PostgresBind(format), PostgresBind(id)])
        return result.rows.compactMap { row in
            guard let id = row["id"], let path = row["path"] else { return nil }
            return Existing(id: id, path: path, size: row.optionalInt64("file_size"))
        }
    }

    /// Bytes of the library a user's completed downloads take (duplicates do not count twice).
    func used(by userId: String, except id: String) async throws(PostgresError) -> Int64 {
        let result = try await pool.query(
            """
            SELECT COALESCE(SUM(file_size), 0)::bigint AS used FROM youtube_downloads
            WHERE user_id = $1 AND status = 'completed' AND NOT duplicate AND id::text <> $2
            """, [PostgresBind(userId), PostgresBind(id)])
        return result.first?.optionalInt64("used") ?? 0
    }

    private func write(_ what: String, _ sql: String, _ binds: [PostgresBind]) async {
        do {
            _ = try await pool.queryStoring(sql, binds)
        } catch {
            logger.warning("youtube_downloads row not updated", metadata: ["step": "\(what)", "error": "\(error)"])
        }
    }
}
