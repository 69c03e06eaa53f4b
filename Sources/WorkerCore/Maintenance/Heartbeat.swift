import Foundation
import RedisClient
import WorkerConfig

/// Tells the cluster this daemon is alive: `P:worker:<consumer>` (host, pid, active jobs, queues,
/// draining; expires after 30 s) and its score in `P:workers`, every 5 s.
struct Heartbeat: Maintainer {
    let redis: RedisConnection
    let keys: RedisKeys
    let consumer: String
    let status: @Sendable () -> WorkerStatus
    var name: String { "heartbeat" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .seconds(5) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        let s = status()
        let key = keys.worker(consumer)
        var hset = RedisCommand([
            "HSET", key, "host", ProcessInfo.processInfo.hostName, "pid", String(getpid()),
            "seenAt", Timestamp.now(), "active", String(s.queues.map(\.active).reduce(0, +)),
            "draining", s.draining ? "1" : "0",
        ])
        hset.append("queues")
        hset.append(s.queues.map { "\($0.name):\($0.active)/\($0.concurrency)" }.joined(separator: ","))
        _ = try await redis.pipeline([
            hset,
            RedisCommand(["EXPIRE", key, "30"]),
            RedisCommand(["ZADD", keys.workers, String(Timestamp.nowMilliseconds()), consumer]),
        ])
    }

    /// Removes this daemon's heartbeat (at shutdown).
    func remove() async {
        _ = try? await redis.send(RedisCommand(["DEL", keys.worker(consumer)]))
        _ = try? await redis.send(RedisCommand(["ZREM", keys.workers, consumer]))
    }
}
