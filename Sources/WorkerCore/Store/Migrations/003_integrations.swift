import PostgresClient

extension Migrations {
    /// 3: what the outbound integrations record, with the columns the MediaNest API reads.
    ///
    /// - `notifications`: one row per message to a user (terminal events of jobs with a userId,
    ///   Overseerr request outcomes). `type` is `success`, `error` or `info`; `metadata` holds
    ///   `jobId`, `jobType`, `event` and the job's result or error. The API marks rows `read`.
    /// - `error_logs`: one row per failed job; `correlation_id` is the job id, `error_code` is
    ///   `JOB_FAILED`, `error_message` the job's `error` sentence, `stack_trace` the detail for
    ///   admins, `request_path` is `job:<type>` (`request_method` and `status_code` stay empty:
    ///   they are for the API's own HTTP errors); `metadata` has queue, attempt, maxAttempts and
    ///   the payload.
    /// - `service_status`: one row per checked service (`plex`, `overseerr`, `redis`, `postgres`,
    ///   `yt-dlp`, `disk:library`, `disk:temp`), written by `service.health`: `status` is `up`,
    ///   `degraded` or `down`; `uptime_percentage` is over all checks recorded (`checks_total`,
    ///   `checks_up`); `details` holds versions, free bytes and the last error.
    /// - `media_requests`: Overseerr requests. The row (id = the job's `requestId`) is written
    ///   `pending` before Overseerr is called, then `submitted` (with `overseerr_id`) or `failed`
    ///   (with `error`); `cancelled` when the job is cancelled first.
    ///
    /// The API may have made these tables already: they are only created when missing, and the
    /// daemon's own columns are added to them.
    static let integrations = Migration(
        version: 3, name: "integrations",
        sql: """
            CREATE TABLE IF NOT EXISTS notifications (
                id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                user_id     text NOT NULL,
                type        text NOT NULL,
                title       text NOT NULL,
                message     text NOT NULL,
                read        boolean NOT NULL DEFAULT false,
                metadata    jsonb,
                created_at  timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS notifications_user_idx ON notifications (user_id, created_at DESC);
            CREATE INDEX IF NOT EXISTS notifications_unread_idx ON notifications (user_id) WHERE NOT read;

            CREATE TABLE IF NOT EXISTS error_logs (
                id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                correlation_id  text NOT NULL,
                user_id         text,
                error_code      text NOT NULL,
                error_message   text NOT NULL,
                stack_trace     text,
                request_path    text,
                request_method  text,
                status_code     integer,
                metadata        jsonb,
                created_at      timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS error_logs_correlation_idx ON error_logs (correlation_id);
            CREATE INDEX IF NOT EXISTS error_logs_created_idx ON error_logs (created_at DESC);

            CREATE TABLE IF NOT EXISTS service_status (
                id                 serial PRIMARY KEY,
                service_name       text NOT NULL UNIQUE,
                status             text NOT NULL,
                response_time_ms   integer,
                last_check_at      timestamptz NOT NULL DEFAULT now(),
                uptime_percentage  numeric(5,2) NOT NULL DEFAULT 100,
                checks_total       bigint NOT NULL DEFAULT 0,
                checks_up          bigint NOT NULL DEFAULT 0,
                details            jsonb
            );

            CREATE TABLE IF NOT EXISTS media_requests (
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
            CREATE INDEX IF NOT EXISTS media_requests_user_idx ON media_requests (user_id, created_at DESC);

            ALTER TABLE notifications ADD COLUMN IF NOT EXISTS metadata jsonb;
            ALTER TABLE error_logs ADD COLUMN IF NOT EXISTS metadata jsonb;
            ALTER TABLE service_status
                ADD COLUMN IF NOT EXISTS checks_total bigint NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS checks_up    bigint NOT NULL DEFAULT 0,
                ADD COLUMN IF NOT EXISTS details      jsonb;
            ALTER TABLE media_requests
                ADD COLUMN IF NOT EXISTS seasons    jsonb,
                ADD COLUMN IF NOT EXISTS error      text,
                ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
            """)
}
