import Foundation
import Logging
import PostgresClient
import Synchronization

/// One job's durable record: the latest known snapshot of its `jobs` row.
public struct JobRecord: Sendable, Equatable {
    public var id: String
    public var queue: String
    public var type: String
    public var payloadJSON: String?
    public var userId: String?
    public var state: String
    public var attempt: Int
    public var maxAttempts: Int
    public var error: String?
    public var resultJSON: String?
    public var createdAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var updatedAt: Int64
    public var worker: String?
    /// The entry as received, for entries that were refused.
    public var raw: String?

    public init(id: String, queue: String, type: String, payloadJSON: String?, userId: String?, state: String,
                attempt: Int, maxAttempts: Int, error: String? = nil, resultJSON: String? = nil,
                createdAt: Int64, startedAt: Int64? = nil, finishedAt: Int64? = nil, updatedAt: Int64,
                worker: String? = nil, raw: String? = nil) {
        self.id = id; self.queue = queue; self.type = type; self.payloadJSON = payloadJSON; self.userId = userId
        self.state = state; self.attempt = attempt; self.maxAttempts = maxAttempts; self.error = error
        self.resultJSON = resultJSON; self.createdAt = createdAt; self.startedAt = startedAt
        self.finishedAt = finishedAt; self.updatedAt = updatedAt; self.worker = worker; self.raw = raw
    }

    /// Folds a newer snapshot of the same job over this one (fields the newer one lacks are kept).
    mutating func merge(_ newer: JobRecord) {
        let older = self
        self = newer
        payloadJSON = newer.payloadJSON ?? older.payloadJSON
        userId = newer.userId ?? older.userId
        startedAt = newer.startedAt ?? older.startedAt
        error = newer.error ?? older.error
        resultJSON = newer.resultJSON ?? older.resultJSON
        worker = newer.worker ?? older.worker
        raw = newer.raw ?? older.raw
        createdAt = min(older.createdAt, newer.createdAt)
    }
}

/// Keeps the `jobs` table in step with the queue, off the hot path: transitions are buffered
/// (only the latest snapshot per job is kept) and written in one statement per batch. When
/// PostgreSQL is away, records wait in memory and catch up once it is back.
public final class JobStore: Sendable {
    private struct Buffer {
        var pending: [String: JobRecord] = [:]
        var order: [String] = []
    }

    let pool: PostgresPool
    let logger: Logger
    private let buffer = Mutex(Buffer())
    private let healthy = Atomic<Bool>(true)
    private let written = Atomic<Int>(0)
    private let batches = Atomic<Int>(0)
    /// Flush once this many records wait, without waiting for the interval.
    let batchSize: Int
    let interval: Duration

    public init(pool: PostgresPool, logger: Logger, batchSize: Int = 2000, interval: Duration = .milliseconds(50)) {
        self.pool = pool
        self.logger = logger
        self.batchSize = batchSize
        self.interval = interval
    }

    /// Whether the last write reached PostgreSQL.
    public var isHealthy: Bool { healthy.load(ordering: .relaxed) }
    /// Records written so far.
    public var recordsWritten: Int { written.load(ordering: .relaxed) }
    /// Statements (batches) written so far.
    public var batchesWritten: Int { batches.load(ordering: .relaxed) }
    /// Records waiting to be written.
    public var backlog: Int { buffer.withLock { $0.pending.count } }

    /// Queues a snapshot for writing.
    public func record(_ record: JobRecord) {
        buffer.withLock { b in
            if var existing = b.pending[record.id] {
                existing.merge(record)
                b.pending[record.id] = existing
            } else {
                b.pending[record.id] = record
                b.order.append(record.id)
            }
        }
    }

    private func take(max: Int) -> [JobRecord] {
        buffer.withLock { b in
            let ids = b.order.prefix(max)
            var out: [JobRecord] = []
            out.reserveCapacity(ids.count)
            for id in ids { if let r = b.pending.removeValue(forKey: id) { out.append(r) } }
            b.order.removeFirst(ids.count)
            return out
        }
    }

    private func putBack(_ records: [JobRecord]) {
        buffer.withLock { b in
            var front: [String] = []
            for r in records {
                if let newer = b.pending[r.id] {
                    var merged = r
                    merged.merge(newer)
                    b.pending[r.id] = merged
                } else {
                    b.pending[r.id] = r
                    front.append(r.id)
                }
            }
            b.order.insert(contentsOf: front, at: 0)
        }
    }

    /// Writes batches until cancelled; on cancellation writes what is left (best effort, bounded by `finalFlushTimeout`).
    public func run() async {
        var failures = 0
        while !Task.isCancelled {
            let wrote = await flushOnce()
            switch wrote {
            case .some(let n) where n > 0:
                failures = 0
                continue
            case .some:
                failures = 0
                try? await Task.sleep(for: interval)
            case .none:
                failures += 1
                let delay = min(50 * (1 << min(failures, 6)), 2000)
                try? await Task.sleep(for: .milliseconds(delay))
            }
        }
    }

    /// Writes everything buffered now. Returns false when PostgreSQL could not be reached.
    @discardableResult
    public func flushAll() async -> Bool {
        while backlog > 0 {
            guard let n = await flushOnce(), n > 0 else { return backlog == 0 }
        }
        return true
    }

    /// One batch. Returns the number written, or nil when the write failed (records are kept).
    func flushOnce() async -> Int? {
        let batch = take(max: batchSize)
        if batch.isEmpty { return 0 }
        do {
            try await write(batch)
            written.add(batch.count, ordering: .relaxed)
            batches.add(1, ordering: .relaxed)
            if !healthy.exchange(true, ordering: .relaxed) {
                logger.notice("PostgreSQL is reachable again; job records are catching up", metadata: ["backlog": "\(backlog)"])
            }
            return batch.count
        } catch {
            putBack(batch)
            if healthy.exchange(false, ordering: .relaxed) {
                logger.error("cannot write job records to PostgreSQL; keeping them until it is back",
                             metadata: ["error": "\(error)", "backlog": "\(backlog)"])
            }
            return nil
        }
    }

    static let upsertSQL = """
        INSERT INTO jobs (id, queue, type, payload, user_id, state, attempt, max_attempts, error, result,
                          created_at, started_at, finished_at, updated_at, worker, raw)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[], $8::int[],
                             $9::text[], $10::jsonb[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[],
                             $14::timestamptz[], $15::text[], $16::text[])
        ON CONFLICT (id) DO UPDATE SET
            queue = EXCLUDED.queue, type = EXCLUDED.type,
            payload = COALESCE(EXCLUDED.payload, jobs.payload),
            user_id = COALESCE(EXCLUDED.user_id, jobs.user_id),
            state = EXCLUDED.state, attempt = EXCLUDED.attempt, max_attempts = EXCLUDED.max_attempts,
            error = COALESCE(EXCLUDED.error, jobs.error),
            result = COALESCE(EXCLUDED.result, jobs.result),
            created_at = LEAST(jobs.created_at, EXCLUDED.created_at),
            started_at = COALESCE(EXCLUDED.started_at, jobs.started_at),
            finished_at = EXCLUDED.finished_at,
            updated_at = EXCLUDED.updated_at,
            worker = COALESCE(EXCLUDED.worker, jobs.worker),
            raw = COALESCE(EXCLUDED.raw, jobs.raw)
        WHERE jobs.updated_at <= EXCLUDED.updated_at
        """

    private func write(_ batch: [JobRecord]) async throws {
        func date(_ ms: Int64?) -> String? { ms.map(Timestamp.format(milliseconds:)) }
        let binds: [PostgresBind] = [
            PostgresBind(array: batch.map { Optional($0.id) }),
            PostgresBind(array: batch.map { Optional($0.queue) }),
            PostgresBind(array: batch.map { Optional($0.type) }),
            PostgresBind(array: batch.map(\.payloadJSON)),
            PostgresBind(array: batch.map(\.userId)),
            PostgresBind(array: batch.map { Optional($0.state) }),
            PostgresBind(array: batch.map { Optional(Int64($0.attempt)) }),
            PostgresBind(array: batch.map { Optional(Int64($0.maxAttempts)) }),
            PostgresBind(array: batch.map(\.error)),
            PostgresBind(array: batch.map(\.resultJSON)),
            PostgresBind(array: batch.map { date($0.createdAt) }),
            PostgresBind(array: batch.map { date($0.startedAt) }),
            PostgresBind(array: batch.map { date($0.finishedAt) }),
            PostgresBind(array: batch.map { date($0.updatedAt) }),
            PostgresBind(array: batch.map(\.worker)),
            PostgresBind(array: batch.map(\.raw)),
        ]
        _ = try await pool.query(Self.upsertSQL, binds)
    }

    /// Of `ids`, those PostgreSQL knows as finished (completed, failed or cancelled).
    public func finishedIDs(among ids: [String]) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let result = try await pool.query(
            "SELECT id, state FROM jobs WHERE id = ANY($1::text[]) AND state IN ('completed', 'failed', 'cancelled')",
            [PostgresBind(array: ids.map { Optional($0) })])
        var out: [String: String] = [:]
        for row in result.rows { if let id = row["id"], let state = row["state"] { out[id] = state } }
        return out
    }

    /// One job's record, as PostgreSQL has it.
    public func fetch(id: String) async throws -> JobRecord? {
        let result = try await pool.query("""
            SELECT id, queue, type, payload::text AS payload, user_id, state, attempt, max_attempts, error,
                   result::text AS result, created_at, started_at, finished_at, updated_at, worker, raw
            FROM jobs WHERE id = $1
            """, [PostgresBind(id)])
        guard let row = result.rows.first else { return nil }
        func ms(_ column: String) -> Int64? { row.optionalDate(column).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } }
        return JobRecord(id: row["id"] ?? id, queue: row["queue"] ?? "", type: row["type"] ?? "", payloadJSON: row["payload"],
                         userId: row["user_id"], state: row["state"] ?? "", attempt: row.optionalInt("attempt") ?? 0,
                         maxAttempts: row.optionalInt("max_attempts") ?? 1, error: row["error"], resultJSON: row["result"],
                         createdAt: ms("created_at") ?? 0, startedAt: ms("started_at"), finishedAt: ms("finished_at"),
                         updatedAt: ms("updated_at") ?? 0, worker: row["worker"], raw: row["raw"])
    }
}
