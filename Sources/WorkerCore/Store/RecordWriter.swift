import Foundation
import JSON
import Logging
import PostgresClient
import RedisClient
import ServiceLifecycle
import Synchronization

/// Moves durable records from the outbox stream `P:records` into PostgreSQL.
///
/// Every transition's script adds the job's record to the outbox in the same atomic step as the
/// transition itself, so a record is never only in a daemon's memory. Each host runs one writer;
/// the writers share the outbox through the consumer group `writers`:
/// - a batch is read, the records of one job folded into its newest, written in one statement per
///   table, and only then acknowledged (and trimmed from the stream, see `OutboxStream.done`);
/// - rows are idempotent and never move backwards: each carries its outbox entry id as `seq`, and a
///   row is only replaced by one with a higher `seq`;
/// - entries of a writer that died (pending longer than the lease) are claimed by another; a writer
///   waiting for PostgreSQL renews what it holds, so it is not claimed from under it;
/// - a batch PostgreSQL refuses for its data is written row by row; a row it refuses even escaped
///   (see `StorableText`) goes to `P:records:dead` with the reason, and the rest go on;
/// - while PostgreSQL is away records wait in Redis, not here: the writer holds two batches at most
///   (one is read and decoded while the one before is committed; batches commit in the order they
///   were read, so rows and audit ids follow the outbox).
package final class RecordWriter: Service, CustomStringConvertible {
    /// Entries read at once.
    static let batchSize = 1000
    /// Under load (a read brought at least `lingerFrom` entries but not a full batch) the writer waits
    /// this long before its next read, so that a batch holds more: most jobs' `active` and `completed`
    /// records then fold into one row, and PostgreSQL gets fewer, larger statements. A light load is
    /// written at once; a backlog (full batches) without a pause.
    static let linger = Duration.milliseconds(20)
    static let lingerFrom = 100
    /// Longest a blocking read waits (shutdown and claims are seen this often).
    static let blockMilliseconds = 200
    /// Dead-letter stream length kept (approximately).
    static let deadMaxLength = "10000"

    let keys: RedisKeys
    let consumer: String
    let redis: RedisConnection
    let redisConfiguration: RedisConfiguration
    let pool: PostgresPool
    let metrics: Metrics
    let logger: Logger
    /// The lease in seconds, read anew each time (it changes on reload).
    let lease: @Sendable () -> Double
    /// `retention.jobs` in seconds, for seeding the finished ids.
    let retentionJobs: @Sendable () -> Double

    private let healthy = Atomic<Bool>(true)
    private let idle = Atomic<Bool>(false)
    private let written = Atomic<Int>(0)
    private let deadLettered = Atomic<Int>(0)
    private let backlogSample = Mutex<(count: Int, oldestSeconds: Double)>((0, 0))
    /// Set at a graceful shutdown: write what waits until then, for at most the shutdown reserve.
    private let drain = Mutex<(from: ContinuousClock.Instant, until: ContinuousClock.Instant)?>(nil)
    /// How long the writer may go on writing after a graceful shutdown reached it.
    let shutdownReserve: @Sendable () -> Duration

    package var description: String { "record writer" }

    init(
        keys: RedisKeys, consumer: String, redis: RedisConnection, redisConfiguration: RedisConfiguration, pool: PostgresPool,
        metrics: Metrics, logger: Logger, lease: @escaping @Sendable () -> Double, retentionJobs: @escaping @Sendable () -> Double,
        shutdownReserve: @escaping @Sendable () -> Duration
    ) {
        self.shutdownReserve = shutdownReserve
        self.keys = keys
        self.consumer = consumer
        self.redis = redis
        self.redisConfiguration = redisConfiguration
        self.pool = pool
        self.metrics = metrics
        self.logger = logger
        self.lease = lease
        self.retentionJobs = retentionJobs
        self.outbox = OutboxStream(key: keys.records, group: RedisKeys.writersGroup, consumer: consumer, redis: redis)
    }

    let outbox: OutboxStream

    /// Whether the last write reached PostgreSQL.
    package var isHealthy: Bool { healthy.load(ordering: .relaxed) }
    /// Whether the last read found nothing to write.
    package var isIdle: Bool { idle.load(ordering: .relaxed) }
    /// Records this writer has written.
    package var recordsWritten: Int { written.load(ordering: .relaxed) }
    /// Records this writer set aside in `P:records:dead`.
    package var recordsDeadLettered: Int { deadLettered.load(ordering: .relaxed) }
    /// The outbox as last sampled (about once a second): entries waiting and the age of the oldest.
    package var backlog: (count: Int, oldestSeconds: Double) { backlogSample.withLock { $0 } }

    /// Writes records until cancelled, or until a graceful shutdown reaches it and the outbox is empty
    /// (at most the shutdown reserve later). What it has not written stays in the outbox.
    package func run() async {
        let connection = blockingConnection(redisConfiguration, name: "\(consumer)-records", blockMilliseconds: Self.blockMilliseconds)
        defer { connection.close() }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.seedFinishedIDs() }
                await withGracefulShutdownHandler {
                    await loop(connection)
                } onGracefulShutdown: { [self] in
                    drain.withLock { $0 = (.now, .now + shutdownReserve()) }
                }
                group.cancelAll()
            }
        } onCancel: {
            connection.close()
        }
    }

    /// Batches written at once: while one is committed, the next is read and decoded (and the one
    /// before may still be acknowledged).
    static let batchesInFlight = 2

    private func loop(_ connection: RedisConnection) async {
        // Leaving the group waits for the batches in flight: a shutdown ends with them written.
        await withDiscardingTaskGroup { writes in await loop(connection, writes: &writes) }
    }

    private func loop(_ connection: RedisConnection, writes: inout DiscardingTaskGroup) async {
        let inFlight = InFlightLimit(limit: Self.batchesInFlight)
        let order = CommitOrder()
        var failures = 0
        var lastClaim = ContinuousClock.now
        var lastSample = ContinuousClock.now - .seconds(10)
        var groupReady = false
        var emptyReadStarted: ContinuousClock.Instant?
        while !Task.isCancelled {
            if let d = drain.withLock({ $0 }) {
                // Done once a read begun after the shutdown reached here found nothing, or the reserve is used up.
                if let empty = emptyReadStarted, empty >= d.from { return }
                if ContinuousClock.now >= d.until {
                    logger.notice("job records not yet written stay in the Redis outbox for the next record writer")
                    return
                }
            }
            do {
                if !groupReady { try await outbox.ensureGroup(); groupReady = true }
                if ContinuousClock.now - lastSample >= .seconds(1) {
                    lastSample = .now
                    let b = try await outbox.backlog(nowMilliseconds: Timestamp.nowMilliseconds())
                    backlogSample.withLock { $0 = b }
                }
                // A place for the batch before it is read: the entries this writer holds are two batches at most.
                await inFlight.acquire()
                var placeTaken = true
                defer { if placeTaken { inFlight.release() } }
                var entries: [StreamEntry] = []
                let leaseMs = Int(lease() * 1000)
                if ContinuousClock.now - lastClaim >= .milliseconds(Int64(leaseMs / 2)) {
                    lastClaim = .now
                    entries = try await outbox.claim(idleMilliseconds: leaseMs, count: Self.batchSize)
                    if !entries.isEmpty {
                        logger.notice("took over job records a stopped daemon had not written", metadata: ["count": "\(entries.count)"])
                    }
                }
                if entries.isEmpty {
                    let started = ContinuousClock.now
                    let draining = drain.withLock { $0 } != nil
                    entries = try await outbox.read(
                        count: Self.batchSize, blockMilliseconds: draining ? 20 : Self.blockMilliseconds,
                        on: connection)
                    if entries.isEmpty { emptyReadStarted = started }
                }
                failures = 0
                idle.store(entries.isEmpty, ordering: .relaxed)
                if entries.isEmpty { continue }
                placeTaken = false  // the write gives it back
                let ticket = order.take()
                writes.addTask { [self] in
                    await write(entries, after: order, ticket: ticket)
                    inFlight.release()
                }
                if entries.count >= Self.lingerFrom && entries.count < Self.batchSize && drain.withLock({ $0 }) == nil {
                    try? await Task.sleep(for: Self.linger)
                }
            } catch RedisError.server(let message) where message.hasPrefix("NOGROUP") {
                groupReady = false
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if failures == 1 { logger.error("cannot read the records outbox; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 5)), 2000)))
            }
        }
    }

    // MARK: - writing

    /// Writes one batch until PostgreSQL has it (or the task is cancelled: the entries stay pending), then
    /// acknowledges the entries. The batch is decoded at once but committed only after the batches read
    /// before it (their `ticket`s in `order` lower): rows, and the ids of audit rows, follow the
    /// outbox's order, and two commits never wait on each other's rows; its entries are renewed while
    /// it waits.
    func write(_ entries: [StreamEntry], after order: CommitOrder, ticket: Int) async {
        let batch = RecordBatch(entries)
        for (entry, reason) in batch.malformed { await setAside(entry, reason: reason) }
        var lastRenew = ContinuousClock.now
        defer { order.pass(ticket) }
        while !order.isTurn(ticket) {
            if Task.isCancelled { return }  // the entries stay pending for another writer
            try? await Task.sleep(for: CommitOrder.poll)
            if ContinuousClock.now - lastRenew >= .milliseconds(Int64(lease() * 1000 / 3)) {
                lastRenew = .now
                try? await outbox.renew(entries.map(\.id))
            }
        }
        var failures = 0
        while true {
            let failure: Error
            do {
                try await commitBatch(batch)
                break
            } catch {
                failure = error
            }
            // PostgreSQL is away or busy: wait, renewing the held entries now and then.
            failures += 1
            if healthy.exchange(false, ordering: .relaxed) {
                logger.error(
                    "cannot write job records to PostgreSQL; they wait in the Redis outbox until it is back",
                    metadata: ["error": "\(failure)"])
            }
            try? await Task.sleep(for: .milliseconds(min(50 * (1 << min(failures, 6)), 2000)))
            if Task.isCancelled { return }  // the entries stay pending for another writer
            if let d = drain.withLock({ $0 }), ContinuousClock.now >= d.until { return }
            if ContinuousClock.now - lastRenew >= .milliseconds(Int64(lease() * 1000 / 3)) {
                lastRenew = .now
                try? await outbox.renew(entries.map(\.id))
            }
        }
        written.add(batch.jobs.count + batch.audits.count, ordering: .relaxed)
        metrics.recordsWritten(batch.jobs.count + batch.audits.count)
        if !healthy.exchange(true, ordering: .relaxed) {
            logger.notice("PostgreSQL takes job records again; catching up", metadata: ["waiting": "\(backlog.count)"])
        }
        // The rows are committed: from here a lost acknowledgement only means they are written again.
        order.pass(ticket)
        var delay = 50
        while true {
            do {
                try await outbox.done(entries.map(\.id))
                return
            } catch {
                if Task.isCancelled { return }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 1000)
            }
        }
    }

    /// The batch in one statement per table; when PostgreSQL refuses its data, row by row.
    private func commitBatch(_ batch: RecordBatch) async throws {
        do {
            try await commit(batch)
        } catch let error as PostgresError where Self.isDataError(error) {
            try await commitRowByRow(batch)
        }
    }

    private func commit(_ batch: RecordBatch) async throws {
        if !batch.jobs.isEmpty { _ = try await pool.query(Self.jobsSQL, Self.jobBinds(batch.jobs)) }
        if !batch.audits.isEmpty { _ = try await pool.query(Self.auditSQL, Self.auditBinds(batch.audits)) }
    }

    /// Each row alone; a row refused for its data is tried once more with its JSON stored as text, then set aside.
    /// Throws when PostgreSQL fails for any other reason (the batch is tried again later; written rows are idempotent).
    private func commitRowByRow(_ batch: RecordBatch) async throws {
        for row in batch.jobs {
            guard let error = await attempt(Self.jobsSQL, Self.jobBinds([row])) else { continue }
            guard Self.isDataError(error) else { throw error }
            guard let again = await attempt(Self.jobsSQL, Self.jobBinds([row.withJSONAsStrings()])) else {
                logger.warning(
                    "a job record's JSON could not be stored as JSON; stored as text instead",
                    metadata: ["jobId": "\(row.id)", "error": "\(error)"])
                continue
            }
            guard Self.isDataError(again) else { throw again }
            await setAside(row.entry, reason: "\(again)")
        }
        for row in batch.audits {
            guard let error = await attempt(Self.auditSQL, Self.auditBinds([row])) else { continue }
            guard Self.isDataError(error) else { throw error }
            await setAside(row.entry, reason: "\(error)")
        }
    }

    /// One statement; the error PostgreSQL answered, or nil when it was committed.
    private func attempt(_ sql: String, _ binds: [PostgresBind]) async -> PostgresError? {
        do {
            _ = try await pool.query(sql, binds)
            return nil
        } catch {
            return error
        }
    }

    /// Keeps a record PostgreSQL cannot take in `P:records:dead` with the reason; it is acknowledged with its batch.
    private func setAside(_ entry: StreamEntry, reason: String) async {
        deadLettered.add(1, ordering: .relaxed)
        metrics.recordDeadLettered()
        let id = entry.fieldMap["id"].map { StorableText.text($0) } ?? ""
        logger.error(
            "a record could not be stored; kept in the dead-letter stream with the reason",
            metadata: ["entry": "\(entry.id)", "jobId": "\(id)", "reason": "\(reason)", "stream": "\(keys.recordsDead)"])
        var cmd = RedisCommand(["XADD", keys.recordsDead, "MAXLEN", "~", Self.deadMaxLength, "*", "reason", reason, "entry", entry.id])
        for (name, value) in JobRecordFields.named(entry) { cmd.append(name); cmd.append(bytes: value) }
        var delay = 50
        while !Task.isCancelled {
            do { _ = try await redis.send(cmd); return } catch {
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 1000)
            }
        }
    }

    /// A failure of the data itself (SQLSTATE classes 22 data exception, 23 integrity, 54 limits), not of
    /// PostgreSQL or the connection: retrying the same rows as they are cannot help.
    static func isDataError(_ error: PostgresError) -> Bool {
        guard let state = error.sqlState, state.count == 5 else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("54")
    }

    static let jobsSQL = """
        INSERT INTO jobs (id, queue, type, payload, user_id, state, attempt, max_attempts, error, result,
                          created_at, started_at, finished_at, updated_at, worker, raw, seq)
        SELECT r.id, r.queue, r.type, r.payload, r.user_id, r.state, COALESCE(r.attempt, 0), COALESCE(r.max_attempts, 1),
               r.error, r.result, COALESCE(r.created_at, r.updated_at, now()), r.started_at, r.finished_at,
               COALESCE(r.updated_at, now()), r.worker, r.raw, r.seq
        FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[], $8::int[],
                    $9::text[], $10::jsonb[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[],
                    $14::timestamptz[], $15::text[], $16::text[], $17::bigint[])
             AS r(id, queue, type, payload, user_id, state, attempt, max_attempts, error, result,
                  created_at, started_at, finished_at, updated_at, worker, raw, seq)
        ON CONFLICT (id) DO UPDATE SET
            queue = EXCLUDED.queue, type = EXCLUDED.type,
            payload = COALESCE(EXCLUDED.payload, jobs.payload),
            user_id = EXCLUDED.user_id, state = EXCLUDED.state, attempt = EXCLUDED.attempt,
            max_attempts = EXCLUDED.max_attempts, error = EXCLUDED.error, result = EXCLUDED.result,
            created_at = LEAST(jobs.created_at, EXCLUDED.created_at),
            started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, updated_at = EXCLUDED.updated_at,
            worker = EXCLUDED.worker, raw = COALESCE(EXCLUDED.raw, jobs.raw), seq = EXCLUDED.seq
        WHERE jobs.seq IS NULL OR jobs.seq < EXCLUDED.seq
        """

    static func jobBinds(_ rows: [JobRow]) -> [PostgresBind] {
        [
            PostgresBind(array: rows.map { Optional($0.id) }),
            PostgresBind(array: rows.map { Optional($0.queue) }),
            PostgresBind(array: rows.map { Optional($0.type) }),
            PostgresBind(array: rows.map(\.payload)),
            PostgresBind(array: rows.map(\.userId)),
            PostgresBind(array: rows.map { Optional($0.state) }),
            PostgresBind(array: rows.map(\.attempt)),
            PostgresBind(array: rows.map(\.maxAttempts)),
            PostgresBind(array: rows.map(\.error)),
            PostgresBind(array: rows.map(\.result)),
            PostgresBind(array: rows.map(\.createdAt)),
            PostgresBind(array: rows.map(\.startedAt)),
            PostgresBind(array: rows.map(\.finishedAt)),
            PostgresBind(array: rows.map(\.updatedAt)),
            PostgresBind(array: rows.map(\.worker)),
            PostgresBind(array: rows.map(\.raw)),
            PostgresBind(array: rows.map { Optional($0.seq) }),
        ]
    }

    static let auditSQL = """
        INSERT INTO audit (at, actor, peer_uid, peer_pid, source, action, target, ok, detail, worker, control_entry, record_id)
        SELECT to_timestamp(a.ms / 1000.0), a.actor, a.uid, a.pid, a.source, a.action, a.target, a.ok, a.detail, a.worker,
               a.entry, a.record
        FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::text[], $8::boolean[],
                    $9::text[], $10::text[], $11::text[], $12::text[])
             AS a(ms, actor, uid, pid, source, action, target, ok, detail, worker, entry, record)
        ON CONFLICT DO NOTHING
        """

    static func auditBinds(_ rows: [AuditRow]) -> [PostgresBind] {
        [
            PostgresBind(array: rows.map { Optional($0.at) }),
            PostgresBind(array: rows.map { Optional($0.actor) }),
            PostgresBind(array: rows.map(\.peerUID)),
            PostgresBind(array: rows.map(\.peerPID)),
            PostgresBind(array: rows.map { Optional($0.source) }),
            PostgresBind(array: rows.map { Optional($0.action) }),
            PostgresBind(array: rows.map(\.target)),
            PostgresBind(array: rows.map { Optional($0.ok ? "true" : "false") }),
            PostgresBind(array: rows.map(\.detail)),
            PostgresBind(array: rows.map(\.worker)),
            PostgresBind(array: rows.map(\.controlEntry)),
            PostgresBind(array: rows.map { Optional($0.entry.id) }),
        ]
    }

    // MARK: - finished ids

    /// Once per cluster: ids PostgreSQL knows as finished within `retention.jobs` (from before the ids were
    /// kept in Redis) go into `P:finished`, so they never run again after their hashes expire.
    private func seedFinishedIDs() async {
        let done = "\(keys.finished):seeded"
        while !Task.isCancelled {
            do {
                if try await redis.send(RedisCommand(["EXISTS", done])).int == 1 { return }
                guard try await redis.send(RedisCommand(["SET", "\(done):lock", consumer, "NX", "EX", "300"])).string == "OK" else {
                    try? await Task.sleep(for: .seconds(5))
                    continue
                }
                let result = try await pool.query(
                    """
                    SELECT id, (extract(epoch FROM finished_at) * 1000)::bigint AS ms FROM jobs
                    WHERE state IN ('completed', 'failed', 'cancelled') AND finished_at > now() - make_interval(secs => $1)
                    """, [PostgresBind(retentionJobs())])
                var commands: [RedisCommand] = []
                var zadd = RedisCommand(["ZADD", keys.finished])
                var n = 0
                for row in result.rows {
                    guard let id = row["id"], let ms = row["ms"] else { continue }
                    zadd.append(ms); zadd.append(id)
                    n += 1
                    if n % 1000 == 0 { commands.append(zadd); zadd = RedisCommand(["ZADD", keys.finished]) }
                }
                if n % 1000 != 0 { commands.append(zadd) }
                if !commands.isEmpty { _ = try await redis.pipeline(commands) }
                _ = try await redis.pipeline([RedisCommand(["SET", done, Timestamp.now()]), RedisCommand(["DEL", "\(done):lock"])])
                if n > 0 { logger.notice("finished job ids from PostgreSQL kept in Redis", metadata: ["count": "\(n)"]) }
                return
            } catch {
                _ = try? await redis.send(RedisCommand(["DEL", "\(done):lock"]))
                try? await Task.sleep(for: .seconds(5))
            }
        }
    }
}

/// The order in which a writer's batches commit: the order they were read in. A batch takes a ticket
/// when it is read and commits when its turn has come; it passes the turn on once committed (or
/// given up on).
final class CommitOrder: Sendable {
    /// How often a batch waiting for its turn looks.
    static let poll = Duration.milliseconds(1)
    private let state = Mutex((next: 0, turn: 0, passed: Set<Int>()))

    func take() -> Int {
        state.withLock { s in
            defer { s.next += 1 }
            return s.next
        }
    }

    func isTurn(_ ticket: Int) -> Bool { state.withLock { $0.turn >= ticket } }

    /// The batch of `ticket` is done with its turn (passing it twice is passing it once).
    func pass(_ ticket: Int) {
        state.withLock { s in
            guard ticket >= s.turn else { return }
            s.passed.insert(ticket)
            while s.passed.remove(s.turn) != nil { s.turn += 1 }
        }
    }
}

/// One `jobs` row from the outbox: the job's newest record in a batch.
struct JobRow: Sendable {
    var seq: Int64
    var id: String
    var queue: String
    var type: String
    var payload: String?
    var userId: String?
    var state: String
    var attempt: Int64?
    var maxAttempts: Int64?
    var error: String?
    var result: String?
    var createdAt: String?
    var startedAt: String?
    var finishedAt: String?
    var updatedAt: String?
    var worker: String?
    var raw: String?
    /// The outbox entry it came from (for the dead-letter stream).
    var entry: StreamEntry

    /// The same row with its JSON columns as JSON strings of their text (for JSON `jsonb` refuses, e.g. a number out of range).
    func withJSONAsStrings() -> JobRow {
        var copy = self
        copy.payload = payload.map(StorableText.asJSONString)
        copy.result = result.map(StorableText.asJSONString)
        return copy
    }
}

/// One `audit` row from the outbox.
struct AuditRow: Sendable {
    var at: Int64
    var actor: String
    var peerUID: Int?
    var peerPID: Int?
    var source: String
    var action: String
    var target: String?
    var ok: Bool
    var detail: String?
    var worker: String?
    var controlEntry: String?
    var entry: StreamEntry
}

/// The fields of a record in the outbox, found in one pass over the entry; the last value of a name
/// wins. The scripts' `writeRecord` packs a job's values into one field `r` (see `PackedValues`);
/// `reject`, the audit log and earlier versions write one field per value (`st`, `q`, …): both read
/// alike.
struct JobRecordFields: Sendable {
    static let job = Array("job".utf8)
    static let audit = Array("audit".utf8)
    /// The names of the packed values, in their order (the scripts' `recordFields`), as the records
    /// written one field per value name them.
    static let packedNames = ["st", "q", "t", "u", "a", "m", "env", "err", "res", "c", "s", "f", "at", "w"]

    var kind, id, state, queue, type, user, attempt, maxAttempts, envelope: [UInt8]?
    var error, result, createdAt, startedAt, finishedAt, updatedAt, worker, raw: [UInt8]?
    /// Why the packed values could not be read, when they could not.
    var packedFailure: String?

    init(_ entry: StreamEntry) {
        for (name, value) in entry.fields {
            if name == "r" { unpack(value) } else { set(name, value) }
        }
    }

    /// The record's kind and id alone (the last of each name), without decoding anything else.
    static func kindAndID(_ entry: StreamEntry) -> (kind: [UInt8]?, id: [UInt8]?) {
        var kind: [UInt8]?
        var id: [UInt8]?
        for (name, value) in entry.fields {
            if name == "k" { kind = value } else if name == "id" { id = value }
        }
        return (kind, id)
    }

    private mutating func set(_ name: String, _ value: [UInt8]?) {
        switch name {
        case "k": kind = value
        case "id": id = value
        case "st": state = value
        case "q": queue = value
        case "t": type = value
        case "u": user = value
        case "a": attempt = value
        case "m": maxAttempts = value
        case "env": envelope = value
        case "err": error = value
        case "res": result = value
        case "c": createdAt = value
        case "s": startedAt = value
        case "f": finishedAt = value
        case "at": updatedAt = value
        case "w": worker = value
        case "raw": raw = value
        default: return
        }
    }

    private mutating func unpack(_ packed: [UInt8]) {
        switch PackedValues.decode(packed, count: Self.packedNames.count) {
        case .success(let values):
            for (name, value) in zip(Self.packedNames, values) { set(name, value) }
        case .failure(let failure):
            packedFailure = failure.description
        }
    }

    /// The entry's fields with packed values spelled out by name (for the dead-letter stream, read by people).
    static func named(_ entry: StreamEntry) -> [(String, [UInt8])] {
        entry.fields.flatMap { field -> [(String, [UInt8])] in
            guard field.0 == "r", case .success(let values) = PackedValues.decode(field.1, count: packedNames.count) else {
                return [field]
            }
            return zip(packedNames, values).compactMap { name, value in value.map { (name, $0) } }
        }
    }
}

/// A batch of outbox entries sorted into rows: one job row per job (its newest record), audit rows,
/// and the entries that are no record at all.
struct RecordBatch: Sendable {
    var jobs: [JobRow] = []
    var audits: [AuditRow] = []
    var malformed: [(StreamEntry, String)] = []

    init(_ entries: [StreamEntry]) {
        // First each record's kind and job id, from its plain fields (packed values untouched); then
        // each job's records newest first, read until one makes a row. A job's older records in the
        // batch (its `active` before its `completed`) are never decoded: the newest holds its whole state.
        var order: [[UInt8]] = []
        var byJob: [[UInt8]: [Int]] = [:]
        var setApart: [(index: Int, entry: StreamEntry, reason: String)] = []
        for (index, entry) in entries.enumerated() {
            let (kind, id) = JobRecordFields.kindAndID(entry)
            if kind == JobRecordFields.job {
                guard let id else {
                    setApart.append((index, entry, Self.incompleteJob))
                    continue
                }
                if byJob[id]?.append(index) == nil {
                    byJob[id] = [index]
                    order.append(id)
                }
            } else if kind == JobRecordFields.audit {
                guard let row = Self.auditRow(entry, entry.fieldMap) else {
                    setApart.append((index, entry, "an audit record without time, actor, source or action"))
                    continue
                }
                audits.append(row)
            } else {
                let name = kind.map { JSONText.quote(StorableText.text($0)) } ?? "(none)"
                setApart.append((index, entry, "unknown record kind \(name)"))
            }
        }
        jobs.reserveCapacity(order.count)
        for id in order {
            var candidates = byJob[id] ?? []
            if candidates.count > 1 { candidates.sort { entries[$0].sequence > entries[$1].sequence } }
            for index in candidates {
                let entry = entries[index]
                let f = JobRecordFields(entry)
                if let failure = f.packedFailure {
                    setApart.append((index, entry, "a job record whose packed values cannot be read: \(failure)"))
                } else if let row = Self.jobRow(entry, f) {
                    jobs.append(row)
                    break
                } else {
                    setApart.append((index, entry, Self.incompleteJob))
                }
            }
        }
        malformed = setApart.sorted { $0.index < $1.index }.map { ($0.entry, $0.reason) }
    }

    static let incompleteJob = "a job record without id, state, queue or type"

    static func jobRow(_ entry: StreamEntry, _ f: JobRecordFields) -> JobRow? {
        let text = { (value: [UInt8]?) -> String? in value.map { StorableText.text($0) } }
        let int = { (value: [UInt8]?) -> Int64? in text(value).flatMap { Int64($0) } }
        guard let id = text(f.id), let state = text(f.state), let queue = text(f.queue), let type = text(f.type) else { return nil }
        var payload: String?
        if let env = text(f.envelope) {
            // The envelope was validated at intake; its payload object is the row's.
            payload = StorableText.json(env).flatMap { JSONValue.parse($0)?["payload"]?.encoded }
        }
        let result = text(f.result).map { StorableText.json($0) ?? StorableText.asJSONString($0) }
        return JobRow(
            seq: entry.sequence, id: id, queue: queue, type: type, payload: payload, userId: text(f.user), state: state,
            attempt: int(f.attempt), maxAttempts: int(f.maxAttempts), error: text(f.error), result: result,
            createdAt: text(f.createdAt), startedAt: text(f.startedAt), finishedAt: text(f.finishedAt),
            updatedAt: text(f.updatedAt), worker: text(f.worker), raw: text(f.raw), entry: entry)
    }

    static func auditRow(_ entry: StreamEntry, _ f: [String: [UInt8]]) -> AuditRow? {
        let text = { (name: String) -> String? in f[name].map { StorableText.text($0) } }
        guard let at = text("at").flatMap({ Int64($0) }), let actor = text("actor"), let source = text("source"),
            let action = text("action")
        else { return nil }
        return AuditRow(
            at: at, actor: actor, peerUID: text("uid").flatMap { Int($0) }, peerPID: text("pid").flatMap { Int($0) },
            source: source, action: action, target: text("target"), ok: text("ok") == "1", detail: text("detail"),
            worker: text("w"), controlEntry: text("ce"), entry: entry)
    }
}

extension AuditEntry {
    /// The entry's fields in the records outbox.
    func outboxFields(worker: String) -> [(String, String)] {
        var fields: [(String, String)] = [
            ("k", "audit"), ("at", String(at)), ("actor", actor), ("source", source),
            ("action", action), ("ok", ok ? "1" : "0"), ("w", worker),
        ]
        if let peerUID { fields.append(("uid", String(peerUID))) }
        if let peerPID { fields.append(("pid", String(peerPID))) }
        if let target { fields.append(("target", target)) }
        if let detail { fields.append(("detail", detail)) }
        if let controlEntry { fields.append(("ce", controlEntry)) }
        return fields
    }
}
