import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization
import WorkerConfig

/// One queue's intake, as a service: waits for a free slot, honours pause, drain and the shared
/// start rate limit, reads new entries through the consumer group, validates them against their
/// type's schema (refusing bad ones), takes the good ones into job state with one script per batch,
/// and starts those to run in the pool. It stops at a graceful shutdown (first of all services) or
/// when its queue is removed from the configuration. Stalled jobs come back through the `Rescuer`.
struct Fetcher: Service, CustomStringConvertible {
    /// Longest a blocking read waits, so that pause, drain and shutdown are seen quickly.
    static let blockMilliseconds = 500

    let name: String
    let queue: JobQueue
    let pool: WorkerPool
    let registry: HandlerRegistry
    let services: WorkerServices
    let metrics: Metrics
    let state: WorkerState
    let consumer: String
    let logger: Logger
    let redisConfiguration: RedisConfiguration
    /// Blocking reads made (each one round trip), for the round-trips-per-job figure.
    let blockingReads: Counter
    let processor: Processor

    var description: String { "fetcher \(name)" }

    init(queue name: String, core: Core) {
        self.name = name
        self.queue = core.queue
        self.pool = core.pool
        self.registry = core.registry
        self.services = core.services
        self.metrics = core.metrics
        self.state = core.state
        self.consumer = core.consumer
        var log = core.logger
        log[metadataKey: "queue"] = "\(name)"
        self.logger = log
        self.redisConfiguration = core.redisConfiguration
        self.blockingReads = core.blockingReads
        self.processor = Processor(
            queue: core.queue, registry: core.registry, metrics: core.metrics, logger: core.logger,
            services: core.services, consumer: core.consumer,
            isShuttingDown: { [state = core.state] in state.isShuttingDown })
    }

    func run() async {
        let connection = blockingConnection(
            redisConfiguration, name: "\(consumer)-fetch-\(name)", blockMilliseconds: Self.blockMilliseconds)
        defer { connection.close() }
        await cancelWhenGracefulShutdown { [self] in
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { admissions in
                    await fetchLoop(connection: connection, admissions: &admissions)
                }
            } onCancel: {
                connection.close()  // interrupts a blocking read at once
            }
        }
    }

    private func fetchLoop(connection: RedisConnection, admissions: inout DiscardingTaskGroup) async {
        var failures = 0
        let log = logger
        while !Task.isCancelled {
            // Shutting down: take nothing more, and end only when the service group stops this fetcher
            // in its turn (it cancels the task). A service that ended before its turn would make the
            // group cancel every service, the job drain that hands running jobs back among them.
            if state.isShuttingDown {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            guard let settings = state.configuration.queue(named: name) else {
                log.notice("queue removed from the configuration; no longer taking its jobs")
                return
            }
            if state.isPaused(name) || state.isDraining {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            await pool.waitForSlot(queue: name)
            if Task.isCancelled { break }
            var free = pool.freeSlots(queue: name)
            if free == 0 { continue }
            // A busy queue whose jobs end one at a time would be read one entry at a time, and stay
            // in that rhythm: give it up to 2 ms to gather an eighth of its slots so batches re-form.
            let batch = settings.concurrency / 8
            var gathered = 0
            while free < batch && gathered < 8 && !Task.isCancelled {
                try? await Task.sleep(for: .microseconds(250))
                free = pool.freeSlots(queue: name)
                gathered += 1
            }
            if free == 0 { continue }
            do {
                var token: String?
                if let limit = settings.rateLimit {
                    let t = "\(consumer):\(UInt64.random(in: 0...UInt64.max))"
                    let wait = try await queue.takeStart(queue: name, max: limit.max, perSeconds: limit.per, token: t)
                    if wait > 0 {
                        try? await Task.sleep(for: .milliseconds(min(wait, 1000)))
                        continue
                    }
                    token = t
                    free = 1
                }
                var entries: [StreamEntry] = []
                entries = try await queue.read(queue: name, count: free, blockMilliseconds: Self.blockMilliseconds, on: connection)
                blockingReads.add(1)
                if entries.isEmpty {
                    if let token { try await queue.returnStart(queue: name, token: token) }
                    failures = 0
                    continue
                }
                if state.isPaused(name) || state.isDraining || state.isShuttingDown {
                    try await queue.handBack(queue: name, entries: entries)
                    if let token { try await queue.returnStart(queue: name, token: token) }
                    continue
                }
                // Admit this batch while the next one is read: the slots stay reserved until then.
                pool.reserve(queue: name, count: entries.count)
                admissions.addTask { [self] in
                    let started = await admit(entries, queue: name, settings: settings, log: log)
                    pool.release(queue: name, count: entries.count - started)
                }
                failures = 0
            } catch RedisError.server(let message) where message.hasPrefix("NOGROUP") {
                try? await queue.ensureGroup(queue: name)
            } catch {
                if Task.isCancelled { break }
                if state.isShuttingDown { continue }
                failures += 1
                if failures == 1 { log.error("cannot read the queue; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 5)), 2000)))
            }
        }
    }

    /// Validates entries, refuses bad ones, and takes the good ones into job state; starts those to run,
    /// each in one of the slots reserved for the batch. Returns how many it started.
    @discardableResult
    func admit(_ entries: [StreamEntry], queue name: String, settings: QueueSettings, log: Logger) async -> Int {
        var valid: [(entry: StreamEntry, envelope: JobEnvelope)] = []
        for entry in entries {
            switch EnvelopeParser.parse(fields: entry.fields, schema: registry.schema(for:)) {
            case .failure(let rejection):
                await refuse(rejection, entry: entry, queue: name, log: log)
            case .success(let envelope):
                // An entry of a job running here already (our own, taken back after a Redis outage): leave it.
                if pool.isRunning(jobID: envelope.id) { continue }
                valid.append((entry, envelope))
            }
        }
        guard !valid.isEmpty else { return 0 }

        let policy = RetryPolicy(initial: settings.backoff.initial, maximum: settings.backoff.max)
        let items = valid.map {
            (
                entry: $0.entry, envelope: $0.envelope, queue: name,
                maxAttempts: $0.envelope.maxAttempts ?? settings.maxAttempts
            )
        }
        let outcomes: [Result<IntakeOutcome, RedisError>]
        do {
            outcomes = try await queue.intake(items)
        } catch {
            log.error("could not take jobs in; they will be taken over after their lease lapses", metadata: ["error": "\(error)"])
            return 0
        }
        let cfg = state.configuration
        var started = 0
        for (item, outcome) in zip(items, outcomes) {
            let descriptor = JobDescriptor(envelope: item.envelope, queue: name, events: registry.events(for: item.envelope.type))
            let createdAt = item.entry.addedAtMilliseconds ?? Timestamp.nowMilliseconds()
            switch outcome {
            case .success(.run(let attempt)):
                let held = HeldJob(
                    descriptor: descriptor, envelope: item.envelope, entryID: item.entry.id, attempt: attempt,
                    maxAttempts: item.maxAttempts, createdAt: Timestamp.format(milliseconds: createdAt))
                let context = JobContext(
                    job: descriptor, envelope: item.envelope, attempt: attempt, maxAttempts: item.maxAttempts,
                    logger: log, temporaryRoot: cfg.paths.temp, services: services)
                let timeout = Double(item.envelope.timeoutSeconds ?? 0) > 0 ? Double(item.envelope.timeoutSeconds!) : settings.timeout
                let running = RunningJob(held: held, timeoutSeconds: timeout, context: context)
                pool.start(running, reserved: true) { [processor, pool] job in
                    await processor.process(job, retry: policy, handlerReturned: { pool.handlerReturned(job) })
                }
                started += 1
            case .success(.scheduled):
                log.debug("job scheduled for its runAt", metadata: ["jobId": "\(descriptor.id)"])
            case .success(.cancelled):
                metrics.jobFinished(queue: name, type: descriptor.type, outcome: JobOutcome.cancelled.metricLabel, seconds: nil)
            case .success(.exhausted):
                metrics.jobFinished(queue: name, type: descriptor.type, outcome: JobOutcome.failed.metricLabel, seconds: nil)
                log.error("job failed: its daemon stopped during the last attempt", metadata: ["jobId": "\(descriptor.id)"])
            case .success(.alreadyFinished(let state)):
                log.info(
                    "job id already finished earlier; not running it again", metadata: ["jobId": "\(descriptor.id)", "state": "\(state)"])
            case .success(.duplicate):
                log.info("job id already queued or running; duplicate entry dropped", metadata: ["jobId": "\(descriptor.id)"])
            case .failure(let error):
                log.error(
                    "could not take a job in; it will be taken over after its lease lapses",
                    metadata: ["jobId": "\(descriptor.id)", "error": "\(error)"])
            }
        }
        return started
    }

    /// Records a refused entry in Redis (when it has an id) and always in PostgreSQL (through the outbox), and acknowledges it.
    func refuse(_ rejection: EnvelopeRejection, entry: StreamEntry, queue name: String, log: Logger) async {
        log.warning(
            "refused an invalid job entry",
            metadata: [
                "entry": "\(entry.id)", "jobId": "\(rejection.id ?? "")",
                "error": "\(rejection.reason)",
            ])
        do {
            guard try await queue.reject(rejection, entry: entry, queue: name) else {
                log.warning(
                    "the refused entry reuses the id of an existing job; that job is left as it is",
                    metadata: ["jobId": "\(rejection.id ?? "")"])
                return
            }
        } catch {
            log.error("could not record a refused entry; it will be looked at again after its lease", metadata: ["error": "\(error)"])
            return
        }
        metrics.jobFinished(queue: name, type: rejection.type ?? "invalid", outcome: JobOutcome.failed.metricLabel, seconds: nil)
    }
}
