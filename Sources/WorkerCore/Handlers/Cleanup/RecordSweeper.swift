import PostgresClient
import RedisClient

/// The cleanup job's work on Redis and PostgreSQL: finished state past `retention.state`, job
/// records past `retention.jobs`, and the files the records know.
enum RecordSweeper {
    static let finishedStates = Set(JobState.allCases.filter(\.isTerminal).map(\.rawValue))

    struct StateReport: Sendable {
        var scanned = 0
        var removed = 0
        /// Finished hashes that had no expiry and got one.
        var expiring = 0
    }

    /// Walks every `P:job:*` hash (SCAN, a thousand at a time): a finished one older than `retention`
    /// is deleted, one without an expiry gets the rest of its retention. Queued, scheduled and active
    /// jobs are never touched.
    static func sweepState(
        redis: RedisConnection, keys: RedisKeys, retentionSeconds: Double,
        nowMilliseconds: Int64
    ) async throws -> StateReport {
        var report = StateReport()
        let retentionMs = Int64(retentionSeconds * 1000)
        var cursor = "0"
        repeat {
            try Task.checkCancellation()
            let reply = try await redis.send(RedisCommand(["SCAN", cursor, "MATCH", keys.job("*"), "COUNT", "1000", "TYPE", "hash"]))
            guard let parts = reply.array, parts.count == 2 else { throw RedisError.protocolError("SCAN answered \(reply)") }
            cursor = parts[0].string ?? "0"
            let names = (parts[1].array ?? []).compactMap(\.string)
            guard !names.isEmpty else { continue }
            var reads: [RedisCommand] = []
            for name in names {
                reads.append(RedisCommand(["HMGET", name] + [JobHash.Field.state, .finishedAt, .updatedAt].map(\.rawValue)))
                reads.append(RedisCommand(["PTTL", name]))
            }
            let replies = try await redis.pipeline(reads)
            var writes: [RedisCommand] = []
            for (i, name) in names.enumerated() {
                report.scanned += 1
                let fields = replies[2 * i].array ?? []
                guard let state = fields.first?.string, finishedStates.contains(state) else { continue }
                let ttl = replies[2 * i + 1].int ?? -2
                let finished =
                    (fields.count > 1 ? fields[1].string : nil).flatMap(Timestamp.parse)
                    ?? (fields.count > 2 ? fields[2].string : nil).flatMap(Timestamp.parse)
                let age = finished.map { nowMilliseconds - $0 }
                if let age, age >= retentionMs {
                    writes.append(RedisCommand(["DEL", name]))
                    report.removed += 1
                } else if ttl == -1 {
                    let rest = age.map { max(retentionMs - $0, 1000) } ?? retentionMs
                    writes.append(RedisCommand(["PEXPIRE", name, String(rest)]))
                    report.expiring += 1
                }
            }
            if !writes.isEmpty { _ = try await redis.pipeline(writes) }
        } while cursor != "0"
        return report
    }

    /// Deletes finished `jobs` rows older than `retentionSeconds`, five thousand per statement.
    static func deleteOldRecords(postgres: PostgresPool, retentionSeconds: Double) async throws -> Int {
        var total = 0
        while true {
            try Task.checkCancellation()
            let result = try await postgres.query(
                """
                DELETE FROM jobs WHERE id IN (
                    SELECT id FROM jobs
                    WHERE state IN ('completed', 'failed', 'cancelled')
                      AND finished_at < now() - make_interval(secs => $1::double precision)
                    LIMIT 5000)
                """, [PostgresBind(retentionSeconds)])
            total += result.affectedRows
            if result.affectedRows < 5000 { return total }
        }
    }

    /// A library file a record knows, and whose it is.
    struct KnownFile: Sendable, Hashable {
        var userId: String?
        var path: String
    }

    /// Every absolute path named in the result of a completed job (but `cleanup`, whose result lists
    /// orphans), every file of `worker_downloads`, and every file named in `youtube_downloads.file_paths`
    /// (the API's object's `files[].path`, or an array of paths) when that table exists.
    static func knownFiles(postgres: PostgresPool) async throws -> [KnownFile] {
        var files: [KnownFile] = []
        let fromJobs = try await postgres.query(
            """
            SELECT j.user_id, v #>> '{}' AS path
            FROM jobs j CROSS JOIN LATERAL jsonb_path_query(j.result, 'strict $.**') AS v
            WHERE j.state = 'completed' AND j.result IS NOT NULL AND j.type <> 'cleanup'
              AND jsonb_typeof(v) = 'string' AND left(v #>> '{}', 1) = '/'
            """)
        for row in fromJobs.rows {
            if let path = row["path"] { files.append(KnownFile(userId: row["user_id"], path: path)) }
        }
        let fromOwn = try await postgres.query(
            """
            SELECT d.user_id, p AS path FROM worker_downloads d
            CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(d.files) = 'array' THEN d.files ELSE '[]'::jsonb END) AS p
            WHERE d.files IS NOT NULL
            """)
        for row in fromOwn.rows {
            if let path = row["path"], path.hasPrefix("/") { files.append(KnownFile(userId: row["user_id"], path: path)) }
        }
        let hasDownloads = try await postgres.query(
            """
            SELECT count(*) AS n FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = 'youtube_downloads'
              AND column_name IN ('file_paths', 'user_id')
            """)
        if hasDownloads.first?["n"] == "2" {
            let fromDownloads = try await postgres.query(
                """
                SELECT d.user_id::text AS user_id, x.p AS path
                FROM youtube_downloads d
                CROSS JOIN LATERAL (
                    SELECT jsonb_array_elements_text(
                        CASE WHEN jsonb_typeof(d.file_paths::jsonb) = 'array' THEN d.file_paths::jsonb ELSE '[]'::jsonb END)
                    UNION ALL
                    SELECT f ->> 'path' FROM jsonb_array_elements(
                        CASE WHEN jsonb_typeof(d.file_paths::jsonb -> 'files') = 'array' THEN d.file_paths::jsonb -> 'files' ELSE '[]'::jsonb END) AS f
                ) AS x(p)
                WHERE d.file_paths IS NOT NULL AND x.p IS NOT NULL
                """)
            for row in fromDownloads.rows {
                if let path = row["path"], path.hasPrefix("/") { files.append(KnownFile(userId: row["user_id"], path: path)) }
            }
        }
        return files
    }
}
