import RedisClient
import WorkerConfig

/// Keeps Redis from growing: deletes acknowledged entries from the head of every queue stream,
/// keeps `P:control` to about 10,000 commands, and forgets finished job ids older than
/// `retention.jobs` (`P:finished`).
struct StreamTrimmer: Maintainer {
    let queue: JobQueue
    let redis: RedisConnection
    var name: String { "trimming streams" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .seconds(10) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        for q in configuration.queues { try await queue.trim(queue: q.name) }
        _ = try await redis.send(RedisCommand(["XTRIM", queue.keys.control, "MAXLEN", "~", "10000"]))
        let oldest = Timestamp.nowMilliseconds() - Int64(configuration.retention.jobs * 1000)
        _ = try await redis.send(RedisCommand(["ZREMRANGEBYSCORE", queue.keys.finished, "-inf", "(\(oldest)"]))
    }
}
