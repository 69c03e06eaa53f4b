import Logging
import PostgresClient
import RedisClient
import Synchronization
import WorkerConfig

/// What handlers may use beyond their own job: the current configuration, Redis, PostgreSQL,
/// metrics, and a way to enqueue further jobs.
public final class WorkerServices: Sendable {
    private let current: Mutex<WorkerConfiguration>
    public let queue: JobQueue
    public let postgres: PostgresPool
    public let redis: RedisConnection
    public let metrics: Metrics
    public let logger: Logger
    /// Told of every job outcome (see `JobObserver`).
    public let observers: [any JobObserver]
    /// The outbound integrations' caller and circuit breakers (one set per worker).
    public let integrations: IntegrationHub

    init(configuration: WorkerConfiguration, queue: JobQueue, postgres: PostgresPool,
         redis: RedisConnection, metrics: Metrics, logger: Logger, observers: [any JobObserver]) {
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
    public var configuration: WorkerConfiguration { current.withLock { $0 } }

    func update(_ configuration: WorkerConfiguration) { current.withLock { $0 = configuration } }

    /// Adds a job to a queue exactly as the API would (`XADD P:queue:<queue> * job <envelope>`).
    /// Returns the stream entry id.
    @discardableResult
    public func enqueue(_ envelope: JobEnvelope, queue name: String) async throws -> String {
        try await redis.send(RedisCommand(["XADD", queue.keys.queue(name), "*", "job", envelope.raw])).string ?? ""
    }
}
