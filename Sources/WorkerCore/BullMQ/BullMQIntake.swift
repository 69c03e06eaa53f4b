import Foundation
import JSON
import Logging
import RedisClient
import ServiceLifecycle
import Synchronization
import WorkerConfig

/// The Redis side of one consumed BullMQ queue: its keys, and the intake's scripts.
struct BullMQQueue: Sendable {
    let settings: BullMQQueueSettings
    let bullmq: BullMQSettings
    let keys: RedisKeys
    let scripts: ScriptRunner
    /// The lock token of every daemon of this cluster: any of them renews the locks of held jobs.
    let token: String

    init(settings: BullMQQueueSettings, bullmq: BullMQSettings, keys: RedisKeys, scripts: ScriptRunner) {
        self.settings = settings
        self.bullmq = bullmq
        self.keys = keys
        self.scripts = scripts
        self.token = "medianest-worker:\(keys.prefix)"
    }

    /// `<prefix>:<queue>:`, the start of every key of the BullMQ queue.
    var base: String { "\(bullmq.prefix):\(settings.name):" }
    var lockMilliseconds: String { String(Int(bullmq.lockDuration * 1000)) }
    var held: String { keys.bullmqHeld(settings.name) }

    /// What a take found: the jobs, and whether our stream had room for more (false: it holds enough unread).
    struct Taken {
        var jobs: [BullMQJob]
        var room: Bool
    }

    /// Takes up to `count` jobs (less what our stream holds unread) into BullMQ's active list for us.
    /// Returns nil when the queue is paused.
    func take(count: Int, group: String) async throws -> Taken? {
        let reply = try await scripts.run(
            BullMQScripts.take, keys: [held, keys.queue(settings.queue)],
            args: [base, String(Timestamp.nowMilliseconds()), String(count), token, lockMilliseconds, group])
        let parts = reply.array ?? []
        if parts.first?.int == 1 { return nil }
        guard parts.count > 2, let rows = parts[1].array else { return Taken(jobs: [], room: true) }
        let jobs: [BullMQJob] = rows.compactMap { row in
            guard let f = row.array, f.count == 5 else { return nil }
            return BullMQJob(
                id: f[0].string ?? "", name: f[1].string ?? "", data: f[2].string ?? "", opts: f[3].string ?? "",
                attemptsMade: Int(f[4].string ?? "0") ?? 0)
        }
        return Taken(jobs: jobs, room: (parts[2].int ?? 0) > 0)
    }

    /// What handing a job to our stream did.
    enum Handed: Int { case lockLost = 0, handed = 1, ranBefore = 2 }

    /// Hands taken jobs to our stream.
    func admit(_ jobs: [(id: String, envelope: String)]) async throws -> [Handed] {
        guard !jobs.isEmpty else { return [] }
        let ourID = BullMQJobMapper.jobID(queue: settings.name, id: "")
        let reply = try await scripts.run(
            BullMQScripts.admit, keys: [held, keys.queue(settings.queue), keys.finished],
            args: [base, token, String(Timestamp.nowMilliseconds()), keys.job(ourID), ourID] + jobs.flatMap { [$0.id, $0.envelope] })
        return (reply.array ?? []).map { Handed(rawValue: Int($0.int ?? 0)) ?? .lockLost }
    }

    /// Fails taken jobs that cannot become ours, with the reason as failedReason.
    func refuse(_ jobs: [(id: String, reason: String)]) async throws {
        guard !jobs.isEmpty else { return }
        _ = try await scripts.run(
            BullMQScripts.refuse, keys: [held],
            args: [base, token, String(Timestamp.nowMilliseconds())] + jobs.flatMap { [$0.id, $0.reason] })
    }

    /// Mirrors our state of every held job into BullMQ. Returns the ids BullMQ no longer has (removed) and
    /// how many jobs were finished there.
    func sync() async throws -> (removed: [String], finished: Int) {
        let reply = try await scripts.run(
            BullMQScripts.sync, keys: [held, keys.scheduled],
            args: [
                base, keys.job(BullMQJobMapper.jobID(queue: settings.name, id: "")), String(Timestamp.nowMilliseconds()), token,
                lockMilliseconds, BullMQJobMapper.jobID(queue: settings.name, id: ""),
            ])
        let parts = reply.array ?? []
        let removed = (parts.first?.array ?? []).compactMap(\.string)
        return (removed, parts.count > 1 ? Int(parts[1].int ?? 0) : 0)
    }

    /// What `ctl status` shows of the BullMQ queue: its own counts and how many of its jobs are ours now.
    func overview(redis: RedisConnection) async throws -> BullMQOverview {
        let replies = try await redis.pipeline([
            RedisCommand(["HGET", base + "meta", "paused"]), RedisCommand(["LLEN", base + "wait"]),
            RedisCommand(["ZCARD", base + "prioritized"]), RedisCommand(["ZCARD", base + "delayed"]),
            RedisCommand(["LLEN", base + "active"]), RedisCommand(["SCARD", held]),
            RedisCommand(["ZCARD", base + "completed"]), RedisCommand(["ZCARD", base + "failed"]),
        ])
        func n(_ i: Int) -> Int { Int(replies[i].int ?? 0) }
        return BullMQOverview(
            name: settings.name, queue: settings.queue, paused: replies[0].string != nil, waiting: n(1) + n(2), delayed: n(3),
            active: n(4), held: n(5), completed: n(6), failed: n(7))
    }

    /// The stalled check (at most once per lock duration in the cluster). Returns jobs put back and failed.
    func stalledCheck() async throws -> (back: Int, failed: Int) {
        let reply = try await scripts.run(
            BullMQScripts.stalledCheck, keys: [held],
            args: [base, String(Timestamp.nowMilliseconds()), lockMilliseconds, String(bullmq.maxStalled)])
        let parts = reply.array ?? []
        return (Int(parts.first?.int ?? 0), parts.count > 1 ? Int(parts[1].int ?? 0) : 0)
    }
}

/// A consumed BullMQ queue's counts, for `ctl status`.
package struct BullMQOverview: Sendable {
    package var name: String
    package var queue: String
    package var paused: Bool
    /// In `wait` and `prioritized`.
    package var waiting: Int
    package var delayed: Int
    package var active: Int
    /// Handed to our stream and followed by the daemons.
    package var held: Int
    package var completed: Int
    package var failed: Int
}

/// One BullMQ queue's intake, as a service (contract section 11): while our queue has free slots on
/// this daemon beyond what its stream already holds unread, takes that many jobs from BullMQ's `wait` and
/// `prioritized` (promoting due `delayed` ones, honouring BullMQ's pause), turns each into a job of
/// ours and hands it to our queue's stream, where it runs like any other job. Jobs that cannot become
/// ours fail in BullMQ with the reason. The `BullMQSync` mirrors them back.
struct BullMQIntake: Service, CustomStringConvertible {
    /// Wait between two looks at an idle BullMQ queue.
    static let idleMilliseconds = 100

    let bull: BullMQQueue
    let pool: WorkerPool
    let state: WorkerState
    let logger: Logger

    var description: String { "bullmq intake \(bull.settings.name)" }

    func run() async {
        await cancelWhenGracefulShutdown { [self] in await loop() }
    }

    private func loop() async {
        let ours = bull.settings.queue
        var log = logger
        log[metadataKey: "bullmqQueue"] = "\(bull.settings.name)"
        var failures = 0
        var pausedSaid = false
        while !Task.isCancelled {
            // Shutting down: take nothing more; end when the service group stops this intake (see `Fetcher`).
            if state.isShuttingDown {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            guard state.configuration.queue(named: ours) != nil else {
                log.notice("queue removed from the configuration; no longer taking the BullMQ queue's jobs", metadata: ["queue": "\(ours)"])
                return
            }
            if state.isPaused(ours) || state.isDraining {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            // Only as many as can start now: a job BullMQ shows `active` is one that runs (or is about to).
            let free = pool.freeSlots(queue: ours)
            if free == 0 {
                await pool.waitForSlot(queue: ours)
                continue
            }
            do {
                guard let taken = try await bull.take(count: free, group: RedisKeys.group) else {
                    if !pausedSaid { log.notice("the BullMQ queue is paused; starting none of its jobs") }
                    pausedSaid = true
                    try? await Task.sleep(for: .milliseconds(Self.idleMilliseconds * 5))
                    continue
                }
                if pausedSaid { log.notice("the BullMQ queue is no longer paused") }
                pausedSaid = false
                failures = 0
                if taken.jobs.isEmpty {
                    // Nothing to take, or our stream holds as many as there are free slots (the fetchers are
                    // about to start them): look again soon, sooner in the second case.
                    try? await Task.sleep(for: .milliseconds(taken.room ? Self.idleMilliseconds : 2))
                    continue
                }
                try await hand(taken.jobs, log: log)
            } catch {
                if Task.isCancelled { break }
                if state.isShuttingDown { continue }
                failures += 1
                if failures == 1 { log.error("cannot take jobs from the BullMQ queue; retrying", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .milliseconds(min(100 * (1 << min(failures, 5)), 2000)))
            }
        }
    }

    /// Maps the taken jobs and hands the good ones to our stream; fails the others in BullMQ.
    /// Jobs taken but not handed (this daemon dies now, or Redis goes away) keep only their lock, which
    /// lapses: the stalled check puts them back in `wait`.
    private func hand(_ jobs: [BullMQJob], log: Logger) async throws {
        var good: [(id: String, envelope: String)] = []
        var bad: [(id: String, reason: String)] = []
        for job in jobs {
            switch BullMQJobMapper.envelope(for: job, settings: bull.settings) {
            case .success(let envelope): good.append((job.id, envelope.raw))
            case .failure(let refusal):
                log.warning("refused a BullMQ job", metadata: ["bullmqJobId": "\(job.id)", "error": "\(refusal.reason)"])
                bad.append((job.id, refusal.reason))
            }
        }
        try await bull.refuse(bad)
        let handed = try await bull.admit(good)
        for (job, outcome) in zip(good, handed) {
            switch outcome {
            case .handed: break
            case .lockLost:
                log.warning("lost the lock of a BullMQ job before handing it on; the stalled check returns it", metadata: ["bullmqJobId": "\(job.id)"])
            case .ranBefore:
                log.warning("a BullMQ job has an id that ran here before; failed it in BullMQ instead of running it twice", metadata: ["bullmqJobId": "\(job.id)"])
            }
        }
        log.debug("took BullMQ jobs", metadata: ["count": "\(handed.filter { $0 == .handed }.count)"])
    }
}

/// Mirrors the jobs of ours that came from BullMQ back into BullMQ, on every daemon (each step is one
/// atomic, idempotent script): locks renewed, progress, retries as `delayed`, ends with returnvalue or
/// failedReason; a job removed from BullMQ is cancelled here; and the stalled check.
struct BullMQSync: Maintainer {
    let queues: [BullMQQueue]
    let cancel: @Sendable (String) async -> Void
    let logger: Logger
    /// Removed jobs already announced in the log (a running one is asked to stop on every run until it has).
    private let announced = Announced()

    final class Announced: Sendable {
        private let ids = Mutex<Set<String>>([])
        /// True the first time `id` is seen (the set is bounded: cleared past 10,000 ids).
        func first(_ id: String) -> Bool {
            ids.withLock { set in
                if set.count > 10_000 { set.removeAll() }
                return set.insert(id).inserted
            }
        }
    }

    init(queues: [BullMQQueue], cancel: @escaping @Sendable (String) async -> Void, logger: Logger) {
        self.queues = queues
        self.cancel = cancel
        self.logger = logger
    }

    var name: String { "mirroring jobs into BullMQ" }

    func interval(_ configuration: WorkerConfiguration) -> Duration {
        .milliseconds(Int64((queues.first?.bullmq.syncEvery ?? 0.25) * 1000))
    }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        for bull in queues {
            let (removed, _) = try await bull.sync()
            for id in removed {
                let jobID = BullMQJobMapper.jobID(queue: bull.settings.name, id: id)
                if announced.first(jobID) {
                    logger.notice("the BullMQ job was removed; cancelling it", metadata: ["jobId": "\(jobID)"])
                }
                await cancel(jobID)
            }
            let (back, failed) = try await bull.stalledCheck()
            if back + failed > 0 {
                logger.warning(
                    "BullMQ jobs whose taker stopped before handing them on",
                    metadata: ["bullmqQueue": "\(bull.settings.name)", "backToWait": "\(back)", "failed": "\(failed)"])
            }
        }
    }
}
