import Foundation
import PostgresClient

/// One job's durable record: the latest known snapshot of its `jobs` row.
package struct JobRecord: Sendable, Equatable {
    package var id: String
    package var queue: String
    package var type: String
    package var payloadJSON: String?
    package var userId: String?
    package var state: String
    package var attempt: Int
    package var maxAttempts: Int
    package var error: String?
    package var resultJSON: String?
    package var createdAt: Int64
    package var startedAt: Int64?
    package var finishedAt: Int64?
    package var updatedAt: Int64
    package var worker: String?
    /// The entry as received, for entries that were refused.
    package var raw: String?

    package init(
        id: String, queue: String, type: String, payloadJSON: String?, userId: String?, state: String,
        attempt: Int, maxAttempts: Int, error: String? = nil, resultJSON: String? = nil,
        createdAt: Int64, startedAt: Int64? = nil, finishedAt: Int64? = nil, updatedAt: Int64,
        worker: String? = nil, raw: String? = nil
    ) {
        self.id = id; self.queue = queue; self.type = type; self.payloadJSON = payloadJSON; self.userId = userId
        self.state = state; self.attempt = attempt; self.maxAttempts = maxAttempts; self.error = error
        self.resultJSON = resultJSON; self.createdAt = createdAt; self.startedAt = startedAt
        self.finishedAt = finishedAt; self.updatedAt = updatedAt; self.worker = worker; self.raw = raw
    }

}

/// Reads job records back from PostgreSQL (the control socket's `retry` of a job whose hash expired).
/// Records are written by `RecordWriter`, never from here.
package struct JobRecords: Sendable {
    let pool: PostgresPool

    package init(pool: PostgresPool) { self.pool = pool }

    /// One job's record, as PostgreSQL has it.
    package func fetch(id: String) async throws -> JobRecord? {
        let result = try await pool.query(
            """
            SELECT id, queue, type, payload::text AS payload, user_id, state, attempt, max_attempts, error,
                   result::text AS result, created_at, started_at, finished_at, updated_at, worker, raw
            FROM jobs WHERE id = $1
            """, [PostgresBind(id)])
        guard let row = result.rows.first else { return nil }
        func ms(_ column: String) -> Int64? { row.optionalDate(column).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } }
        return JobRecord(
            id: row["id"] ?? id, queue: row["queue"] ?? "", type: row["type"] ?? "", payloadJSON: row["payload"],
            userId: row["user_id"], state: row["state"] ?? "", attempt: row.optionalInt("attempt") ?? 0,
            maxAttempts: row.optionalInt("max_attempts") ?? 1, error: row["error"], resultJSON: row["result"],
            createdAt: ms("created_at") ?? 0, startedAt: ms("started_at"), finishedAt: ms("finished_at"),
            updatedAt: ms("updated_at") ?? 0, worker: row["worker"], raw: row["raw"])
    }
}
