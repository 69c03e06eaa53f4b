import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import WorkerConfig

/// When schedules are due: pure arithmetic on epoch milliseconds, the same on every host.
///
/// `every:` schedules tick at whole multiples of their interval since the Unix epoch (an `every: 2m`
/// schedule fires at :00, :02, :04 … on every host, whenever the daemons started); `cron:` schedules
/// tick at the minutes their expression names, in the daemon's time zone (`TZ`, UTC by default under
/// systemd). A schedule fires the latest tick after the one it fired last; ticks missed while no
/// daemon ran are folded into that one run.
package enum ScheduleTiming {
    /// A schedule's timetable.
    package enum Spec: Sendable, Equatable, CustomStringConvertible {
        /// Every so many milliseconds, aligned to the epoch.
        case every(milliseconds: Int64)
        /// At the minutes a cron expression names.
        case cron(CronExpression)

        /// The timetable of a configured schedule; nil when it has neither `cron` nor `every`.
        package init?(_ settings: ScheduleSettings) {
            if let every = settings.every, every > 0 {
                self = .every(milliseconds: max(Int64((every * 1000).rounded()), 1))
            } else if let cron = settings.cronExpression {
                self = .cron(cron)
            } else {
                return nil
            }
        }

        /// `every 2m` or `cron */15 * * * *`.
        package var description: String {
            switch self {
            case .every(let ms): return "every \(Self.describe(milliseconds: ms))"
            case .cron(let expression): return "cron \(expression.text)"
            }
        }

        static func describe(milliseconds ms: Int64) -> String {
            if ms % 86_400_000 == 0 { return "\(ms / 86_400_000)d" }
            if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
            if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
            if ms % 1000 == 0 { return "\(ms / 1000)s" }
            return "\(ms)ms"
        }
    }

    /// A tick to fire now.
    package struct Due: Sendable, Equatable {
        /// The tick, epoch milliseconds: the latest one at or before now.
        package var tick: Int64
        /// Ticks after the last fired one and before `tick` that are folded into this run (a lower
        /// bound for cron schedules idle for a long time).
        package var skipped: Int

        package init(tick: Int64, skipped: Int) {
            self.tick = tick
            self.skipped = skipped
        }
    }

    /// The tick to fire at `now` for a schedule that last fired the tick `last`; nil when nothing
    /// is due (no tick in `(last, now]`).
    package static func due(_ spec: Spec, last: Int64, now: Int64, timeZone: TimeZone = .current) -> Due? {
        guard now > last else { return nil }
        switch spec {
        case .every(let interval):
            let latest = now - positiveModulo(now, interval)
            guard latest > last else { return nil }
            let skipped = (latest / interval - 1) - floorDivide(last, interval)
            return Due(tick: latest, skipped: Int(max(skipped, 0)))
        case .cron:
            // Look back over growing windows, so a schedule that fires every minute costs a few
            // dozen steps however long the cluster was down.
            let hour: Int64 = 3_600_000
            for window in [hour, 24 * hour, 32 * 24 * hour, 367 * 24 * hour, 8 * 366 * 24 * hour] {
                let start = max(last, now - window)
                var latest: Int64?
                var count = 0
                var cursor = start
                while count < 600_000, let t = next(after: cursor, spec: spec, timeZone: timeZone), t <= now {
                    latest = t
                    count += 1
                    cursor = t
                }
                if let latest { return Due(tick: latest, skipped: count - 1) }
                if start == last { return nil }
            }
            return nil
        }
    }

    /// The first tick strictly after `time` (epoch ms); nil for a cron expression that never fires again.
    package static func next(after time: Int64, spec: Spec, timeZone: TimeZone = .current) -> Int64? {
        switch spec {
        case .every(let interval):
            return (floorDivide(time, interval) + 1) * interval
        case .cron(let expression):
            let date = Date(timeIntervalSince1970: Double(time) / 1000)
            return expression.next(after: date, timeZone: timeZone).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
        }
    }

    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    static func positiveModulo(_ a: Int64, _ b: Int64) -> Int64 {
        let r = a % b
        return r < 0 ? r + b : r
    }
}

extension RedisKeys {
    /// `P:schedule:<name>`: a schedule's state: `last` (the last tick fired, epoch ms), `lastJobId`,
    /// `firedAt`, `firedBy`, `spec`.
    package func schedule(_ name: String) -> String { "\(prefix):schedule:\(name)" }
}

/// A schedule as the control socket's `status` shows it.
package struct ScheduleOverview: Sendable {
    package var name: String
    /// `every 2m` or `cron */15 * * * *`.
    package var spec: String
    package var jobType: String
    package var queue: String
    /// The last tick fired (epoch ms), if any.
    package var lastTick: Int64?
    /// The job enqueued for it.
    package var lastJobID: String?
    /// The next tick (epoch ms).
    package var nextTick: Int64?
}

extension Worker {
    /// The deterministic job id of a schedule's tick: a tick fired twice (two leaders for a moment,
    /// a leader that died between enqueueing and recording) is still one job, since the queue runs
    /// an id once.
    package static func scheduledJobID(schedule: String, tick: Int64) -> String {
        "schedule:\(schedule):\(tick)"
    }
}

/// Fires the schedules once per cluster: on every daemon it takes or keeps the leader lease, and
/// the leader fires the due schedules (a job id per tick, so a tick runs once) and records
/// `P:control` commands in the audit trail.
struct Scheduler: Service, CustomStringConvertible {
    let redis: RedisConnection
    let queue: JobQueue
    let services: WorkerServices
    let state: WorkerState
    let auditor: ControlAuditor
    let consumer: String
    let logger: Logger

    var description: String { "scheduler" }
    var configuration: WorkerConfiguration { state.configuration }

    /// Records the fire of a tick, only forward.
    /// KEYS: 1 schedule hash. ARGV: 1 tick ms, 2 job id, 3 now (RFC 3339), 4 consumer, 5 spec.
    /// Returns 1 when recorded, 0 when this or a later tick was recorded already.
    static let recordFireScript = """
        local cur = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1')
        if tonumber(ARGV[1]) <= cur then return 0 end
        redis.call('HSET', KEYS[1], 'last', ARGV[1], 'lastJobId', ARGV[2], 'firedAt', ARGV[3], 'firedBy', ARGV[4], 'spec', ARGV[5])
        return 1
        """

    /// The cluster's leader duties, on every daemon: take or keep the leader lease `P:leader`
    /// (`lease` long, renewed every third of it; a follower tries every sixth, at most each second),
    /// and while leading fire the due schedules and record `P:control` commands in the audit trail.
    /// At shutdown the lease is given up so another daemon takes over at once.
    func run() async {
        await cancelWhenGracefulShutdown { [self] in await lead() }
    }

    private func lead() async {
        let elector = LeaderElector(redis: redis, scripts: queue.scripts, key: queue.keys.leader, identity: consumer)
        var leading = false
        var validUntil = ContinuousClock.now
        var lastAttempt: ContinuousClock.Instant?
        var lastAudit: ContinuousClock.Instant?
        var cache = ScheduleCache()
        let ticker = SubscriptionTicker(redis: redis, queue: queue, services: services, consumer: consumer, logger: logger)
        var subscriptions = SubscriptionTicker.Cache()
        var failing: Set<String> = []
        let timeZone = TimeZone.current

        func attempt(_ what: String, _ body: () async throws -> Void) async {
            do {
                try await body()
                if failing.remove(what) != nil { logger.notice("schedules: \(what) works again") }
            } catch {
                if failing.insert(what).inserted {
                    logger.error("schedules: \(what) failed; retrying", metadata: ["error": "\(error)"])
                }
            }
        }

        while !Task.isCancelled {
            // Shutting down: fire nothing more and let another host lead; end when the service group
            // stops the scheduler in its turn (see `Fetcher`).
            if state.isShuttingDown {
                if leading { await elector.release() }
                leading = false
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            let cfg = configuration
            let leaseMs = Int(max(cfg.lease, 2) * 1000)
            let pollMs = min(max(leaseMs / 6, 100), 1000)
            let now = ContinuousClock.now
            let every = leading ? leaseMs / 3 : pollMs
            if lastAttempt.map({ now - $0 >= .milliseconds(every) }) ?? true {
                lastAttempt = now
                await attempt("keeping the leader lease") {
                    let held =
                        leading
                        ? try await elector.renew(milliseconds: leaseMs)
                        : try await elector.acquire(milliseconds: leaseMs)
                    if held {
                        validUntil = now + .milliseconds(leaseMs * 9 / 10)
                        if !leading {
                            leading = true
                            cache = ScheduleCache()
                            subscriptions = SubscriptionTicker.Cache()
                            logger.notice(
                                "leading the cluster: this daemon fires the schedules",
                                metadata: ["schedules": "\(cfg.schedules.map(\.name).joined(separator: ","))"])
                        }
                    } else if leading {
                        leading = false
                        logger.notice("another daemon leads the cluster now; schedules fire there")
                    }
                }
                if leading && ContinuousClock.now >= validUntil {
                    leading = false
                    logger.warning("leader lease could not be renewed; not firing schedules until it is taken again")
                }
            }

            var sleepMs = leading ? min(leaseMs / 3, 1000) : pollMs
            if leading && ContinuousClock.now < validUntil {
                await attempt("firing schedules") {
                    let wait = try await fireDueSchedules(cfg.schedules, cache: &cache, timeZone: timeZone)
                    sleepMs = min(sleepMs, wait)
                }
                await attempt("enqueueing subscription checks") {
                    let wait = try await ticker.fire(&subscriptions)
                    sleepMs = min(sleepMs, wait)
                }
                if lastAudit.map({ ContinuousClock.now - $0 >= .seconds(1) }) ?? true {
                    lastAudit = ContinuousClock.now
                    await attempt("recording control commands in the audit trail") {
                        try await auditor.auditControlStream()
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(max(sleepMs, 10)))
        }
        if leading { await elector.release() }
    }

    /// What the leader knows of each schedule between two reads of `P:schedule:<name>`.
    struct ScheduleCache {
        var last: [String: Int64] = [:]
        var spec: [String: String] = [:]
        var next: [String: Int64] = [:]
        var loadedAt: ContinuousClock.Instant?
    }

    /// Fires every schedule with a tick due; returns the milliseconds until the next tick (at most 1000).
    func fireDueSchedules(_ schedules: [ScheduleSettings], cache: inout ScheduleCache, timeZone: TimeZone) async throws -> Int {
        guard !schedules.isEmpty else { return 1000 }
        // Re-read the persisted state now and then: another leader may have fired meanwhile.
        if cache.loadedAt.map({ ContinuousClock.now - $0 > .seconds(30) }) ?? true {
            cache = ScheduleCache()
            cache.loadedAt = .now
        }
        let nowMs = Timestamp.nowMilliseconds()
        var wait: Int64 = 1000
        for schedule in schedules {
            guard let spec = ScheduleTiming.Spec(schedule) else { continue }
            let specText = spec.description
            if cache.last[schedule.name] == nil || cache.spec[schedule.name] != specText {
                cache.last[schedule.name] = try await loadLastTick(schedule.name, spec: specText, now: nowMs)
                cache.spec[schedule.name] = specText
                cache.next[schedule.name] = nil
            }
            let last = cache.last[schedule.name]!
            if let next = cache.next[schedule.name], next > nowMs {
                wait = min(wait, next - nowMs)
                continue
            }
            if let due = ScheduleTiming.due(spec, last: last, now: nowMs, timeZone: timeZone) {
                try await fire(schedule, spec: specText, due: due)
                cache.last[schedule.name] = due.tick
            }
            let next = ScheduleTiming.next(after: cache.last[schedule.name]!, spec: spec, timeZone: timeZone) ?? Int64.max
            cache.next[schedule.name] = next
            if next > nowMs { wait = min(wait, next - nowMs) } else { wait = 0 }
        }
        return Int(max(wait, 5))
    }

    /// The last tick a schedule fired. A schedule seen for the first time starts from now: it fires
    /// at its next tick, not for the past.
    private func loadLastTick(_ name: String, spec: String, now: Int64) async throws -> Int64 {
        let key = queue.keys.schedule(name)
        let replies = try await redis.pipeline([
            RedisCommand(["HSETNX", key, "last", String(now)]),
            RedisCommand(["HSETNX", key, "spec", spec]),
            RedisCommand(["HGET", key, "last"]),
        ])
        if replies[0].int == 1 {
            logger.info("schedule registered; it fires at its next tick", metadata: ["schedule": "\(name)", "spec": "\(spec)"])
        }
        return replies[2].int ?? now
    }

    /// Enqueues a schedule's job for one tick, then records the tick.
    private func fire(_ schedule: ScheduleSettings, spec: String, due: ScheduleTiming.Due) async throws {
        let id = Worker.scheduledJobID(schedule: schedule.name, tick: due.tick)
        let envelope = JobEnvelope(id: id, type: schedule.job.type, payloadJSON: schedule.job.payloadJSON)
        try await services.enqueue(envelope, queue: schedule.job.queue)
        _ = try await queue.scripts.run(
            Self.recordFireScript, keys: [queue.keys.schedule(schedule.name)],
            args: [String(due.tick), id, Timestamp.now(), consumer, spec])
        var metadata: Logger.Metadata = [
            "schedule": "\(schedule.name)", "jobId": "\(id)", "queue": "\(schedule.job.queue)",
            "tick": "\(Timestamp.format(milliseconds: due.tick))",
        ]
        if due.skipped > 0 {
            metadata["missedTicks"] = "\(due.skipped)"
            logger.notice("schedule fired once for the ticks missed while no daemon led the cluster", metadata: metadata)
        } else {
            logger.info("schedule fired", metadata: metadata)
        }
    }

    /// The leader and every configured schedule with its last and next tick (for `status`).
    func scheduleOverview() async throws -> (leader: String?, schedules: [ScheduleOverview]) {
        let schedules = configuration.schedules
        var commands: [RedisCommand] = [RedisCommand(["GET", queue.keys.leader])]
        for s in schedules { commands.append(RedisCommand(["HMGET", queue.keys.schedule(s.name), "last", "lastJobId"])) }
        let replies = try await redis.pipeline(commands)
        let leader = replies[0].string
        var out: [ScheduleOverview] = []
        for (i, s) in schedules.enumerated() {
            let values = replies[i + 1].array ?? []
            let last = values.first?.int
            let spec = ScheduleTiming.Spec(s)
            let next = spec.flatMap { ScheduleTiming.next(after: last ?? Timestamp.nowMilliseconds(), spec: $0) }
            out.append(
                ScheduleOverview(
                    name: s.name, spec: spec?.description ?? "", jobType: s.job.type, queue: s.job.queue,
                    lastTick: last, lastJobID: values.count > 1 ? values[1].string : nil, nextTick: next))
        }
        return (leader, out)
    }
}
