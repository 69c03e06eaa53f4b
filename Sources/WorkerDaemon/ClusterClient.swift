import PostgresClient
import RedisClient
import WorkerConfig
import WorkerCore

/// What the one-shot commands of `medianest-worker` (`ctl top`, `enqueue`, `migrate`) do against
/// the cluster's Redis and PostgreSQL, so the executable only parses arguments and prints.
package final class ClusterClient: Sendable {
    let redis: RedisConnection
    let keys: RedisKeys
    let queues: [String]

    /// A client of the Redis server in `configuration`; `name` is the connection's client name.
    /// Throws when `redis.url` cannot be used.
    package init(configuration: WorkerConfiguration, name: String) throws {
        redis = RedisConnection(configuration: try RedisConfiguration(url: configuration.redis.url), name: name)
        keys = RedisKeys(prefix: configuration.redis.prefix)
        queues = configuration.queueNames
    }

    /// What `ctl top` shows now, for the configured queues.
    package func overview() async throws -> ClusterOverview {
        try await ClusterOverview.read(redis: redis, keys: keys, queues: queues)
    }

    /// Adds a job to `queue` as the API does.
    package func enqueue(_ envelope: JobEnvelope, on queue: String) async throws {
        try await JobSubmission(redis: redis, keys: keys).enqueue(envelope, on: queue)
    }

    package func close() {
        redis.close()
    }

    /// Applies the schema migrations to `postgres.url` (safe to run on several hosts at once) and
    /// returns the versions applied now.
    package static func migrate(configuration: WorkerConfiguration) async throws -> [Int] {
        let pool = PostgresPool(configuration: try PostgresConfiguration(url: configuration.postgres.url), size: 1)
        do {
            let applied = try await Migrator.migrate(pool, migrations: Schema.migrations, lockKey: Schema.lockKey)
            await pool.close()
            return applied
        } catch {
            await pool.close()
            throw error
        }
    }
}
