import Logging
import WorkerConfig

/// Stops attempts that run past their timeout (they end as retryable failures).
struct TimeoutEnforcer: Maintainer {
    let pool: WorkerPool
    let logger: Logger
    var name: String { "stopping attempts past their timeout" }

    func interval(_ configuration: WorkerConfiguration) -> Duration { .milliseconds(100) }

    func runOnce(_ configuration: WorkerConfiguration) async throws {
        let overdue = pool.stopOverdue()
        if overdue > 0 { logger.warning("stopped attempts that ran past their timeout", metadata: ["count": "\(overdue)"]) }
    }
}
