import Foundation
import Logging
import PostgresClient
import RedisClient
import ServiceLifecycle
import Synchronization
import WorkerConfig

/// What the daemon reports about itself (control socket `status`, heartbeats).
package struct WorkerStatus: Sendable {
    package var consumer: String
    package var draining: Bool
    package var shuttingDown: Bool
    package var paused: Set<String>
    package var queues: [(name: String, concurrency: Int, active: Int)]
    package var redisConnected: Bool
    package var postgresHealthy: Bool
    /// Records waiting in the outbox (the whole cluster's), and the age of the oldest, as last sampled.
    package var recordsBacklog: Int
    package var recordsOldestSeconds: Double
    /// Records this daemon set aside in `P:records:dead`.
    package var recordsDeadLettered: Int
}

/// The job daemon's core, as a group of services (swift-service-lifecycle): one `Fetcher` per queue
/// takes jobs into the `WorkerPool`, where the `Processor` runs them; the `Rescuer`, `Promoter`,
/// `LeaseKeeper`, `TimeoutEnforcer`, `PauseWatcher`, `StreamTrimmer` and `Heartbeat` keep the queues
/// healthy; the `Scheduler` fires schedules once per cluster; the `ControlListener` applies
/// `P:control`; the `RecordWriter` moves records into PostgreSQL and the `OutcomeDispatcher` runs the
/// observers. Everything but process concerns (signals, sockets, systemd) lives here, so tests can
/// run several workers in one process.
///
/// A graceful shutdown stops them in the reverse of that order: the fetchers first, then the
/// `JobDrain` lets running jobs finish (handing back what does not finish in time) while leases are
/// still renewed and cancels still applied, then maintenance, and the record writer last.
package final class Worker: Sendable {
    package let consumer: String
    package let logger: Logger
    package let metrics: Metrics
    package let queue: JobQueue
    /// Moves records from the outbox into PostgreSQL.
    package let records: RecordWriter
    /// Calls the observers for the outcomes in `P:outcomes`.
    let dispatcher: OutcomeDispatcher
    package let pool: WorkerPool
    let registry: HandlerRegistry
    let redis: RedisConnection
    let postgres: PostgresPool
    let redisConfiguration: RedisConfiguration
    let state: WorkerState
    let commands: JobCommands
    let audit: AuditTrail
    let core: Core
    /// The queues a fetcher runs for now.
    private let fetching = Mutex<Set<String>>([])
    private let group = Mutex<ServiceGroup?>(nil)
    /// What handlers get besides their job.
    package let services: WorkerServices
    /// Blocking reads made by the fetchers (each one round trip), for the round-trips-per-job figure.
    let blockingReads = Counter()

    /// Makes a worker. Connections are opened when `run()` starts.
    package init(
        configuration: WorkerConfiguration, registry: HandlerRegistry = .builtIn(), logger: Logger,
        consumer: String? = nil, observers: [any JobObserver] = []
    ) throws {
        let state = WorkerState(configuration: configuration, logger: logger)
        self.state = state
        self.registry = registry
        self.logger = logger
        self.metrics = Metrics()
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        self.consumer = consumer ?? "\(host)-\(getpid())-\(String(UInt32.random(in: 0...0xFFFF), radix: 16))"
        self.redisConfiguration = try RedisConfiguration(url: configuration.redis.url)
        self.redis = RedisConnection(configuration: redisConfiguration, name: "\(self.consumer)-main")
        let pgConfiguration = try PostgresConfiguration(url: configuration.postgres.url)
        self.postgres = PostgresPool(configuration: pgConfiguration, size: max(configuration.postgres.poolSize, 1))
        self.queue = JobQueue(
            redis: redis, keys: RedisKeys(prefix: configuration.redis.prefix), consumer: self.consumer,
            retentionSeconds: Int(configuration.retention.state), vocabulary: { registry.events(for: $0) })
        let services = WorkerServices(
            configuration: configuration, queue: queue, postgres: postgres,
            redis: redis, metrics: metrics, logger: logger, observers: observers)
        self.services = services
        self.records = RecordWriter(
            keys: queue.keys, consumer: self.consumer, redis: redis, redisConfiguration: redisConfiguration,
            pool: postgres, metrics: metrics, logger: logger,
            lease: { state.configuration.lease }, retentionJobs: { state.configuration.retention.jobs },
            shutdownReserve: { .milliseconds(Int64(JobDrain.reserve(state.configuration.shutdownTimeout) * 1000)) })
        self.dispatcher = OutcomeDispatcher(
            services: services, consumer: self.consumer, redisConfiguration: redisConfiguration,
            lease: { state.configuration.lease })
        self.pool = WorkerPool(limits: Dictionary(uniqueKeysWithValues: configuration.queues.map { ($0.name, $0.concurrency) }))
        self.commands = JobCommands(queue: queue, pool: pool, postgres: postgres, metrics: metrics, logger: logger)
        self.audit = AuditTrail(redis: redis, keys: queue.keys, consumer: self.consumer, logger: logger)
        self.core = Core(
            consumer: self.consumer, logger: logger, metrics: metrics, redis: redis, redisConfiguration: redisConfiguration,
            postgres: postgres, queue: queue, pool: pool, registry: registry, services: services, state: state,
            blockingReads: blockingReads)
    }

    package var configuration: WorkerConfiguration { state.configuration }
    package var isDraining: Bool { state.isDraining }
    /// `ctl sub`: list, add, remove, check and protect subscriptions.
    package var subscriptions: SubscriptionCommands { SubscriptionCommands(services: services) }
    package var isShuttingDown: Bool { state.isShuttingDown }
    package func isPaused(_ queue: String) -> Bool { state.isPaused(queue) }

    /// Waits until the worker consumes its queues.
    package func waitUntilReady() async { await state.ready.wait() }

    /// The services, in start order (a graceful shutdown stops them in the reverse order).
    private func services(_ cfg: WorkerConfiguration) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        func maintain<M: Maintainer>(_ m: M) -> any Service { MaintenanceService(maintainer: m, state: state, logger: logger) }
        let heartbeat = Heartbeat(redis: redis, keys: queue.keys, consumer: consumer, status: { [self] in status() })
        let scheduler = Scheduler(
            redis: redis, queue: queue, services: services, state: state,
            auditor: ControlAuditor(redis: redis, keys: queue.keys, trail: audit), consumer: consumer, logger: logger)
        let list: [any Service] =
            [
                records,
                dispatcher,
                maintain(LeaseKeeper(queue: queue, pool: pool)),
                maintain(heartbeat),
                maintain(TimeoutEnforcer(pool: pool, logger: logger)),
                ControlListener(
                    queue: queue, redis: redis, redisConfiguration: redisConfiguration, commands: commands,
                    subscriptions: SubscriptionCommands(services: services), state: state, consumer: consumer, logger: logger),
                maintain(PauseWatcher(queue: queue, state: state)),
                maintain(Promoter(queue: queue)),
                maintain(Rescuer(queue: queue, pool: pool, logger: logger)),
                maintain(StreamTrimmer(queue: queue, redis: redis)),
                JobDrain(pool: pool, state: state, logger: logger),
                scheduler,
                maintain(YtDlpUpdateScheduler(services: services, consumer: consumer, logger: logger)),
            ] + bullmqServices(cfg, maintain: maintain)
        return list.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
    }

    /// The BullMQ intake of each consumed BullMQ queue and the one mirror of them all (contract section 11).
    private func bullmqServices(_ cfg: WorkerConfiguration, maintain: (BullMQSync) -> any Service) -> [any Service] {
        guard let bullmq = cfg.bullmq, !bullmq.queues.isEmpty else { return [] }
        let queues = bullmq.queues.map { BullMQQueue(settings: $0, bullmq: bullmq, keys: queue.keys, scripts: queue.scripts) }
        for q in bullmq.queues {
            for job in q.jobs where registry.schema(for: job.type) == nil {
                logger.error(
                    "bullmq maps a job name to a type no handler serves; such jobs fail",
                    metadata: ["bullmqQueue": "\(q.name)", "name": "\(job.name)", "type": "\(job.type)"])
            }
        }
        let sync = BullMQSync(
            queues: queues,
            cancel: { [commands, logger] id in
                do { _ = try await commands.cancel(jobID: id) } catch {
                    logger.error(
                        "could not cancel a job removed from BullMQ; trying again at the next run",
                        metadata: ["jobId": "\(id)", "error": "\(error)"])
                }
            }, logger: logger)
        return [maintain(sync)] + queues.map { BullMQIntake(bull: $0, pool: pool, state: state, logger: logger) }
    }

    /// Runs until `shutdown()`, then stops gracefully: no new jobs, running ones get `shutdown_timeout`
    /// to finish, the rest go back to the queue, the records that wait are written. `onReady` is called
    /// once the queues are consumed.
    package func run(onReady: @Sendable () -> Void = {}) async {
        let cfg = configuration
        logger.info(
            "starting",
            metadata: [
                "consumer": "\(consumer)", "redis": "\(redisConfiguration.redactedURL)",
                "queues": "\(cfg.queues.map(\.name).joined(separator: ","))",
            ])
        await migrate()
        await prepareQueues(cfg)
        var groupConfiguration = ServiceGroupConfiguration(services: services(cfg), logger: logger)
        // A hard bound behind the graceful one: every service has had its share of shutdown_timeout by then.
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int64(cfg.shutdownTimeout * 1000) + 5000)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        group.withLock { $0 = serviceGroup }
        for q in cfg.queues { await startFetcher(q.name, in: serviceGroup) }
        if state.isShuttingDown { await serviceGroup.triggerGracefulShutdown() }
        async let running: Void = {
            do { try await serviceGroup.run() } catch {
                logger.error("a service of the daemon failed; stopping", metadata: ["error": "\(error)"])
            }
        }()
        state.ready.open()
        logger.info("ready", metadata: ["consumer": "\(consumer)"])
        Task { [services] in await YtDlpUpdateHandler.startup(services) }
        Task { [services, state, logger] in
            await SubscriptionFileSync(services: services, state: state, logger: logger).run(cfg.subscriptions)
        }
        onReady()
        await running
        await Heartbeat(redis: redis, keys: queue.keys, consumer: consumer, status: { [self] in status() }).remove()
        let stats = redis.statistics
        let reads = blockingReads.count
        redis.close()
        await postgres.close()
        logger.info(
            "stopped",
            metadata: [
                "redisCommands": "\(stats.commands + reads)", "redisRoundTrips": "\(stats.roundTrips + reads)",
                "recordsWritten": "\(records.recordsWritten)",
            ])
    }

    /// Begins a graceful shutdown (SIGTERM).
    package func shutdown() {
        state.stopping.open()
        let serviceGroup = group.withLock { $0 }
        Task { await serviceGroup?.triggerGracefulShutdown() }
    }

    /// Stops or resumes taking jobs on this daemon only (control socket `drain`/`undrain`).
    package func setDraining(_ on: Bool) {
        state.setDraining(on)
        logger.notice(on ? "draining: this daemon takes no new jobs" : "undrained: taking jobs again")
    }

    /// Applies a re-read configuration: queue sizes, limits and timeouts change at once; new queues
    /// start, removed ones stop taking jobs. Connection URLs and the prefix need a restart.
    package func reload(_ newConfiguration: WorkerConfiguration) async {
        let old = configuration
        var applied = newConfiguration
        if applied.redis != old.redis || applied.postgres != old.postgres {
            logger.warning("redis and postgres settings change only with a restart; keeping the running ones")
            applied.redis = old.redis
            applied.postgres = old.postgres
        }
        if applied.bullmq != old.bullmq {
            logger.warning("bullmq settings change only with a restart; keeping the running ones")
            applied.bullmq = old.bullmq
        }
        state.setConfiguration(applied)
        services.update(applied)
        pool.setLimits(Dictionary(uniqueKeysWithValues: applied.queues.map { ($0.name, $0.concurrency) }))
        await prepareQueues(applied)
        if let serviceGroup = group.withLock({ $0 }) {
            for q in applied.queues { await startFetcher(q.name, in: serviceGroup) }
        }
        if applied.subscriptions != old.subscriptions {
            let subscriptions = applied.subscriptions
            Task { [services, state, logger] in
                await SubscriptionFileSync(services: services, state: state, logger: logger).run(subscriptions)
            }
        }
        logger.notice(
            "configuration reloaded",
            metadata: ["queues": "\(applied.queues.map { "\($0.name)=\($0.concurrency)" }.joined(separator: ","))"])
    }

    /// Whether Redis answers a PING now.
    package func ping() async throws -> Bool {
        try await redis.send(RedisCommand(["PING"])).string == "PONG"
    }

    /// Current status.
    package func status() -> WorkerStatus {
        let cfg = configuration
        return WorkerStatus(
            consumer: consumer, draining: isDraining, shuttingDown: isShuttingDown,
            paused: state.paused,
            queues: cfg.queues.map { ($0.name, $0.concurrency, pool.activeCount(queue: $0.name)) },
            redisConnected: redis.isConnected, postgresHealthy: records.isHealthy,
            recordsBacklog: records.backlog.count, recordsOldestSeconds: records.backlog.oldestSeconds,
            recordsDeadLettered: records.recordsDeadLettered)
    }

    /// Outcomes waiting for their observers in `P:outcomes`, and the age of the oldest.
    package func outcomesBacklog() async throws -> (count: Int, oldestSeconds: Double) { try await dispatcher.backlog() }

    /// Sends a command to every daemon through `P:control`.
    package func broadcast(_ fields: [(String, String)]) async throws -> String {
        try await queue.sendControl(fields)
    }

    /// Runs a failed or cancelled job again. Returns the state that refused it, or nil when it was queued.
    package func retry(jobID: String) async throws -> String? { try await commands.retry(jobID: jobID) }

    /// Cancels a job wherever it is, on this daemon directly (every daemon does the same for `P:control` commands).
    package func cancel(jobID: String) async throws -> CancelResult { try await commands.cancel(jobID: jobID) }

    /// Writes one control action to the audit trail and the log.
    package func recordAudit(_ entry: AuditEntry) async { await audit.record(entry) }

    /// The leader and every configured schedule with its last and next tick (for `status`).
    /// The consumed BullMQ queues' counts (none without a `bullmq` section).
    package func bullmqOverview() async throws -> [BullMQOverview] {
        guard let bullmq = configuration.bullmq else { return [] }
        var out: [BullMQOverview] = []
        for settings in bullmq.queues {
            out.append(
                try await BullMQQueue(settings: settings, bullmq: bullmq, keys: queue.keys, scripts: queue.scripts).overview(redis: redis))
        }
        return out
    }

    package func scheduleOverview() async throws -> (leader: String?, schedules: [ScheduleOverview]) {
        let auditor = ControlAuditor(redis: redis, keys: queue.keys, trail: audit)
        return try await Scheduler(
            redis: redis, queue: queue, services: services, state: state, auditor: auditor,
            consumer: consumer, logger: logger
        ).scheduleOverview()
    }

    // MARK: - start-up

    private func migrate() async {
        var delay = 250
        let deadline = ContinuousClock.now + .seconds(15)
        while !state.isShuttingDown {
            do {
                let applied = try await Migrator.migrate(postgres, migrations: Schema.migrations, lockKey: Schema.lockKey)
                if !applied.isEmpty { logger.notice("database schema migrated", metadata: ["versions": "\(applied)"]) }
                return
            } catch {
                if ContinuousClock.now > deadline {
                    logger.error(
                        "cannot migrate the database; starting anyway, records wait until PostgreSQL is back",
                        metadata: ["error": "\(error)"])
                    Task { [self] in
                        while !state.isShuttingDown {
                            try? await Task.sleep(for: .seconds(5))
                            if (try? await Migrator.migrate(postgres, migrations: Schema.migrations, lockKey: Schema.lockKey)) != nil {
                                return
                            }
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
        while !state.isShuttingDown {
            do {
                for q in cfg.queues { try await queue.ensureGroup(queue: q.name) }
                state.setPaused(try await queue.pausedQueues())
                return
            } catch {
                if !warned { logger.error("cannot reach Redis; retrying", metadata: ["error": "\(error)"]); warned = true }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Adds a fetcher for `name` unless one runs; it ends by itself when the queue leaves the configuration.
    private func startFetcher(_ name: String, in serviceGroup: ServiceGroup) async {
        guard fetching.withLock({ $0.insert(name).inserted }) else { return }
        let fetcher = QueueFetcher(
            fetcher: Fetcher(queue: name, core: core), onEnd: { [self] in _ = fetching.withLock { $0.remove(name) } })
        await serviceGroup.addServiceUnlessShutdown(
            .init(
                service: fetcher, successTerminationBehavior: .ignore,
                failureTerminationBehavior: .ignore))
    }
}

/// A fetcher that says when it ended (so a queue added again by a reload gets a new one).
private struct QueueFetcher: Service, CustomStringConvertible {
    let fetcher: Fetcher
    let onEnd: @Sendable () -> Void
    var description: String { fetcher.description }
    func run() async {
        await fetcher.run()
        onEnd()
    }
}
