import Logging
import PostgresClient
import RedisClient
import Synchronization
import WorkerConfig

/// What handlers may use beyond their own job: the current configuration, Redis, PostgreSQL,
/// metrics, and a way to enqueue further jobs.
package final class WorkerServices: Sendable {
    private let current: Mutex<WorkerConfiguration>
    package let queue: JobQueue
    package let postgres: PostgresPool
    package let redis: RedisConnection
    package let metrics: Metrics
    package let logger: Logger
    /// Told of every job outcome (see `JobObserver`).
    package let observers: [any JobObserver]
    /// The outbound integrations' caller and circuit breakers (one set per worker).
    package let integrations: IntegrationHub
    /// The downloads running on this host and the yt-dlp each starts (a managed one switches only while none runs).
    package let ytDlpGate = YtDlpGate()

    init(
        configuration: WorkerConfiguration, queue: JobQueue, postgres: PostgresPool,
        redis: RedisConnection, metrics: Metrics, logger: Logger, observers: [any JobObserver]
    ) {
        self.observers = observers
        self.current = Mutex(configuration)
        self.queue = queue
        self.postgres = postgres
        self.redis = redis
        self.metrics = metrics
        self.logger = logger
        self.integrations = IntegrationHub()
        integrations.attach(self)
    }

    /// The configuration in force now (it changes on reload).
    package var configuration: WorkerConfiguration { current.withLock { $0 } }

    func update(_ configuration: WorkerConfiguration) { current.withLock { $0 = configuration } }

    /// Adds a job to a queue exactly as the API would (`XADD P:queue:<queue> * job <envelope>`).
    /// Returns the stream entry id.
    @discardableResult
    package func enqueue(_ envelope: JobEnvelope, queue name: String) async throws -> String {
        try await redis.send(RedisCommand(["XADD", queue.keys.queue(name), "*", "job", envelope.raw])).string ?? ""
    }

    /// Adds many jobs to a queue the same way, 500 entries a round trip, in order.
    package func enqueue(_ envelopes: [JobEnvelope], queue name: String) async throws {
        let stream = queue.keys.queue(name)
        for start in stride(from: 0, to: envelopes.count, by: 500) {
            _ = try await redis.pipeline(
                envelopes[start..<min(start + 500, envelopes.count)].map { RedisCommand(["XADD", stream, "*", "job", $0.raw]) })
        }
    }
}
