import PostgresClient

extension Migrations {
    /// 8: the MediaNest API's tables in the API's shape, the daemon's own data in its own tables.
    ///
    /// New tables (the daemon's): `worker_downloads` (every download: stage, job, extractor, video,
    /// files, size, duplicate, error, Plex ids), `worker_errors` (every failed job, with or without a
    /// user), `worker_service_checks` and `worker_service_history` (check counts, details, uptime),
    /// `worker_media_requests` (every Overseerr request the daemon handled, with seasons and error).
    ///
    /// Installs that ran the earlier migrations have the daemon's columns inside the API's tables
    /// (and, where the daemon created a table, its types: uuid ids, timestamptz). For each shared
    /// table that carries a column only the daemon ever added (`youtube_downloads.stage`,
    /// `service_status.checks_total`, `media_requests.seasons`, an `error_logs`/`notifications` id
    /// defaulting to gen_random_uuid()), this copies the daemon's data into its own table, turns
    /// `file_paths` arrays into the API's object, `processing` into `downloading`, rows the API's
    /// table cannot hold (no user, no title) into the daemon's table only, converts the types to the
    /// API's (text ids, timestamp(3) in UTC) and drops the daemon's columns. A table without such a
    /// column (the API's own) is never altered.
    static let sharedTables = Migration(
        version: 8, name: "shared tables in the API's shape",
        sql: """
            CREATE TABLE IF NOT EXISTS worker_downloads (
                id                 text PRIMARY KEY,
                user_id            text,
                url                text,
                playlist_title     text,
                status             text NOT NULL DEFAULT 'queued',
                stage              text,
                job_id             text,
                parent_id          text,
                extractor          text,
                video_id           text,
                title              text,
                channel            text,
                quality            text,
                format             text,
                files              jsonb,
                file_size          bigint,
                duration           double precision,
                duplicate          boolean NOT NULL DEFAULT false,
                error              text,
                plex_rating_key    text,
                plex_collection_id text,
                created_at         timestamptz NOT NULL DEFAULT now(),
                completed_at       timestamptz,
                updated_at         timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS worker_downloads_video_idx
                ON worker_downloads (extractor, video_id, quality, format) WHERE status = 'completed';
            CREATE INDEX IF NOT EXISTS worker_downloads_user_idx ON worker_downloads (user_id);
            CREATE INDEX IF NOT EXISTS worker_downloads_job_idx ON worker_downloads (job_id);
            CREATE INDEX IF NOT EXISTS worker_downloads_parent_idx ON worker_downloads (parent_id) WHERE parent_id IS NOT NULL;

            CREATE TABLE IF NOT EXISTS worker_errors (
                id              text PRIMARY KEY,
                correlation_id  text NOT NULL,
                user_id         text,
                job_type        text,
                error_message   text NOT NULL,
                stack_trace     text,
                metadata        jsonb,
                created_at      timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS worker_errors_created_idx ON worker_errors (created_at);

            CREATE TABLE IF NOT EXISTS worker_service_checks (
                service_name      text PRIMARY KEY,
                status            text NOT NULL,
                response_time_ms  integer,
                checks_total      bigint NOT NULL DEFAULT 0,
                checks_up         bigint NOT NULL DEFAULT 0,
                details           jsonb,
                checked_at        timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE IF NOT EXISTS worker_service_history (
                service_name  text NOT NULL,
                checked_at    timestamptz NOT NULL DEFAULT now(),
                up            boolean NOT NULL
            );
            CREATE INDEX IF NOT EXISTS worker_service_history_idx ON worker_service_history (service_name, checked_at);

            CREATE TABLE IF NOT EXISTS worker_media_requests (
                id            text PRIMARY KEY,
                user_id       text,
                title         text,
                media_type    text NOT NULL,
                tmdb_id       integer NOT NULL,
                seasons       jsonb,
                status        text NOT NULL DEFAULT 'pending',
                overseerr_id  text,
                error         text,
                created_at    timestamptz NOT NULL DEFAULT now(),
                updated_at    timestamptz NOT NULL DEFAULT now(),
                completed_at  timestamptz
            );

            DO $migration$
            DECLARE
                has_column boolean;
            BEGIN
                -- youtube_downloads: the daemon's columns (marked by `stage`) move to worker_downloads.
                SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'youtube_downloads' AND column_name = 'stage') INTO has_column;
                IF has_column THEN
                    INSERT INTO worker_downloads (id, user_id, url, playlist_title, status, stage, job_id, parent_id, extractor,
                                                  video_id, title, channel, quality, format, files, file_size, duplicate, error,
                                                  plex_rating_key, plex_collection_id, created_at, completed_at, updated_at)
                    SELECT d.id::text, d.user_id, COALESCE(d.url, d.playlist_url), d.playlist_title, d.status, d.stage, d.job_id,
                           d.parent_id, d.extractor, d.video_id, d.title, d.channel, d.quality, d.format,
                           CASE WHEN jsonb_typeof(d.file_paths::jsonb) = 'array' THEN d.file_paths::jsonb END,
                           d.file_size, d.duplicate, d.error, d.plex_rating_key, d.plex_collection_id,
                           d.created_at, d.completed_at, d.updated_at
                    FROM youtube_downloads d
                    ON CONFLICT (id) DO NOTHING;

                    UPDATE youtube_downloads SET status = 'downloading' WHERE status = 'processing';
                    UPDATE youtube_downloads d SET file_paths =
                        jsonb_strip_nulls(jsonb_build_object(
                            'jobId', d.job_id,
                            'files', (SELECT jsonb_agg(jsonb_build_object('path', p, 'size', CASE WHEN n = 1 THEN d.file_size END,
                                                                            'filename', regexp_replace(p, '^.*/', '')))
                                      FROM jsonb_array_elements_text(d.file_paths::jsonb) WITH ORDINALITY AS f(p, n)),
                            'totalSize', d.file_size, 'quality', d.quality, 'format', d.format, 'error', d.error))
                    WHERE jsonb_typeof(d.file_paths::jsonb) = 'array';
                    UPDATE youtube_downloads d SET file_paths = jsonb_strip_nulls(jsonb_build_object('jobId', d.job_id, 'error', d.error))
                    WHERE d.file_paths IS NULL AND (d.job_id IS NOT NULL OR d.error IS NOT NULL);
                    DELETE FROM youtube_downloads WHERE user_id IS NULL;

                    ALTER TABLE youtube_downloads
                        DROP COLUMN IF EXISTS job_id, DROP COLUMN IF EXISTS parent_id, DROP COLUMN IF EXISTS url,
                        DROP COLUMN IF EXISTS extractor, DROP COLUMN IF EXISTS video_id, DROP COLUMN IF EXISTS title,
                        DROP COLUMN IF EXISTS channel, DROP COLUMN IF EXISTS quality, DROP COLUMN IF EXISTS format,
                        DROP COLUMN IF EXISTS stage, DROP COLUMN IF EXISTS file_size, DROP COLUMN IF EXISTS duplicate,
                        DROP COLUMN IF EXISTS error, DROP COLUMN IF EXISTS updated_at, DROP COLUMN IF EXISTS plex_rating_key;
                    DROP INDEX IF EXISTS youtube_downloads_user_idx;
                    ALTER TABLE youtube_downloads
                        ALTER COLUMN id TYPE text USING id::text,
                        ALTER COLUMN user_id SET NOT NULL,
                        ALTER COLUMN playlist_title TYPE text,
                        ALTER COLUMN file_paths TYPE jsonb USING file_paths::jsonb,
                        ALTER COLUMN created_at TYPE timestamp(3) USING created_at AT TIME ZONE 'UTC',
                        ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP,
                        ALTER COLUMN completed_at TYPE timestamp(3) USING completed_at AT TIME ZONE 'UTC';
                END IF;

                -- notifications made by the daemon: uuid ids with a default, timestamptz, no read_at.
                SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'notifications' AND column_name = 'id'
                               AND column_default LIKE 'gen_random_uuid%') INTO has_column;
                IF has_column THEN
                    ALTER TABLE notifications
                        ALTER COLUMN id DROP DEFAULT,
                        ALTER COLUMN id TYPE text USING id::text,
                        ALTER COLUMN user_id DROP NOT NULL,
                        ALTER COLUMN type DROP NOT NULL,
                        ALTER COLUMN title DROP NOT NULL,
                        ALTER COLUMN message DROP NOT NULL,
                        ALTER COLUMN read DROP NOT NULL,
                        ALTER COLUMN read DROP DEFAULT,
                        ALTER COLUMN created_at DROP NOT NULL,
                        ALTER COLUMN created_at DROP DEFAULT,
                        ALTER COLUMN created_at TYPE timestamp(3) USING created_at AT TIME ZONE 'UTC',
                        ADD COLUMN IF NOT EXISTS read_at timestamp(3);
                    DROP INDEX IF EXISTS notifications_user_idx;
                    DROP INDEX IF EXISTS notifications_unread_idx;
                END IF;

                -- error_logs made by the daemon: every row to worker_errors; rows without a user stay there only.
                SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'error_logs' AND column_name = 'id'
                               AND column_default LIKE 'gen_random_uuid%') INTO has_column;
                IF has_column THEN
                    INSERT INTO worker_errors (id, correlation_id, user_id, job_type, error_message, stack_trace, metadata, created_at)
                    SELECT e.id::text, e.correlation_id, e.user_id, regexp_replace(COALESCE(e.request_path, ''), '^job:', ''),
                           e.error_message, e.stack_trace, e.metadata, e.created_at
                    FROM error_logs e ON CONFLICT (id) DO NOTHING;
                    DELETE FROM error_logs WHERE user_id IS NULL;
                    UPDATE error_logs SET request_method = 'JOB' WHERE request_method IS NULL;
                    UPDATE error_logs SET request_path = 'job' WHERE request_path IS NULL;
                    DROP INDEX IF EXISTS error_logs_correlation_idx;
                    DROP INDEX IF EXISTS error_logs_created_idx;
                    ALTER TABLE error_logs
                        ALTER COLUMN id DROP DEFAULT,
                        ALTER COLUMN id TYPE text USING id::text,
                        ALTER COLUMN user_id SET NOT NULL,
                        ALTER COLUMN request_path SET NOT NULL,
                        ALTER COLUMN request_method SET NOT NULL,
                        ALTER COLUMN created_at TYPE timestamp(3) USING created_at AT TIME ZONE 'UTC',
                        ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP;
                END IF;

                -- service_status: counts and details to worker_service_checks.
                SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'service_status' AND column_name = 'checks_total') INTO has_column;
                IF has_column THEN
                    INSERT INTO worker_service_checks (service_name, status, response_time_ms, checks_total, checks_up, details, checked_at)
                    SELECT s.service_name, COALESCE(s.status, 'down'), s.response_time_ms, s.checks_total, s.checks_up, s.details,
                           COALESCE(s.last_check_at::timestamptz, now())
                    FROM service_status s ON CONFLICT (service_name) DO NOTHING;
                    ALTER TABLE service_status
                        DROP COLUMN IF EXISTS checks_total, DROP COLUMN IF EXISTS checks_up, DROP COLUMN IF EXISTS details,
                        ALTER COLUMN status DROP NOT NULL,
                        ALTER COLUMN last_check_at DROP NOT NULL,
                        ALTER COLUMN last_check_at DROP DEFAULT,
                        ALTER COLUMN last_check_at TYPE timestamp(3) USING last_check_at AT TIME ZONE 'UTC',
                        ALTER COLUMN uptime_percentage DROP NOT NULL,
                        ALTER COLUMN uptime_percentage DROP DEFAULT;
                END IF;

                -- media_requests: the daemon's columns (marked by `seasons`) to worker_media_requests.
                SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                               AND table_name = 'media_requests' AND column_name = 'seasons') INTO has_column;
                IF has_column THEN
                    INSERT INTO worker_media_requests (id, user_id, title, media_type, tmdb_id, seasons, status, overseerr_id, error,
                                                       created_at, updated_at, completed_at)
                    SELECT m.id, m.user_id, m.title, m.media_type,
                           CASE WHEN m.tmdb_id::text ~ '^[0-9]{1,9}$' THEN m.tmdb_id::text::integer ELSE 0 END,
                           m.seasons, m.status, m.overseerr_id, m.error, m.created_at, m.updated_at, m.completed_at
                    FROM media_requests m ON CONFLICT (id) DO NOTHING;
                    DELETE FROM media_requests WHERE user_id IS NULL OR title IS NULL;
                    DROP INDEX IF EXISTS media_requests_user_idx;
                    ALTER TABLE media_requests
                        DROP COLUMN IF EXISTS seasons, DROP COLUMN IF EXISTS error, DROP COLUMN IF EXISTS updated_at,
                        ALTER COLUMN user_id SET NOT NULL,
                        ALTER COLUMN title SET NOT NULL,
                        ALTER COLUMN tmdb_id DROP NOT NULL,
                        ALTER COLUMN tmdb_id TYPE text USING tmdb_id::text,
                        ALTER COLUMN created_at TYPE timestamp(3) USING created_at AT TIME ZONE 'UTC',
                        ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP,
                        ALTER COLUMN completed_at TYPE timestamp(3) USING completed_at AT TIME ZONE 'UTC';
                END IF;
            END
            $migration$;
            """)
}
