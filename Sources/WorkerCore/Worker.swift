import Foundation
import Logging
import PostgresClient
import RedisClient
import Synchronization
import WorkerConfig

/// A one-shot signal many tasks can wait for.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    var isOpen: Bool { state.withLock { $0.open } }

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard !s.open else { return [] }
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }
}

/// What the daemon reports about itself (control socket `status`, heartbeats).
public struct WorkerStatus: Sendable {
    public var consumer: String
    public var draining: Bool
    public var shuttingDown: Bool
    public var paused: Set<String>
    public var queues: [(name: String, concurrency: Int, active: Int)]
    public var redisConnected: Bool
    public var postgresHealthy: Bool
    /// Records waiting in the outbox (the whole cluster's), and the age of the oldest, as last sampled.
    public var recordsBacklog: Int
    public var recordsOldestSeconds: Double
    /// Records this daemon set aside in `P:records:dead`.
    public var recordsDeadLettered: Int
}

/// The job daemon's core: fetches jobs from the queue streams, runs them in the pool, keeps state,
/// events and records, and does the cluster's maintenance. Everything but process concerns (signals,
/// sockets, systemd) lives here, so tests can run several workers in one process.
public final class Worker: Sendable {
    public let consumer: String
    public let logger: Logger
    public let metrics: Metrics
    public let queue: JobQueue
    /// Moves records from the outbox into PostgreSQL.
    public let records: RecordWriter
    /// Calls the observers for the outcomes in `P:outcomes`.
    let dispatcher: OutcomeDispatcher
    public let pool: WorkerPool
    let registry: HandlerRegistry
    let redis: RedisConnection
    let postgres: PostgresPool
    let redisConfiguration: RedisConfiguration
    private let config: Mutex<WorkerConfiguration>
    private let pausedQueues = Mutex<Set<String>>([])
    private let draining = Atomic<Bool>(false)
    private let stopping = Gate()
    private let fetchers = Mutex<[String: Task<Void, Never>]>([:])
    private let ready = Gate()
    /// What handlers get besides their job.
    public let services: WorkerServices
    /// Blocking reads made by the fetchers (each one round trip), for the round-trips-per-job figure.
    let blockingReads = Atomic<Int>(0)

    /// Makes a worker. Connections are opened when `run()` starts.
    public init(configuration: WorkerConfiguration, registry: HandlerRegistry = .builtIn(), logger: Logger,
                consumer: String? = nil, observers: [any JobObserver] = []) throws {
        self.config = Mutex(configuration)
        self.registry = registry
        self.logger = logger
        self.metrics = Metrics()
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        self.consumer = consumer ?? "\(host)-\(getpid())-\(String(UInt32.random(in: 0...0xFFFF), radix: 16))"
        self.redisConfiguration = try RedisConfiguration(url: configuration.redis.url)
        self.redis = RedisConnection(configuration: redisConfiguration, name: "\(self.consumer)-main")
        let pgConfiguration = try PostgresConfiguration(url: configuration.postgres.url)
        self.postgres = PostgresPool(configuration: pgConfiguration, size: max(configuration.postgres.poolSize, 1))
        self.queue = JobQueue(redis: redis, keys: RedisKeys(prefix: configuration.redis.prefix), consumer: self.consumer,
                              retentionSeconds: Int(configuration.retention.state))
        let services = WorkerServices(configuration: configuration, queue: queue, postgres: postgres,
                                      redis: redis, metrics: metrics, logger: logger, observers: observers)
        self.services = services
        self.records = RecordWriter(keys: queue.keys, consumer: self.consumer, redis: redis, redisConfiguration: redisConfiguration,
                                    pool: postgres, metrics: metrics, logger: logger,
                                    lease: { services.configuration.lease }, retentionJobs: { services.configuration.retention.jobs })
        self.dispatcher = OutcomeDispatcher(services: services, consumer: self.consumer, redisConfiguration: redisConfiguration,
                                            lease: { services.configuration.lease })
        self.pool = WorkerPool(limits: Dictionary(uniqueKeysWithValues: configuration.queues.map { ($0.name, $0.concurrency) }))
    }

    public var configuration: WorkerConfiguration { config.withLock { $0 } }
    public var isDraining: Bool { draining.load(ordering: .relaxed) }
    public var isShuttingDown: Bool { stopping.isOpen }
    public func isPaused(_ queue: String) -> Bool { pausedQueues.withLock { $0.contains(queue) } }

    /// Waits until the worker consumes its queues.
    public func waitUntilReady() async { await ready.wait() }

    /// Runs until `shutdown()`, then stops gracefully: no new jobs, running ones get `shutdown_timeout`
    /// to finish, the rest go back to the queue, records are flushed. `onReady` is called once the queues are consumed.
    public func run(onReady: @Sendable () -> Void = {}) async {
        let cfg = configuration
        logger.info("starting", metadata: ["consumer": "\(consumer)", "redis": "\(redisConfiguration.redactedURL)",
                                          "queues": "\(cfg.queues.map(\.name).joined(separator: ","))"])
        await migrate()
        await prepareQueues(cfg)
        let recordsTask = Task { await records.run() }
        let dispatcherTask = Task { await dispatcher.run() }
        let controlTask = Task { await runControlListener() }
        let maintenanceTask = Task { await runMaintenance() }
        let schedulerTask = Task { await runScheduler() }
        for q in cfg.queues { startFetcher(q.name) }
        ready.open()
        logger.info("ready", metadata: ["consumer": "\(consumer)"])
        onReady()

        await stopping.wait()

        // The whole shutdown fits in shutdown_timeout: running jobs get it less a reserve in which
        // the unfinished ones are handed back and the last records written.
        let budget = configuration.shutdownTimeout
        let reserve = min(2.0, budget * 0.2)
        let deadline = ContinuousClock.now + .milliseconds(Int64(budget * 1000))
        // 1. Stop taking jobs.
        logger.info("shutting down: no new jobs; waiting for running jobs", metadata: ["active": "\(pool.activeTotal)",
                    "timeout": "\(Processor.describe(seconds: budget))"])
        let fetcherTasks = fetchers.withLock { f -> [Task<Void, Never>] in defer { f = [:] }; return Array(f.values) }
        fetcherTasks.forEach { $0.cancel() }
        for t in fetcherTasks { await t.value }
        // 2. Let running jobs finish, then hand the rest back.
        let jobsDeadline = deadline - .milliseconds(Int64(reserve * 1000))
        if !(await pool.waitUntilIdle(timeout: jobsDeadline - ContinuousClock.now)) {
            logger.warning("shutdown timeout reached; handing unfinished jobs back to the queue", metadata: ["active": "\(pool.activeTotal)"])
            pool.stopAll(reason: .shutdown)
            _ = await pool.waitUntilIdle(timeout: max(deadline - ContinuousClock.now - .milliseconds(Int64(reserve * 250)), .milliseconds(100)))
        }
        // 3. Stop maintenance; give the record writer the rest of the reserve to write what waits
        //    (whatever it does not write stays in the outbox for the next writer: nothing is lost).
        controlTask.cancel()
        maintenanceTask.cancel()
        schedulerTask.cancel()
        await controlTask.value
        await maintenanceTask.value
        await schedulerTask.value
        dispatcherTask.cancel()
        try? await Task.sleep(for: .milliseconds(Int64(RecordWriter.blockMilliseconds) + 50))
        let recordsDeadline = min(deadline - .milliseconds(100), ContinuousClock.now + .milliseconds(Int64(reserve * 1000)))
        while !records.isIdle && ContinuousClock.now < recordsDeadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        recordsTask.cancel()
        await recordsTask.value
        await dispatcherTask.value
        if !records.isIdle || !records.isHealthy {
            logger.notice("job records not yet written stay in the Redis outbox for the next record writer")
        }
        _ = try? await redis.send(RedisCommand(["DEL", queue.keys.worker(consumer)]))
        _ = try? await redis.send(RedisCommand(["ZREM", queue.keys.workers, consumer]))
        let stats = redis.statistics
        let reads = blockingReads.load(ordering: .relaxed)
        redis.close()
        await postgres.close()
        logger.info("stopped", metadata: ["redisCommands": "\(stats.commands + reads)", "redisRoundTrips": "\(stats.roundTrips + reads)",
                                         "recordsWritten": "\(records.recordsWritten)"])
    }

    /// Begins a graceful shutdown (SIGTERM).
    public func shutdown() { stopping.open() }

    /// Stops or resumes taking jobs on this daemon only (control socket `drain`/`undrain`).
    public func setDraining(_ on: Bool) {
        draining.store(on, ordering: .relaxed)
        logger.notice(on ? "draining: this daemon takes no new jobs" : "undrained: taking jobs again")
    }

    /// Applies a re-read configuration: queue sizes, limits and timeouts change at once; new queues
    /// start, removed ones stop taking jobs. Connection URLs and the prefix need a restart.
    public func reload(_ newConfiguration: WorkerConfiguration) async {
        let old = configuration
        var applied = newConfiguration
        if applied.redis != old.redis || applied.postgres != old.postgres {
            logger.warning("redis and postgres settings change only with a restart; keeping the running ones")
            applied.redis = old.redis
            applied.postgres = old.postgres
        }
        config.withLock { $0 = applied }
        services.update(applied)
        pool.setLimits(Dictionary(uniqueKeysWithValues: applied.queues.map { ($0.name, $0.concurrency) }))
        await prepareQueues(applied)
        for q in applied.queues { startFetcher(q.name) }
        logger.notice("configuration reloaded", metadata: ["queues": "\(applied.queues.map { "\($0.name)=\($0.concurrency)" }.joined(separator: ","))"])
    }

    /// Whether Redis answers a PING now.
    public func ping() async throws -> Bool {
        try await redis.send(RedisCommand(["PING"])).string == "PONG"
    }

    /// Current status.
    public func status() -> WorkerStatus {
        let cfg = configuration
        return WorkerStatus(consumer: consumer, draining: isDraining, shuttingDown: isShuttingDown,
                            paused: pausedQueues.withLock { $0 },
                            queues: cfg.queues.map { ($0.name, $0.concurrency, pool.activeCount(queue: $0.name)) },
                            redisConnected: redis.isConnected, postgresHealthy: records.isHealthy,
                            recordsBacklog: records.backlog.count, recordsOldestSeconds: records.backlog.oldestSeconds,
                            recordsDeadLettered: records.recordsDeadLettered)
    }

    /// Outcomes waiting for their observers in `P:outcomes`, and the age of the oldest.
    public func outcomesBacklog() async throws -> (count: Int, oldestSeconds: Double) { try await dispatcher.backlog() }

    /// Sends a command to every daemon through `P:control`.
    public func broadcast(_ fields: [(String, String)]) async throws -> String {
        try await queue.sendControl(fields)
    }

    /// Runs a failed or cancelled job again. Returns the state that refused it, or nil when it was queued.
    public func retry(jobID: String) async throws -> String? {
        var envelope = ""
        var queueName = ""
        var type = ""
        var user = ""
        let hash = try await redis.send(RedisCommand(["HMGET", queue.keys.job(jobID), "queue", "type", "userId", "state"]))
        let values = hash.array ?? []
        if let q = values.first?.string { queueName = q; type = values[1].string ?? ""; user = values[2].string ?? "" }
        // A hash that has expired leaves PostgreSQL's record as the only copy of the envelope.
        let record = queueName.isEmpty ? try await JobRecords(pool: postgres).fetch(id: jobID) : nil
        if queueName.isEmpty, let record {
            queueName = record.queue
            type = record.type
            user = record.userId ?? ""
            envelope = JobEnvelope(id: jobID, type: record.type, payloadJSON: record.payloadJSON ?? "{}", userId: record.userId,
                                   maxAttempts: record.maxAttempts).raw
        }
        guard !queueName.isEmpty else { return "unknown" }
        let created = record.map { Timestamp.format(milliseconds: $0.createdAt) } ?? ""
        let reply = try await queue.scripts.run(Scripts.retry,
                                                keys: [queue.keys.job(jobID), queue.keys.queue(queueName), queue.keys.records, queue.keys.finished],
                                                args: [envelope, Timestamp.now(), queueName, type, user, jobID, created])
        let parts = reply.array ?? []
        if parts.first?.string == "queued" {
            logger.notice("job queued again", metadata: ["jobId": "\(jobID)", "queue": "\(queueName)"])
            return nil
        }
        return parts.count > 1 ? parts[1].string : "unknown"
    }

    /// Cancels a job wherever it is, on this daemon directly (every daemon does the same for `P:control` commands).
    public func cancel(jobID: String) async throws -> CancelResult {
        let result = try await queue.cancel(jobID: jobID)
        switch result.outcome {
        case "active":
            if pool.stop(jobID: jobID, reason: .cancel) {
                logger.info("cancelling running job", metadata: ["jobId": "\(jobID)"])
            }
        case "cancelled":
            if let job = result.job { metrics.jobFinished(queue: job.queue, type: job.type, outcome: "cancelled", seconds: nil) }
        default: break
        }
        return result
    }

    // MARK: - start-up

    private func migrate() async {
        var delay = 250
        let deadline = ContinuousClock.now + .seconds(15)
        while !stopping.isOpen {
            do {
                let applied = try await Migrator.migrate(postgres, migrations: Schema.migrations, lockKey: Schema.lockKey)
                if !applied.isEmpty { logger.notice("database schema migrated", metadata: ["versions": "\(applied)"]) }
                return
            } catch {
                if ContinuousClock.now > deadline {
                    logger.error("cannot migrate the database; starting anyway, records wait until PostgreSQL is back",
                                 metadata: ["error": "\(error)"])
                    Task { [self] in
                        while !stopping.isOpen {
                            try? await Task.sleep(for: .seconds(5))
                            if (try? await Migrator.migrate(postgres, migrations: Schema.migrations, lockKey: Schema.lockKey)) != nil { return }
                        }
                    }
                    return
                }
                try? await Task.sleep(for: .milliseconds(delay))
                delay = min(delay * 2, 2000)
            }
        }
    }

    /// Creates consumer groups and loads the pause state, retrying while Redis is away.
    private func prepareQueues(_ cfg: WorkerConfiguration) async {
        var warned = false
        while !stopping.isOpen {
            do {
                for q in cfg.queues { try await queue.ensureGroup(queue: q.name) }
                let paused = try await queue.pausedQueues()
                pausedQueues.withLock { $0 = paused }
                return
            } catch {
                if !warned { logger.error("cannot reach Redis; retrying", metadata: ["error": "\(error)"]); warned = true }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    private func startFetcher(_ name: String) {
        fetchers.withLock { f in
            guard f[name] == nil, !stopping.isOpen else { return }
            f[name] = Task { [self] in
                await runFetcher(queue: name)
                _ = fetchers.withLock { $0.removeValue(forKey: name) }
            }
        }
    }

    func setPaused(_ queues: Set<String>) {
        let changed = pausedQueues.withLock { p -> Bool in
            defer { p = queues }
            return p != queues
        }
        if changed { logger.notice("paused queues", metadata: ["paused": "\(queues.sorted().joined(separator: ","))"]) }
    }

    func updatePaused(_ queueName: String, paused: Bool) {
        var set = pausedQueues.withLock { $0 }
        if paused { set.insert(queueName) } else { set.remove(queueName) }
        setPaused(set)
    }

    var shutdownGate: Gate { stopping }
}
