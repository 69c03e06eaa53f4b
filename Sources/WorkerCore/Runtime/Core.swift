import Logging
import PostgresClient
import RedisClient
import Synchronization
import WorkerConfig

/// A counter many tasks add to.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ n: Int) { value.add(n, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// The parts the daemon's services are made of, built once by `Worker`: the clients, the queue's
/// Redis side, the pool, the job types, what handlers get, and the shared state.
struct Core: Sendable {
    let consumer: String
    let logger: Logger
    let metrics: Metrics
    let redis: RedisConnection
    let redisConfiguration: RedisConfiguration
    let postgres: PostgresPool
    let queue: JobQueue
    let pool: WorkerPool
    let registry: HandlerRegistry
    let services: WorkerServices
    let state: WorkerState
    let blockingReads: Counter
}

/// A connection of its own for blocking reads (`XREADGROUP BLOCK`, `XREAD BLOCK`): its socket timeout
/// outlasts the block, and it is never shared, so a blocked read holds up nothing else.
func blockingConnection(_ configuration: RedisConfiguration, name: String, blockMilliseconds: Int) -> RedisConnection {
    var c = configuration
    c.socketTimeout = max(c.socketTimeout, Double(blockMilliseconds) / 1000 + 5)
    return RedisConnection(configuration: c, name: name)
}
