import Foundation
import RedisClient
import Testing
import WorkerConfig

@testable import WorkerCore
@testable import WorkerDaemon

/// A setup problem that fails the test with a message saying what to do.
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

/// The shared test Redis from `MEDIANEST_TEST_REDIS_URL`, and a configuration pointing at it under a fresh prefix.
enum TestRedis {
    static let variable = "MEDIANEST_TEST_REDIS_URL"

    static func configuration(queues: [String]) throws -> WorkerConfiguration {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw TestSetupError(
                description:
                    "\(variable) is not set. Point it at a disposable Redis server, e.g. \(variable)=redis://127.0.0.1:6390/0 swift test")
        }
        var configuration = WorkerConfiguration()
        configuration.redis.url = url
        configuration.redis.prefix = "medianest-test:daemon:\(UUID().uuidString)"
        configuration.queues = queues.map { QueueSettings(name: $0) }
        return configuration
    }

    static func deleteKeys(_ prefix: String, on redis: RedisConnection) async throws {
        var cursor = "0"
        repeat {
            let reply = try await redis.send(RedisCommand(["SCAN", cursor, "MATCH", prefix + ":*", "COUNT", "1000"]))
            cursor = reply.array?.first?.string ?? "0"
            let keys = reply.array?.dropFirst().first?.array?.compactMap(\.string) ?? []
            if !keys.isEmpty { _ = try await redis.send(RedisCommand(["DEL"] + keys)) }
        } while cursor != "0"
    }
}

@Suite("ctl top: the cluster overview")
struct ClusterOverviewTests {
    @Test func readsQueuesDaemonsAndRunningJobs() async throws {
        let configuration = try TestRedis.configuration(queues: ["default", "other"])
        let keys = RedisKeys(prefix: configuration.redis.prefix)
        let redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: "overview-test")
        let cluster = try ClusterClient(configuration: configuration, name: "overview-test-client")
        defer { cluster.close(); redis.close() }
        do {
            _ = try await redis.send(RedisCommand(["XGROUP", "CREATE", keys.queue("default"), RedisKeys.group, "0", "MKSTREAM"]))
            // Two jobs enqueued as `medianest-worker enqueue` does; daemon-a takes the first.
            try await cluster.enqueue(JobEnvelope(id: "job-running", type: "noop", maxAttempts: 3), on: "default")
            try await cluster.enqueue(JobEnvelope(id: "job-waiting", type: "noop"), on: "default")
            _ = try await redis.send(
                RedisCommand([
                    "XREADGROUP", "GROUP", RedisKeys.group, "daemon-a", "COUNT", "1",
                    "STREAMS", keys.queue("default"), ">",
                ]))
            let started = Timestamp.nowMilliseconds() - 5000
            _ = try await redis.pipeline([
                RedisCommand([
                    "HSET", keys.job("job-running"), "state", "active", "type", "noop", "worker", "daemon-a",
                    "attempt", "1", "maxAttempts", "3", "stage", "downloading", "progress", "42.5",
                    "startedAt", Timestamp.format(milliseconds: started),
                ]),
                RedisCommand(["ZADD", keys.workers, "1", "daemon-a", "2", "daemon-gone"]),
                RedisCommand([
                    "HSET", keys.worker("daemon-a"), "host", "host-a", "pid", "123", "active", "1", "draining", "0",
                    "queues", "default:1/4,other:0/2", "seenAt", Timestamp.now(),
                ]),
                RedisCommand(["SADD", keys.paused, "other"]),
            ])

            let first = try await cluster.overview()
            #expect(first.queues.map(\.name) == ["default", "other"])
            let queue = first.queues[0]
            #expect(queue.depth == 1, "one entry not yet delivered")
            #expect(queue.pending == 1 && queue.active == 1 && queue.slots == 4 && !queue.paused)
            #expect(queue.entriesRead == 1)
            #expect(first.queues[1].depth == nil, "no group yet")
            #expect(first.queues[1].paused && first.queues[1].slots == 2)
            #expect(first.daemons.map(\.consumer) == ["daemon-a"], "a daemon without a heartbeat is left out")
            #expect(first.daemons.first?.host == "host-a" && first.daemons.first?.draining == false)
            #expect((first.daemons.first?.seenAgo ?? 99) < 5)
            #expect(first.jobs.count == 1)
            let job = try #require(first.jobs.first)
            #expect(job.id == "job-running" && job.queue == "default" && job.holder == "daemon-a" && job.type == "noop")
            #expect(job.attempt == "1/3" && job.stage == "downloading" && job.progress == 42.5 && job.startedAt == started)

            // The start rate comes from entries-read between two looks.
            _ = try await redis.send(
                RedisCommand([
                    "XREADGROUP", "GROUP", RedisKeys.group, "daemon-a", "COUNT", "1",
                    "STREAMS", keys.queue("default"), ">",
                ]))
            var second = try await cluster.overview()
            second.at = first.at.addingTimeInterval(30)
            second.rates(from: first)
            #expect(second.queues[0].startsPerMinute == 2, "one start in 30 s")
            #expect(second.queues[1].startsPerMinute == nil)
            #expect(second.jobs.map(\.id) == ["job-running"], "a delivered job whose hash is not active is not shown")
        } catch {
            try? await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
            throw error
        }
        try await TestRedis.deleteKeys(configuration.redis.prefix, on: redis)
    }
}
