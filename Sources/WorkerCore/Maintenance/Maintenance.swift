import Foundation
import Logging
import RedisClient
import WorkerConfig

extension Worker {
    /// The periodic work of every daemon, on one loop:
    /// - moves due scheduled jobs (runAt, retry backoff) back into their queues (atomic, so any host may);
    /// - stops attempts past their timeout;
    /// - renews the leases of the jobs running here, so live long jobs are never taken over;
    /// - refreshes the pause state;
    /// - writes this daemon's heartbeat and trims acknowledged entries from the queue streams;
    /// - forgets finished job ids older than `retention.jobs` (`P:finished`).
    func runMaintenance() async {
        var last: [String: ContinuousClock.Instant] = [:]
        var failing: Set<String> = []
        func due(_ name: String, every: Duration) -> Bool {
            let now = ContinuousClock.now
            if let t = last[name], now - t < every { return false }
            last[name] = now
            return true
        }
        func attempt(_ name: String, _ body: () async throws -> Void) async {
            do {
                try await body()
                if failing.remove(name) != nil { logger.notice("maintenance: \(name) works again") }
            } catch {
                if failing.insert(name).inserted { logger.error("maintenance: \(name) failed; retrying", metadata: ["error": "\(error)"]) }
            }
        }
        while !Task.isCancelled {
            let cfg = configuration
            await attempt("promoting scheduled jobs") {
                while try await queue.promoteDue(limit: 500) == 500 {}
            }
            let overdue = pool.stopOverdue()
            if overdue > 0 { logger.warning("stopped attempts that ran past their timeout", metadata: ["count": "\(overdue)"]) }
            if due("renew", every: .milliseconds(Int64(cfg.lease * 1000 / 3))) {
                await attempt("renewing leases") {
                    for q in cfg.queues { try await queue.renew(queue: q.name, entryIDs: pool.entryIDs(queue: q.name)) }
                }
            }
            if due("paused", every: .milliseconds(500)) {
                await attempt("reading the pause state") { setPaused(try await queue.pausedQueues()) }
            }
            if due("heartbeat", every: .seconds(5)) {
                await attempt("heartbeat") { try await heartbeat(cfg) }
            }
            if due("trim", every: .seconds(10)) {
                await attempt("trimming streams") {
                    for q in cfg.queues { try await queue.trim(queue: q.name) }
                    _ = try await redis.send(RedisCommand(["XTRIM", queue.keys.control, "MAXLEN", "~", "10000"]))
                    let oldest = Timestamp.nowMilliseconds() - Int64(cfg.retention.jobs * 1000)
                    _ = try await redis.send(RedisCommand(["ZREMRANGEBYSCORE", queue.keys.finished, "-inf", "(\(oldest)"]))
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func heartbeat(_ cfg: WorkerConfiguration) async throws {
        let s = status()
        let key = queue.keys.worker(consumer)
        var hset = RedisCommand(["HSET", key, "host", ProcessInfo.processInfo.hostName, "pid", String(getpid()),
                                 "seenAt", Timestamp.now(), "active", String(pool.activeTotal),
                                 "draining", s.draining ? "1" : "0"])
        hset.append("queues")
        hset.append(s.queues.map { "\($0.name):\($0.active)/\($0.concurrency)" }.joined(separator: ","))
        _ = try await redis.pipeline([
            hset,
            RedisCommand(["EXPIRE", key, "30"]),
            RedisCommand(["ZADD", queue.keys.workers, String(Timestamp.nowMilliseconds()), consumer]),
        ])
    }
}
