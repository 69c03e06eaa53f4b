import Foundation
import RedisClient
import Testing
import WorkerConfig

@testable import WorkerCore

/// The queue's hot path against Redis: reads that take only what fits.
@Suite("Reads against Redis")
struct FinishBatchTests {
    /// A read for no free slot takes nothing. (XREADGROUP's COUNT 0 means no limit: sent, it would
    /// deliver the whole backlog to one daemon at once.)
    @Test func aReadForNoSlotsTakesNothing() async throws {
        let configuration = try TestRedis.configuration(queues: ["default"])
        let keys = RedisKeys(prefix: configuration.redis.prefix)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "read-test")
        defer { redis.close() }
        let queue = JobQueue(redis: redis, keys: keys, consumer: "daemon-a", retentionSeconds: 60)
        do {
            try await queue.ensureGroup(queue: "default")
            _ = try await redis.pipeline(
                (0..<5).map { RedisCommand(["XADD", keys.queue("default"), "*", "job", #"{"id":"r-\#($0)","type":"noop","payload":{}}"#]) })
            for count in [0, -1] {
                #expect(try await queue.read(queue: "default", count: count, blockMilliseconds: 10, on: redis).isEmpty)
            }
            let pending = try await redis.send(RedisCommand(["XPENDING", keys.queue("default"), RedisKeys.group]))
            #expect(pending.array?.first?.int == 0, "nothing delivered")
            #expect(try await queue.read(queue: "default", count: 2, blockMilliseconds: 10, on: redis).count == 2)
        } catch {
            try? await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
            throw error
        }
        try await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
    }
}
