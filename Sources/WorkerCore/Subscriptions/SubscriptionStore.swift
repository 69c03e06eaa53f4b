import Foundation
import JSON
import PostgresClient
import WorkerConfig

/// The `subscriptions` and `subscription_items` tables (migration 9): every statement of the
/// subscription checks, retention, the item observer and `ctl sub`.
package struct SubscriptionStore: Sendable {
    let pool: PostgresPool

    package init(pool: PostgresPool) { self.pool = pool }

    /// The value jobs.yml's subscriptions carry in `defined_in`.
    static let fileOrigin = "jobs.yml"

    static let columns = """
        id, name, url, user_id, quality, format, output, collection, check_every, backfill, keep_last, max_age, enabled,
        to_char(last_checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS last_checked_at, last_error, defined_in
        """

    static func subscription(_ row: PostgresRow) throws -> Subscription {
        Subscription(
            id: try row.string("id"), name: try row.string("name"), url: try row.string("url"), userId: row.optionalString("user_id"),
            quality: row.optionalString("quality"), format: row.optionalString("format"), output: row.optionalString("output"),
            collection: row.optionalString("collection"), checkEvery: try row.int("check_every"), backfill: try row.int("backfill"),
            keepLast: row.optionalInt("keep_last"), maxAge: row.optionalInt("max_age"), enabled: try row.bool("enabled"),
            lastCheckedAt: row.optionalString("last_checked_at"), lastError: row.optionalString("last_error"),
            definedIn: row.optionalString("defined_in"))
    }

    // MARK: subscriptions

    /// Every subscription, by name.
    package func all() async throws -> [Subscription] {
        try await pool.query("SELECT \(Self.columns) FROM subscriptions ORDER BY name").rows.map(Self.subscription)
    }

    /// The enabled ones, for the leader's ticks.
    func enabled() async throws -> [Subscription] {
        try await pool.query("SELECT \(Self.columns) FROM subscriptions WHERE enabled ORDER BY id").rows.map(Self.subscription)
    }

    /// A subscription by id or by name.
    package func find(_ reference: String) async throws -> Subscription? {
        try await pool.query(
            "SELECT \(Self.columns) FROM subscriptions WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1",
            [PostgresBind(reference)]
        ).rows.first.map(Self.subscription)
    }

    /// Item counts by state, per subscription id.
    package func itemCounts() async throws -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for row in try await pool.query("SELECT subscription_id, state, count(*) AS n FROM subscription_items GROUP BY 1, 2").rows {
            out[try row.string("subscription_id"), default: [:]][try row.string("state")] = try row.int("n")
        }
        return out
    }

    /// Adds one (`ctl sub add`); nil when the name is taken.
    package func add(_ s: SubscriptionSettings, id: String) async throws -> Subscription? {
        try await pool.queryStoring(
            """
            INSERT INTO subscriptions (id, name, url, user_id, quality, format, output, collection, check_every, backfill,
                                       keep_last, max_age, enabled)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (name) DO NOTHING
            RETURNING \(Self.columns)
            """, Self.binds(s, id: id)
        ).rows.first.map(Self.subscription)
    }

    static func binds(_ s: SubscriptionSettings, id: String) -> [PostgresBind] {
        [
            PostgresBind(id), PostgresBind(s.name), PostgresBind(s.url), PostgresBind(s.userId), PostgresBind(s.quality),
            PostgresBind(s.format), PostgresBind(s.output), PostgresBind(s.collection), PostgresBind(s.checkEvery),
            PostgresBind(s.backfill), PostgresBind(s.keepLast), PostgresBind(s.maxAge), PostgresBind(s.enabled),
        ]
    }

    /// Upserts jobs.yml's subscriptions by name and disables those of the file that are gone from
    /// it (their items and files stay). Returns the names created, updated and disabled.
    func syncFile(_ subscriptions: [SubscriptionSettings]) async throws -> (created: [String], updated: [String], disabled: [String]) {
        var created: [String] = []
        var updated: [String] = []
        for s in subscriptions {
            let row = try await pool.queryStoring(
                """
                INSERT INTO subscriptions (id, name, url, user_id, quality, format, output, collection, check_every, backfill,
                                           keep_last, max_age, enabled, defined_in)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '\(Self.fileOrigin)')
                ON CONFLICT (name) DO UPDATE SET
                    url = EXCLUDED.url, user_id = EXCLUDED.user_id, quality = EXCLUDED.quality, format = EXCLUDED.format,
                    output = EXCLUDED.output, collection = EXCLUDED.collection, check_every = EXCLUDED.check_every,
                    backfill = EXCLUDED.backfill, keep_last = EXCLUDED.keep_last, max_age = EXCLUDED.max_age,
                    enabled = EXCLUDED.enabled, defined_in = EXCLUDED.defined_in, updated_at = now()
                WHERE (subscriptions.url, subscriptions.user_id, subscriptions.quality, subscriptions.format, subscriptions.output,
                       subscriptions.collection, subscriptions.check_every, subscriptions.backfill, subscriptions.keep_last,
                       subscriptions.max_age, subscriptions.enabled, subscriptions.defined_in)
                      IS DISTINCT FROM
                      (EXCLUDED.url, EXCLUDED.user_id, EXCLUDED.quality, EXCLUDED.format, EXCLUDED.output, EXCLUDED.collection,
                       EXCLUDED.check_every, EXCLUDED.backfill, EXCLUDED.keep_last, EXCLUDED.max_age, EXCLUDED.enabled,
                       EXCLUDED.defined_in)
                RETURNING (xmax = 0) AS inserted
                """, Self.binds(s, id: DerivedID.uuid("subscription:" + s.name))
            ).rows.first
            if let row {
                if try row.bool("inserted") { created.append(s.name) } else { updated.append(s.name) }
            }
        }
        let disabled = try await pool.query(
            """
            UPDATE subscriptions SET enabled = false, updated_at = now()
            WHERE defined_in = '\(Self.fileOrigin)' AND enabled AND NOT (name = ANY($1::text[]))
            RETURNING name
            """, [PostgresBind(array: subscriptions.map(\.name))]
        ).rows.compactMap { $0.optionalString("name") }
        return (created, updated, disabled)
    }

    /// Deletes a subscription and its items (never their files). False when there was none.
    package func remove(id: String) async throws -> Bool {
        try await pool.query("DELETE FROM subscriptions WHERE id = $1", [PostgresBind(id)]).affectedRows > 0
    }

    /// Records a check's end: its time and its error (nil clears it).
    func checked(id: String, error: String?) async throws {
        _ = try await pool.queryStoring(
            "UPDATE subscriptions SET last_checked_at = now(), last_error = $2, updated_at = now() WHERE id = $1",
            [PostgresBind(id), PostgresBind(error.map { String($0.prefix(2000)) })])
    }

    // MARK: items

    static let itemColumns = """
        video_key, state, reason, title, extract(epoch FROM published_at)::float8 AS published,
        extract(epoch FROM first_seen_at)::float8 AS first_seen, protected, path, sidecars::text AS sidecars, size, duplicate, job_id
        """

    static func item(_ row: PostgresRow) throws -> SubscriptionItem {
        let sidecars: [String]
        if case .array(let list)? = row.optionalString("sidecars").flatMap(JSONValue.parse) {
            sidecars = list.compactMap(\.stringValue)
        } else {
            sidecars = []
        }
        return SubscriptionItem(
            videoKey: try row.string("video_key"), state: SubscriptionItemState(rawValue: try row.string("state")) ?? .failed,
            reason: row.optionalString("reason"), title: row.optionalString("title"), publishedAt: row.optionalDouble("published"),
            firstSeenAt: try row.double("first_seen"), protected: try row.bool("protected"), path: row.optionalString("path"),
            sidecars: sidecars, size: row.optionalInt64("size"), duplicate: try row.bool("duplicate"), jobId: row.optionalString("job_id"))
    }

    /// A subscription's items, newest first.
    package func items(of id: String, states: [SubscriptionItemState]? = nil) async throws -> [SubscriptionItem] {
        let filter = states.map { list in "AND state IN (\(list.map { "'\($0.rawValue)'" }.joined(separator: ",")))" } ?? ""
        return try await pool.query(
            """
            SELECT \(Self.itemColumns) FROM subscription_items WHERE subscription_id = $1 \(filter)
            ORDER BY COALESCE(published_at, first_seen_at) DESC, video_key
            """, [PostgresBind(id)]
        ).rows.map(Self.item)
    }

    /// The state and reason of every item of a subscription, by key.
    func known(of id: String) async throws -> [String: (state: SubscriptionItemState, reason: String?)] {
        var out: [String: (state: SubscriptionItemState, reason: String?)] = [:]
        for row in try await pool.query(
            "SELECT video_key, state, reason FROM subscription_items WHERE subscription_id = $1", [PostgresBind(id)]
        ).rows {
            out[try row.string("video_key")] = (
                SubscriptionItemState(rawValue: try row.string("state")) ?? .failed, row.optionalString("reason")
            )
        }
        return out
    }

    /// Inserts new items in one statement; those another check inserted first are left as they are.
    /// Returns how many were inserted.
    func insert(_ items: [SubscriptionPlan.NewItem], subscriptionId: String) async throws -> Int {
        guard !items.isEmpty else { return 0 }
        var total = 0
        for start in stride(from: 0, to: items.count, by: 1000) {
            let chunk = items[start..<min(start + 1000, items.count)]
            total += try await pool.queryStoring(
                """
                INSERT INTO subscription_items (subscription_id, video_key, url, title, published_at, job_id, download_id, state, reason)
                SELECT $1, k, u, left(t, 1000), to_timestamp(p), j, d, s, r
                FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[], $8::text[], $9::text[])
                     AS x(k, u, t, p, j, d, s, r)
                ON CONFLICT (subscription_id, video_key) DO NOTHING
                """,
                [
                    PostgresBind(subscriptionId), PostgresBind(array: chunk.map(\.listed.videoKey)),
                    PostgresBind(array: chunk.map(\.listed.url)),
                    PostgresBind(array: chunk.map(\.listed.title)),
                    PostgresBind(array: chunk.map { $0.listed.timestamp.map { String($0) } }),
                    PostgresBind(
                        array: chunk.map { SubscriptionPlan.downloadJobID(subscriptionId: subscriptionId, videoKey: $0.listed.videoKey) }),
                    PostgresBind(
                        array: chunk.map { SubscriptionPlan.downloadID(subscriptionId: subscriptionId, videoKey: $0.listed.videoKey) }),
                    PostgresBind(array: chunk.map(\.state.rawValue)), PostgresBind(array: chunk.map(\.reason)),
                ]
            ).affectedRows
        }
        return total
    }

    /// Skipped live entries that are over now: queued again.
    func requeue(_ keys: [String], subscriptionId: String) async throws {
        guard !keys.isEmpty else { return }
        _ = try await pool.query(
            """
            UPDATE subscription_items SET state = 'queued', reason = NULL, updated_at = now()
            WHERE subscription_id = $1 AND video_key = ANY($2::text[]) AND state = 'skipped'
            """, [PostgresBind(subscriptionId), PostgresBind(array: keys)])
    }

    /// Items waiting for their download: key, link, title, publication (epoch s) and job id.
    func queued(
        of id: String
    ) async throws -> [(key: String, url: String, title: String?, published: Double?, jobId: String, downloadId: String)] {
        try await pool.query(
            """
            SELECT video_key, url, title, extract(epoch FROM published_at)::float8 AS published, job_id, download_id
            FROM subscription_items WHERE subscription_id = $1 AND state = 'queued' AND url IS NOT NULL ORDER BY first_seen_at
            """, [PostgresBind(id)]
        ).rows.map { row in
            (
                try row.string("video_key"), try row.string("url"), row.optionalString("title"), row.optionalDouble("published"),
                try row.string("job_id"), try row.string("download_id")
            )
        }
    }

    /// Records how an item's download ended (from its job's outcome). A removed item stays removed.
    func finished(
        jobId: String, state: SubscriptionItemState, path: String?, sidecars: [String], size: Int64?, duplicate: Bool,
        published: Double?, title: String?, reason: String?
    ) async throws {
        let sidecarsJSON = JSONValue.array(sidecars.map { .string($0) }).encoded
        _ = try await pool.queryStoring(
            """
            UPDATE subscription_items SET state = $2, path = COALESCE($3, path), sidecars = $4::jsonb, size = COALESCE($5, size),
                duplicate = $6, published_at = COALESCE(to_timestamp($7::float8), published_at), title = COALESCE(left($8, 1000), title),
                reason = $9, updated_at = now()
            WHERE job_id = $1 AND state IN ('queued', 'failed')
            """,
            [
                PostgresBind(jobId), PostgresBind(state.rawValue), PostgresBind(path), PostgresBind(sidecarsJSON), PostgresBind(size),
                PostgresBind(duplicate), PostgresBind(published), PostgresBind(title), PostgresBind(reason.map { String($0.prefix(2000)) }),
            ])
    }

    /// Queued items whose job has ended by its record (an outcome the observer could not write).
    func endedButQueued(of id: String) async throws -> [(jobId: String, outcome: JobOutcome, result: JSONValue?, error: String?)] {
        try await pool.query(
            """
            SELECT i.job_id, j.state, j.result::text AS result, j.error FROM subscription_items i JOIN jobs j ON j.id = i.job_id
            WHERE i.subscription_id = $1 AND i.state = 'queued' AND j.state IN ('completed', 'failed', 'cancelled')
            """, [PostgresBind(id)]
        ).rows.compactMap { row in
            guard let outcome = JobOutcome(rawValue: try row.string("state")) else { return nil }
            return (try row.string("job_id"), outcome, row.optionalString("result").flatMap(JSONValue.parse), row.optionalString("error"))
        }
    }

    /// Marks a downloaded item removed; false when another check did it first.
    func removed(subscriptionId: String, videoKey: String, reason: String) async throws -> Bool {
        try await pool.query(
            """
            UPDATE subscription_items SET state = 'removed', reason = $3, updated_at = now()
            WHERE subscription_id = $1 AND video_key = $2 AND state = 'downloaded'
            """, [PostgresBind(subscriptionId), PostgresBind(videoKey), PostgresBind(reason)]
        ).affectedRows > 0
    }

    /// Sets or clears an item's protection; false when the subscription has no such item.
    package func protect(subscriptionId: String, videoKey: String, protected: Bool) async throws -> Bool {
        try await pool.query(
            "UPDATE subscription_items SET protected = $3, updated_at = now() WHERE subscription_id = $1 AND video_key = $2",
            [PostgresBind(subscriptionId), PostgresBind(videoKey), PostgresBind(protected)]
        ).affectedRows > 0
    }
}
