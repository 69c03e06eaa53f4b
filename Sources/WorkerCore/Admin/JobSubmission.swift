import RedisClient

/// Adds jobs to queues the way the API does: one `XADD P:queue:<name> * job <envelope>`.
/// What `medianest-worker enqueue` uses.
package struct JobSubmission: Sendable {
    let redis: RedisConnection
    let keys: RedisKeys

    package init(redis: RedisConnection, keys: RedisKeys) {
        self.redis = redis
        self.keys = keys
    }

    /// Adds `envelope` to `queue` and returns the stream entry id.
    @discardableResult
    package func enqueue(_ envelope: JobEnvelope, on queue: String) async throws -> String {
        try await redis.send(RedisCommand(["XADD", keys.queue(queue), "*", "job", envelope.raw])).string ?? ""
    }
}
