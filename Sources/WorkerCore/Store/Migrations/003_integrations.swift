import PostgresClient

extension Migrations {
    /// 3: the MediaNest API's tables that the integrations write, in the API's shape (UPSTREAM.md
    /// section 1) when they do not exist yet; existing ones are left as they are. What the daemon
    /// keeps beside them (check counts, request errors, errors of jobs without a user) lives in
    /// tables of its own (migration 8).
    ///
    /// - `notifications`: one row per message to a user; `type` is `success`, `error` or `info`;
    ///   `metadata` holds `jobId`, `jobType`, `event` and the job's result or error.
    /// - `error_logs`: one row per failed job of a user; `correlation_id` is the job id.
    /// - `service_status`: one row per checked service, written by `service.health`.
    /// - `media_requests`: Overseerr requests (`pending`, then `submitted` or `failed`).
    static let integrations = Migration(
        version: 3, name: "integrations",
        sql: """
            CREATE TABLE IF NOT EXISTS notifications (
                id          text PRIMARY KEY,
                user_id     text,
                type        text,
                title       text,
                message     text,
                read        boolean,
                created_at  timestamp(3),
                read_at     timestamp(3),
                metadata    jsonb
            );

            CREATE TABLE IF NOT EXISTS error_logs (
                id              text PRIMARY KEY,
                correlation_id  text NOT NULL,
                user_id         text NOT NULL,
                error_code      text NOT NULL,
                error_message   text NOT NULL,
                stack_trace     text,
                request_path    text NOT NULL,
                request_method  text NOT NULL,
                status_code     integer,
                metadata        jsonb,
                created_at      timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
            );

            CREATE TABLE IF NOT EXISTS service_status (
                id                 serial PRIMARY KEY,
                service_name       text NOT NULL UNIQUE,
                status             text,
                response_time_ms   integer,
                last_check_at      timestamp(3),
                uptime_percentage  decimal(5,2)
            );

            CREATE TABLE IF NOT EXISTS media_requests (
                id            text PRIMARY KEY,
                user_id       text NOT NULL,
                title         text NOT NULL,
                media_type    text NOT NULL,
                tmdb_id       text,
                status        text NOT NULL DEFAULT 'pending',
                overseerr_id  text,
                created_at    timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
                completed_at  timestamp(3)
            );
            """)
}
