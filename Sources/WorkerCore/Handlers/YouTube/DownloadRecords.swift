import Foundation
import JSON
import Logging
import PostgresClient

/// The rows of a download (contract section 6).
///
/// `worker_downloads` is the daemon's own record, upserted at every step: stage, job, extractor,
/// video, files, size, duplicate, error and Plex ids — what `ctl`, cleanup, duplicates and quotas
/// read. `youtube_downloads` is the MediaNest API's row, written in the API's vocabulary and shape:
/// status `queued` · `downloading` · `completed` · `failed` · `cancelled` (every working stage is
/// `downloading`), `file_paths` the object {jobId, files [{path, size, filename}], totalSize,
/// quality, format, duration, error} merged into what the API stored (its `jobId` is kept),
/// timestamps in UTC. The API's row is updated when it exists and inserted only when every NOT NULL
/// column can be filled (a job without a `userId` has no row there; a user the API's `users` table
/// does not know is refused by its foreign key and the download lives in `worker_downloads` only).
/// A playlist's entries get no row of their own there: the API knows the playlist's row, which
/// lists every entry's file when the playlist completes.
/// Writes that only follow progress are best effort (a PostgreSQL outage never fails a download);
/// the duplicate and quota look-ups are real queries.
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

    /// The status the API's table gets for one of the daemon's (`processing` stages are `downloading` there).
    static func sharedStatus(_ status: String) -> String {
        switch status {
        case "queued", "downloading", "completed", "failed", "cancelled": status
        default: "downloading"
        }
    }

    /// `file_paths` of the API's row merged with `fields`, keeping the `jobId` it has (else `jobId`).
    static let mergedFilePaths = """
        (CASE WHEN jsonb_typeof(youtube_downloads.file_paths) = 'object' THEN youtube_downloads.file_paths ELSE '{}'::jsonb END)
            || $FIELDS
            || jsonb_build_object('jobId', COALESCE(youtube_downloads.file_paths -> 'jobId', to_jsonb($JOB::text)))
        """

    /// Inserts the rows or takes over the API's: status `downloading`, stage `metadata`.
    func begin(_ s: Start) async {
        await write(
            "begin",
            """
            INSERT INTO worker_downloads (id, user_id, url, playlist_title, status, job_id, parent_id, quality, format, stage,
                                          error, updated_at)
            VALUES ($1, $2, $3, left($4, 500), 'downloading', $5, $6, $7, $8, 'metadata', NULL, now())
            ON CONFLICT (id) DO UPDATE SET
                user_id = COALESCE(worker_downloads.user_id, EXCLUDED.user_id),
                playlist_title = COALESCE(EXCLUDED.playlist_title, worker_downloads.playlist_title),
                status = 'downloading', job_id = EXCLUDED.job_id, parent_id = EXCLUDED.parent_id, url = EXCLUDED.url,
                quality = EXCLUDED.quality, format = EXCLUDED.format, stage = 'metadata', error = NULL,
                duplicate = false, updated_at = now()
            """,
            [
                PostgresBind(s.id), PostgresBind(s.userId), PostgresBind(s.url), PostgresBind(s.playlistTitle),
                PostgresBind(s.jobId), PostgresBind(s.parentId), PostgresBind(s.quality), PostgresBind(s.format),
            ])
        await shared(
            "begin",
            """
            WITH updated AS (
                UPDATE youtube_downloads SET status = 'downloading',
                    playlist_title = COALESCE(left($4, 500), youtube_downloads.playlist_title),
                    file_paths = \(Self.mergedFilePaths.replacingOccurrences(of: "$FIELDS", with: "'{}'::jsonb").replacingOccurrences(of: "$JOB", with: "$5"))
                WHERE id = $1 RETURNING 1
            )
            INSERT INTO youtube_downloads (id, user_id, playlist_url, playlist_title, status, file_paths, created_at)
            SELECT $1, $2, $3, left($4, 500), 'downloading', jsonb_build_object('jobId', $5::text), now()
            WHERE $2::text IS NOT NULL AND $6::text IS NULL AND NOT EXISTS (SELECT 1 FROM updated)
            ON CONFLICT (id) DO NOTHING
            """,
            [
                PostgresBind(s.id), PostgresBind(s.userId), PostgresBind(s.url), PostgresBind(s.playlistTitle), PostgresBind(s.jobId),
                PostgresBind(s.parentId),
            ])
    }

    /// Records what the metadata said.
    func described(
        _ id: String, extractor: String, videoId: String?, title: String?, channel: String?, playlistTitle: String?,
        duration: Double? = nil
    ) async {
        await write(
            "describe",
            """
            UPDATE worker_downloads SET extractor = $2, video_id = $3, title = $4, channel = $5,
                playlist_title = COALESCE(left($6, 500), playlist_title), duration = COALESCE($7, duration), updated_at = now()
            WHERE id = $1
            """,
            [
                PostgresBind(id), PostgresBind(extractor), PostgresBind(videoId), PostgresBind(title),
                PostgresBind(channel), PostgresBind(playlistTitle), PostgresBind(duration),
            ])
        guard let playlistTitle else { return }
        await shared(
            "describe", "UPDATE youtube_downloads SET playlist_title = left($2, 500) WHERE id = $1",
            [PostgresBind(id), PostgresBind(playlistTitle)])
    }

    /// Moves the row to a stage (`downloading`, `merging`, `converting`, `thumbnail`, `moving`):
    /// the daemon's row says `processing` past the download; the API's stays `downloading`.
    func stage(_ id: String, _ stage: String) async {
        let status = stage == "downloading" || stage == "metadata" ? "downloading" : "processing"
        await write(
            "stage", "UPDATE worker_downloads SET status = $2, stage = $3, updated_at = now() WHERE id = $1",
            [PostgresBind(id), PostgresBind(status), PostgresBind(stage)])
    }

    /// The download is in the library.
    func completed(_ id: String, paths: [String], size: Int64?, duplicate: Bool, error: String? = nil, duration: Double? = nil) async {
        let json = "[" + paths.map { JSONText.quote($0) }.joined(separator: ",") + "]"
        await write(
            "complete",
            """
            UPDATE worker_downloads SET status = 'completed', stage = NULL, files = $2::jsonb, file_size = $3,
                duplicate = $4, error = $5, duration = COALESCE($6, duration), completed_at = now(), updated_at = now()
            WHERE id = $1
            """,
            [PostgresBind(id), PostgresBind(json), PostgresBind(size), PostgresBind(duplicate), PostgresBind(error), PostgresBind(duration)])
        let files = Self.files(paths)
        // A new result replaces an earlier attempt's error; the API's jobId stays.
        await shared(
            "complete",
            """
            UPDATE youtube_downloads SET status = 'completed', completed_at = now(),
                file_paths = ((CASE WHEN jsonb_typeof(youtube_downloads.file_paths) = 'object' THEN youtube_downloads.file_paths
                                    ELSE '{}'::jsonb END) - 'error')
                    || jsonb_strip_nulls(jsonb_build_object('files', $2::jsonb, 'totalSize', $3::bigint, 'quality', w.quality,
                                                            'format', w.format, 'duration', COALESCE($5::float8, w.duration),
                                                            'error', $4::text))
                    || jsonb_build_object('jobId', COALESCE(youtube_downloads.file_paths -> 'jobId', to_jsonb(w.job_id)))
            FROM (SELECT quality, format, duration, job_id FROM worker_downloads WHERE id = $1
                  UNION ALL SELECT NULL, NULL, NULL, NULL LIMIT 1) w
            WHERE youtube_downloads.id = $1
            """, [PostgresBind(id), PostgresBind(files.json), PostgresBind(files.total), PostgresBind(error), PostgresBind(duration)])
    }

    /// The job ended without a file: `failed`, `cancelled`, or `queued` again for a retry.
    func ended(_ id: String, status: String, error: String?) async {
        await write(
            "end",
            """
            UPDATE worker_downloads SET status = $2, stage = NULL, error = $3, updated_at = now()
            WHERE id = $1 AND status <> 'completed'
            """, [PostgresBind(id), PostgresBind(status), PostgresBind(error)])
        await shared(
            "end",
            """
            UPDATE youtube_downloads SET status = $2,
                file_paths = \(Self.mergedFilePaths.replacingOccurrences(of: "$FIELDS", with: "jsonb_build_object('error', $3::text)").replacingOccurrences(of: "$JOB", with: "(SELECT job_id FROM worker_downloads WHERE id = $1)"))
            WHERE id = $1 AND status <> 'completed'
            """, [PostgresBind(id), PostgresBind(Self.sharedStatus(status)), PostgresBind(error)])
    }

    /// The Plex item and collection of a download; the API's row gets the collection.
    func plexIDs(_ id: String, ratingKey: String, collection: String?) async {
        await write(
            "plex",
            "UPDATE worker_downloads SET plex_rating_key = $2, plex_collection_id = COALESCE($3, plex_collection_id), updated_at = now() WHERE id = $1",
            [PostgresBind(id), PostgresBind(ratingKey), PostgresBind(collection)])
        guard let collection else { return }
        await shared("plex", "UPDATE youtube_downloads SET plex_collection_id = $2 WHERE id = $1", [PostgresBind(id), PostgresBind(collection)])
    }

    /// The `files` array of `file_paths` ([{path, size, filename}]) and their total size, read from disk.
    static func files(_ paths: [String]) -> (json: String, total: Int64?) {
        var total: Int64 = 0
        var entries: [String] = []
        for path in paths {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
            total += size ?? 0
            entries.append(
                "{\"path\":\(JSONText.quote(path)),\"size\":\(size.map(String.init) ?? "null"),\"filename\":\(JSONText.quote((path as NSString).lastPathComponent))}")
        }
        return ("[" + entries.joined(separator: ",") + "]", paths.isEmpty ? nil : total)
    }

    /// Completed downloads of the same video at the same quality and format, newest first.
    func existing(
        extractor: String, videoId: String, quality: String, format: String, except id: String
    ) async throws(PostgresError) -> [Existing] {
        let result = try await pool.query(
            """
            SELECT id, files->>0 AS path, file_size FROM worker_downloads
            WHERE extractor = $1 AND video_id = $2 AND quality = $3 AND format = $4 AND status = 'completed'
              AND id <> $5 AND jsonb_typeof(files) = 'array'
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
            SELECT COALESCE(SUM(file_size), 0)::bigint AS used FROM worker_downloads
            WHERE user_id = $1 AND status = 'completed' AND NOT duplicate AND id <> $2
            """, [PostgresBind(userId), PostgresBind(id)])
        return result.first?.optionalInt64("used") ?? 0
    }

    private func write(_ what: String, _ sql: String, _ binds: [PostgresBind]) async {
        do {
            _ = try await pool.queryStoring(sql, binds)
        } catch {
            logger.warning("worker_downloads row not updated", metadata: ["step": "\(what)", "error": "\(error)"])
        }
    }

    /// A write to the API's row: best effort; a row its table refuses (a user its `users` does not
    /// know: SQLSTATE 23503) is the daemon's only, said once at debug level.
    private func shared(_ what: String, _ sql: String, _ binds: [PostgresBind]) async {
        do {
            _ = try await pool.queryStoring(sql, binds)
        } catch {
            if case .query(_, "23503"?, _) = error {
                logger.debug("download kept in worker_downloads only", metadata: ["step": "\(what)", "error": "\(error)"])
            } else {
                logger.warning("youtube_downloads row not updated", metadata: ["step": "\(what)", "error": "\(error)"])
            }
        }
    }
}
