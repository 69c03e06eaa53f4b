import PostgresClient

extension Migrations {
    /// 9: subscriptions (contract section 12). `subscriptions` is written by the API, by
    /// `ctl sub` and by jobs.yml (`defined_in` = 'jobs.yml' for those, so one removed from the file
    /// is disabled); `subscription_items` holds every entry a check has seen, with what became of it.
    /// Besides the contract's columns an item keeps what retention needs to remove exactly the
    /// files its download wrote: the sidecars, the size at download, whether the file was another
    /// download's (a duplicate) and why it was skipped, failed or removed.
    static let subscriptions = Migration(
        version: 9, name: "subscriptions",
        sql: """
            CREATE TABLE IF NOT EXISTS subscriptions (
                id               text PRIMARY KEY,
                name             text NOT NULL UNIQUE,
                url              text NOT NULL,
                user_id          text,
                quality          text,
                format           text,
                output           text,
                collection       text,
                check_every      integer NOT NULL DEFAULT 21600,
                backfill         integer NOT NULL DEFAULT 10,
                keep_last        integer,
                max_age          bigint,
                enabled          boolean NOT NULL DEFAULT true,
                last_checked_at  timestamptz,
                last_error       text,
                created_at       timestamptz NOT NULL DEFAULT now(),
                defined_in       text,
                updated_at       timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE IF NOT EXISTS subscription_items (
                subscription_id  text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
                video_key        text NOT NULL,
                url              text,
                title            text,
                published_at     timestamptz,
                job_id           text,
                download_id      text,
                state            text NOT NULL DEFAULT 'queued',
                path             text,
                sidecars         jsonb NOT NULL DEFAULT '[]'::jsonb,
                size             bigint,
                duplicate        boolean NOT NULL DEFAULT false,
                reason           text,
                protected        boolean NOT NULL DEFAULT false,
                first_seen_at    timestamptz NOT NULL DEFAULT now(),
                updated_at       timestamptz NOT NULL DEFAULT now(),
                UNIQUE (subscription_id, video_key)
            );
            CREATE INDEX IF NOT EXISTS subscription_items_job_idx ON subscription_items (job_id);
            CREATE INDEX IF NOT EXISTS subscription_items_state_idx ON subscription_items (subscription_id, state);
            """)
}
